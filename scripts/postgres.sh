#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print its SQLAlchemy URL on stdout.
# Installs Debian's postgresql package when no server binaries are present.
#   scripts/postgres.sh start DIR   -> prints postgresql+psycopg://... (server listens on a unix socket in DIR)
#   scripts/postgres.sh stop DIR
set -euo pipefail
action=${1:?start or stop}
dir=${2:?directory}
port=${ALLOT_TEST_PG_PORT:-55432}

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    if ! bindir=$(find_bindir); then
      echo "installing PostgreSQL from Debian's packages" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq postgresql >&2
      bindir=$(find_bindir)
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U allot --auth=trust -E UTF8 --no-locale >/dev/null
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -p $port -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null
    as_pg "$bindir/createdb" -h "$dir" -p "$port" -U allot allot_test
    echo "postgresql+psycopg://allot@/allot_test?host=$dir&port=$port"
    ;;
  stop)
    bindir=$(find_bindir) || exit 0
    [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"  # a throwaway server: nothing of it is kept
    ;;
esac
