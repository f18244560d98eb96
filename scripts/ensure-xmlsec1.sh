#!/usr/bin/env bash
# SAML single sign-on (pysaml2) signs and verifies with Debian's xmlsec1 program; its tests need it.
# Installs the `xmlsec1` package when the program is absent.
set -euo pipefail
if command -v xmlsec1 >/dev/null 2>&1; then
  exit 0
fi
echo "installing xmlsec1 from Debian's packages for SAML single sign-on" >&2
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends xmlsec1 >&2
