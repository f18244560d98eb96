#!/usr/bin/env bash
# ensure-package.sh COMMAND PACKAGE WHY: installs Debian's PACKAGE when COMMAND is absent (the suite's system
# programs: xmlsec1 for SAML single sign-on, bubblewrap for the local engine's job isolation).
set -euo pipefail
command="$1" package="$2" why="$3"
if command -v "$command" >/dev/null 2>&1; then
  exit 0
fi
echo "installing $package from Debian's packages for $why" >&2
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
# Two callers may get here at once: the second waits for dpkg's lock instead of failing.
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$package" >&2
