#!/usr/bin/env bash
# Start a throwaway single-node Ray head for the tests and print what they need as one JSON line on stdout.
#   scripts/ray.sh start DIR   -> {"address": "http://127.0.0.1:P", "gcs": ..., "resources": {...}, "start_s": ...}
#   scripts/ray.sh stop DIR
#
# The head has fake GPUs of two models: 6 GPUs, 4 of them tagged with the custom resource `a100`, 2 with `h100`
# (Ray hands out GPU indices itself and sets CUDA_VISIBLE_DEVICES; the custom resources say which model a job gets).
# Ray comes from the project's virtualenv (pip install -e '.[ray]'; ALLOT_RAY_BIN overrides which `ray` runs).
#
# Why each choice:
# - Everything of the head lives under DIR: Ray's temp dir (sockets, logs, session) is DIR/t. Its unix socket paths
#   must stay under 108 characters with a session name of ~40 in them, so DIR must be short (refused over 40).
# - Ports: Ray's defaults include fixed ones (10001 for the client server, 52365 for the dashboard agent, 8265 for
#   the dashboard, 44217 and 44227 for the metrics of the autoscaler and the dashboard, set only through the
#   environment), so two heads at once (pytest-xdist workers, two checkouts) would clash. Each head takes a block
#   of BLOCK ports below the kernel's ephemeral range (so no bind(0) of anyone else lands in it): the first ones for
#   Ray's services, the rest for its workers. Blocks are handed out under a lock and recorded in $registry until the
#   head stops, so two starts at the same moment never pick the same one.
# - The head runs with a clean environment (env -i): every Ray job inherits the raylet's environment, and nothing
#   of whoever started the tests (a test's secrets, the caller's variables) may reach a job through it.
# - It runs in its own session (setsid) from DIR, so that stop can find every process it started (workers and job
#   processes are descendants) without `ray stop`, which stops every Ray on the host; and so that a directory named
#   `ray` in the caller's working directory cannot shadow the package for Ray's workers.
set -euo pipefail
action=${1:?start or stop}
dir=${2:?a directory (short: the socket paths of Ray have a length limit)}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
registry=${ALLOT_RAY_PORT_REGISTRY:-/tmp/allot-ray-ports}
BLOCK=120          # ports per head: 12 for services, 108 for workers
FIRST_PORT=20000   # blocks in [FIRST_PORT, LAST_PORT): below 32768, where Linux's ephemeral ports start
LAST_PORT=32000

ray_bin() {
  if [ -n "${ALLOT_RAY_BIN:-}" ]; then echo "$ALLOT_RAY_BIN"; return; fi
  if [ -x "$root/.venv/bin/ray" ]; then echo "$root/.venv/bin/ray"; return; fi
  command -v ray || { echo "ray.sh: no 'ray' command: pip install -e '.[ray]'" >&2; exit 1; }
}

# Every process of the head: its session's members and their descendants (a job's entrypoint may start a session
# of its own under a Ray worker).
head_pids() {
  local sid
  sid=$(cat "$dir/head.sid" 2>/dev/null) || return 0
  ps -e -o pid=,ppid=,sid= | awk -v sid="$sid" '
    { pid[NR] = $1; parent[NR] = $2; if ($3 == sid) mine[$1] = 1 }
    END {
      do { grew = 0; for (i = 1; i <= NR; i++) if (!(pid[i] in mine) && (parent[i] in mine)) { mine[pid[i]] = 1; grew = 1 } } while (grew)
      for (p in mine) print p
    }'
}

alive() {
  local pid stat
  for pid in "$@"; do
    stat=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    # Zombies (no parent reaps them in some containers) count as gone.
    [ -n "$stat" ] && [ "${stat:0:1}" != Z ] && return 0
  done
  return 1
}

stop_head() {
  local pids
  pids=$(head_pids)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    for _ in $(seq 30); do
      # shellcheck disable=SC2086
      alive $pids || break
      sleep 0.1
    done
    # Ray's daemons (gcs_server, raylet) often outlast a SIGTERM by many seconds: the test head keeps nothing.
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
  fi
  release_block
}

release_block() {
  local base
  base=$(cat "$dir/ports.base" 2>/dev/null) || return 0
  (
    flock 9
    [ "$(cat "$registry/$base" 2>/dev/null)" = "$dir" ] && rm -f "$registry/$base"
  ) 9>"$registry.lock"
  rm -f "$dir/ports.base"
}

# Claim a block of ports: the first base not recorded by a live head whose ports are all free now.
claim_block() {
  mkdir -p "$registry"
  (
    flock 9
    python3 - "$registry" "$dir" "$BLOCK" "$FIRST_PORT" "$LAST_PORT" <<'EOF'
import os, socket, sys
registry, mine, block, first, last = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])

def free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # Ray's GCS and raylet bind every address
        except OSError:
            return False
    return True

for base in range(first, last - block + 1, block):
    path = os.path.join(registry, str(base))
    try:
        owner = open(path).read().strip()
    except FileNotFoundError:
        owner = None
    if owner and owner != mine and os.path.isdir(owner):
        continue  # another head holds it (a stale record, whose head's directory is gone, is taken over)
    if all(free(p) for p in range(base, base + block)):
        with open(path, "w") as f:
            f.write(mine)
        print(base)
        sys.exit(0)
sys.exit("ray.sh: no free block of ports")
EOF
  ) 9>"$registry.lock"
}

api_answers() {
  python3 - "$1" <<'EOF'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/api/jobs/", timeout=2) as r:
    json.load(r)
EOF
}

case "$action" in
  start)
    [ ${#dir} -le 40 ] || { echo "ray.sh: '$dir' is too long for Ray's socket paths (40 characters at most)" >&2; exit 2; }
    ray=$(ray_bin)
    [ -f "$dir/head.sid" ] && stop_head
    rm -rf "$dir"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    started=$(date +%s.%N)
    base=$(claim_block)
    echo "$base" >"$dir/ports.base"
    gcs=$base dashboard=$((base + 1)) client=$((base + 2)) node_manager=$((base + 3)) object_manager=$((base + 4))
    agent_http=$((base + 5)) agent_grpc=$((base + 6)) runtime_env=$((base + 7)) metrics=$((base + 8))
    dashboard_metrics=$((base + 9)) autoscaler_metrics=$((base + 10))
    resources='{"a100": 4, "h100": 2}'
    path="$(dirname "$ray"):/usr/local/bin:/usr/bin:/bin"
    # setsid --wait: `ray start` returns once the head's daemons run; they stay in the session noted in head.sid.
    if ! (cd "$dir" && setsid --wait env -i PATH="$path" HOME="$dir" LANG=C.UTF-8 \
        DASHBOARD_METRIC_PORT="$dashboard_metrics" AUTOSCALER_METRIC_PORT="$autoscaler_metrics" bash -c '
        echo $$ >head.sid
        exec "$@"' _ "$ray" start --head --node-ip-address 127.0.0.1 --dashboard-host 127.0.0.1 \
          --num-cpus 8 --num-gpus 6 --resources "$resources" --object-store-memory 100000000 \
          --temp-dir "$dir/t" --disable-usage-stats --include-dashboard true \
          --port "$gcs" --dashboard-port "$dashboard" --ray-client-server-port "$client" \
          --node-manager-port "$node_manager" --object-manager-port "$object_manager" \
          --dashboard-agent-listen-port "$agent_http" --dashboard-agent-grpc-port "$agent_grpc" \
          --runtime-env-agent-port "$runtime_env" --metrics-export-port "$metrics" \
          --min-worker-port $((base + 12)) --max-worker-port $((base + BLOCK - 1)) \
          >"$dir/start.log" 2>&1 </dev/null); then
      echo "ray.sh: ray start failed:" >&2
      tail -n 30 "$dir/start.log" >&2
      stop_head
      exit 1
    fi
    address="http://127.0.0.1:$dashboard"
    for _ in $(seq 120); do api_answers "$address" >/dev/null 2>&1 && break; sleep 0.5; done
    if ! api_answers "$address" >/dev/null 2>&1; then
      echo "ray.sh: the Jobs API at $address did not answer within a minute; logs in $dir/t" >&2
      stop_head
      exit 1
    fi
    elapsed=$(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$started")
    printf '{"address": "%s", "gcs": "127.0.0.1:%s", "temp_dir": "%s", "resources": %s, "start_s": %s}\n' \
      "$address" "$gcs" "$dir/t" "$resources" "$elapsed"
    ;;
  stop)
    stop_head
    rm -rf "$dir"  # a throwaway head: nothing of it is kept
    ;;
  *)
    echo "ray.sh: start or stop" >&2
    exit 2
    ;;
esac
