#!/usr/bin/env bash
# The local engine isolates a job with bubblewrap when the server is not root (backends/sandbox.py); its tests run
# jobs under it. Installs Debian's `bubblewrap` package when the program is absent (Chromium's packages bring it too,
# but the unit tests must not depend on the browser's).
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then
  exit 0
fi
echo "installing bubblewrap from Debian's packages for the local engine's job isolation" >&2
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends bubblewrap >&2
