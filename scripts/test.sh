#!/usr/bin/env bash
# The whole suite: unit tests, API tests on SQLite and on a real PostgreSQL, end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
pgdir=$(mktemp -d /tmp/allot-pg.XXXXXX)
chmod 755 "$pgdir"
trap 'bash scripts/postgres.sh stop "$pgdir"' EXIT
if [ -z "${ALLOT_TEST_POSTGRES_URL:-}" ]; then
  ALLOT_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start "$pgdir")
  export ALLOT_TEST_POSTGRES_URL
fi
# The browser tests need the console's assets (npm) and a real Chromium.
[ -d node_modules/htmx.org ] || npm ci --no-audit --no-fund
bash scripts/ensure-chromium.sh
# SAML single sign-on verifies signatures with xmlsec1; the local engine's sandbox tests run jobs under bubblewrap.
bash scripts/ensure-package.sh xmlsec1 xmlsec1 "SAML single sign-on"
bash scripts/ensure-package.sh bwrap bubblewrap "the local engine's job isolation"
# Suites that need PostgreSQL fail (not skip) when it is missing.
export ALLOT_TEST_REQUIRE_POSTGRES=1
# The Slurm engine's tests start a throwaway Slurm (scripts/slurm.sh) once per worker; install its packages once,
# before the workers start, and fail (not skip) when it cannot run.
bash scripts/slurm.sh install
export ALLOT_TEST_REQUIRE_SLURM=1
# The Ray engine's tests start a throwaway Ray head (scripts/ray.sh) once per worker; fail (not skip) when it cannot.
export ALLOT_TEST_REQUIRE_RAY=1
# The scheduler core's white-box tests (tests/unit/core) subclass and patch its classes: they run against its sources.
# Every other test runs the core as the server does, compiled (build/core-ext, which `make install` builds; the
# identity test between the two fails when that build is missing or stale). With arguments, ALLOTMENT_CORE_EXT=off
# runs the given tests against the sources (as tests/unit/core needs).
export ALLOT_TEST_REQUIRE_COMPILED=1
if ! env -u ALLOTMENT_CORE_EXT "$BIN/python" -c "import allotment.compiled_core as c, sys; sys.exit(not c.ACTIVE)" 2>/dev/null; then
  bash scripts/ensure-package.sh gcc gcc "the compiled scheduler core"
  "$BIN/python" scripts/build_core_ext.py
fi
if [ $# -eq 0 ]; then
  ALLOTMENT_CORE_EXT=off "$BIN/pytest" -p no:cacheprovider -n 2 tests/unit/core
  set -- tests --ignore=tests/unit/core
fi
ALLOTMENT_CORE_EXT="${ALLOTMENT_CORE_EXT:-$PWD/build/core-ext}" "$BIN/pytest" -p no:cacheprovider -n 2 "$@"
