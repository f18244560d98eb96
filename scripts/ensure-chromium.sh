#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (never `playwright install`: its downloads are blocked).
# Installs the `chromium` package when /usr/bin/chromium is absent.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "installing Chromium from Debian's packages for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq chromium >&2
