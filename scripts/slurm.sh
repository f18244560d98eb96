#!/usr/bin/env bash
# Start a throwaway single-host Slurm for the tests and print what they need as one JSON line on stdout.
# Installs Debian's packages (slurm-wlm, slurmrestd, slurm-wlm-jwt-plugin, munge) when they are absent. Needs root
# (slurmd runs jobs as other users, fake GPUs are made with mknod).
#   scripts/slurm.sh start DIR   -> {"rest_url": ..., "token": ..., "user": ..., "slurm_conf": ..., "jobs_dir": ...}
#   scripts/slurm.sh stop DIR
#   scripts/slurm.sh install     -> only the packages (for a suite about to start several clusters in parallel)
# ALLOT_SLURM_CPUS sets the CPUs each node declares (default 32, memory 4 GiB per CPU, at least 128 GiB): a benchmark
# of thousands of one-CPU jobs at once needs more than the host has (SlurmdParameters=config_overrides).
#
# Under DIR: a munged with its own key and socket (no clash with a system munged), slurmctld, two fake nodes with
# one `slurmd -N` each (a100-n1: 4 x gpu:a100 in partition a100; h100-n1: 2 x gpu:h100 in partition h100) whose GPUs
# are character devices (major 195, as NVIDIA's), and slurmrestd with JWT on a loopback port. Ports are picked
# free at start and the first job id is derived from them, so several runs on one machine (pytest-xdist workers,
# two checkouts) neither share ports nor Slurm job ids (job ids name cgroups, which all runs on the host share).
set -euo pipefail
action=${1:?start, stop or install}
dir=${2:-}
[ "$action" = install ] || [ -n "$dir" ] || { echo "slurm.sh: $action needs a directory" >&2; exit 2; }
# slurmrestd refuses root and SlurmUser: it runs as its own unprivileged account. Jobs submitted through it run as
# the token's user, another unprivileged account (a job is untrusted code).
rest_user=${ALLOT_SLURM_REST_USER:-allot-slurmrest}
job_user=${ALLOT_SLURM_JOB_USER:-allot-slurmjob}
cpus=${ALLOT_SLURM_CPUS:-32}
[[ "$cpus" =~ ^[1-9][0-9]{0,4}$ ]] || { echo "slurm.sh: ALLOT_SLURM_CPUS must be a number of CPUs" >&2; exit 2; }
memory_mib=$(( cpus * 4096 > 131072 ? cpus * 4096 : 131072 ))
sbin=/usr/sbin
here=$(cd "$(dirname "$0")" && pwd)

pids_of() { cat "$dir"/run/*.pid 2>/dev/null || true; }

stop_all() {
  local pid pids
  # Jobs first (their steps are not daemons of ours); a cluster that does not answer has none to cancel.
  if [ -f "$dir/etc/slurm.conf" ]; then
    for partition in a100 h100; do
      SLURM_CONF="$dir/etc/slurm.conf" timeout 5 scancel --partition="$partition" >/dev/null 2>&1 || true
    done
  fi
  pids=$(pids_of)
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 20); do
    local alive=0
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
}

ensure_packages() {
  local missing=()
  [ -x $sbin/slurmctld ] && [ -x $sbin/slurmd ] || missing+=(slurm-wlm)
  [ -x $sbin/slurmrestd ] || missing+=(slurmrestd)
  [ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/auth_jwt.so ] || ls /usr/lib/*/slurm-wlm/auth_jwt.so >/dev/null 2>&1 \
    || missing+=(slurm-wlm-jwt-plugin)
  [ -x $sbin/munged ] || missing+=(munge)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Two test workers may get here at once: the second waits for dpkg's lock instead of failing.
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

ensure_user() {
  id "$1" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$1"
}

# N ports free on every address now (slurmctld and slurmd bind the wildcard address).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local tries=$((limit * 20))
  for _ in $(seq $tries); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "slurm.sh: $what did not come up within ${limit}s; logs in $dir/log" >&2
  tail -n 20 "$dir"/log/*.log >&2 || true
  return 1
}

nodes_idle() {
  local out
  out=$(sinfo -h -N -o '%N %t' | sort -u)  # a node in two partitions has a line in each
  [ "$(grep -c ' idle$' <<<"$out")" = 2 ]
}

case "$action" in
  install)
    ensure_packages
    ;;
  start)
    [ "$(id -u)" = 0 ] || { echo "slurm.sh: needs root (slurmd, mknod)" >&2; exit 1; }
    ensure_packages
    ensure_user "$rest_user"
    ensure_user "$job_user"
    [ -d "$dir/run" ] && stop_all
    rm -rf "$dir"
    mkdir -p "$dir"/{etc,munge,run,log,state,spool,dev,jobs}
    chmod 755 "$dir" "$dir"/etc
    chmod 1777 "$dir"/jobs  # job logs: written by jobs of any user
    read -r ctld_port a100_port h100_port rest_port < <(free_ports 4)
    first_job_id=$(( (ctld_port % 50000) * 1000 + 1 ))

    # munged: a key and a socket of its own.
    chown munge:munge "$dir/munge"
    chmod 700 "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chown munge:munge "$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    socket="$dir/munge/munge.socket"
    runuser -u munge -- $sbin/munged --force --key-file="$dir/munge/munge.key" --socket="$socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
    wait_for 5 munged test -S "$socket"
    ln -sf "$dir/munge/munged.pid" "$dir/run/munged.pid"
    chmod 711 "$dir/munge"  # clients (slurmrestd's user, jobs' user) reach the socket, not the key

    # Fake GPUs: character devices with NVIDIA's major number; minors unique on the host's two nodes.
    minor=0
    for spec in a100-n1:4 h100-n1:2; do
      node=${spec%%:*}; count=${spec##*:}
      mkdir -p "$dir/dev/$node"
      for ((i = 0; i < count; i++)); do
        mknod "$dir/dev/$node/nvidia$i" c 195 $minor
        minor=$((minor + 1))
      done
    done

    # JWT: slurmctld signs and checks tokens with this key; only it reads the key.
    dd if=/dev/urandom of="$dir/etc/jwt.key" bs=32 count=1 status=none
    chmod 600 "$dir/etc/jwt.key"

    sed -e "s|@DIR@|$dir|g" -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@A100_PORT@|$a100_port|g" \
      -e "s|@H100_PORT@|$h100_port|g" -e "s|@FIRST_JOB_ID@|$first_job_id|g" -e "s|@SOCKET@|$socket|g" \
      -e "s|@CLUSTER@|allot$ctld_port|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY_MIB@|$memory_mib|g" \
      "$here/slurm/slurm.conf.in" >"$dir/etc/slurm.conf"
    sed -e "s|@DIR@|$dir|g" "$here/slurm/gres.conf.in" >"$dir/etc/gres.conf"
    cp "$here/slurm/cgroup.conf" "$dir/etc/cgroup.conf"
    chmod 644 "$dir"/etc/*.conf
    export SLURM_CONF="$dir/etc/slurm.conf"

    $sbin/slurmctld
    wait_for 10 slurmctld scontrol ping
    $sbin/slurmd -N a100-n1
    $sbin/slurmd -N h100-n1
    wait_for 20 "the nodes" nodes_idle

    # SLURM_JWT=daemon: slurmrestd itself talks to slurmctld with auth/jwt (with munge it rejects every token).
    SLURM_JWT=daemon setsid $sbin/slurmrestd -u "$rest_user" -g "$rest_user" -a rest_auth/jwt -s openapi/v0.0.38 "127.0.0.1:$rest_port" >"$dir/log/slurmrestd.log" 2>&1 </dev/null &
    echo $! >"$dir/run/slurmrestd.pid"
    wait_for 10 slurmrestd bash -c "exec 3<>/dev/tcp/127.0.0.1/$rest_port"

    token=$(scontrol token username="$job_user" lifespan=86400)
    token=${token#SLURM_JWT=}
    printf '{"rest_url": "http://127.0.0.1:%s", "token": "%s", "user": "%s", "slurm_conf": "%s", "jobs_dir": "%s", ' \
      "$rest_port" "$token" "$job_user" "$SLURM_CONF" "$dir/jobs"
    printf '"partitions": {"a100": {"node": "a100-n1", "gpus": 4}, "h100": {"node": "h100-n1", "gpus": 2}}}\n'
    ;;
  stop)
    [ -d "$dir/run" ] && stop_all
    rm -rf "$dir"  # a throwaway cluster: nothing of it is kept
    ;;
esac
