#!/usr/bin/env bash
# A throw-away single-node Slurm (munged + slurmctld + slurmd) on localhost for the [slurm] tests,
# without systemd or cgroups, everything under DIR:
#   local_slurm.sh start DIR   writes DIR/etc/slurm.conf (export SLURM_CONF=DIR/etc/slurm.conf)
#   local_slurm.sh stop DIR    cancels the jobs, stops the daemons by their recorded PIDs
# Without root or without Debian's slurmctld, slurmd, slurm-client and munge, `start` says so and
# exits 0 without a cluster: the tests then skip with that message.
#
# Settings that matter (see ../shared/reference/slurm-local in the project's history):
# SlurmctldHost must be the short hostname; proctrack/pgid (linuxproc leaks a batch script's
# background children); task/none and cgroup/v1 so slurmd starts without a cgroup hierarchy;
# cred_expire=10 and 2-second scheduler intervals so a requeued task restarts in ~10 s, not ~2 min.
# Two fake GPUs (gres) on /dev/null's device numbers. Ports come from DIR, so a CI run and a
# developer's cluster on one machine do not collide.
set -euo pipefail

action=${1:?usage: local_slurm.sh start|stop DIR}
dir=${2:?usage: local_slurm.sh start|stop DIR}
case "$dir" in /*) ;; *) echo "local_slurm.sh: DIR must be absolute" >&2; exit 2 ;; esac
export SLURM_CONF="$dir/etc/slurm.conf"

alive() { [[ -n "${1:-}" && -d /proc/$1 ]] && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }
pid_of() { [[ -f "$dir/pids/$1.pid" ]] && cat "$dir/pids/$1.pid"; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "local_slurm.sh: timed out waiting for $what" >&2
      tail -n 20 "$dir"/log/*.log >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

stop() {
  if alive "$(pid_of slurmctld)"; then
    squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
    wait_for 30 "jobs to end" bash -c '[ -z "$(squeue -h -o %i)" ]' || true
  fi
  for name in slurmd slurmctld munged; do
    local pid; pid=$(pid_of "$name") || continue
    alive "$pid" && kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    rm -f "$dir/pids/$name.pid"
  done
  return 0
}

if [[ "$action" == stop ]]; then
  stop
  exit 0
fi
[[ "$action" == start ]] || { echo "local_slurm.sh: unknown action $action (start, stop)" >&2; exit 2; }

stop  # a cluster left by an aborted run would hold the ports
rm -rf "$dir"
mkdir -p "$dir"
missing=()
for program in slurmctld slurmd sbatch squeue scontrol munged mungekey; do
  command -v "$program" >/dev/null || missing+=("$program")
done
if ((${#missing[@]} > 0)); then
  echo "no Slurm here (${missing[*]} missing): the [slurm] tests skip; install it with scripts/install-deps.sh --slurm" | tee "$dir/unavailable"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "not root: the local Slurm cannot start, the [slurm] tests skip" | tee "$dir/unavailable"
  exit 0
fi

mkdir -p "$dir"/{etc,state,spool,log,pids,munge,dev}
chmod 755 "$dir" "$dir/munge"  # munged: the socket's folder needs o+x and no group/other write
base=$((20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 * 2))
host=$(hostname -s)
memory=$(awk '/MemTotal/ { m = int($2 / 2048); print (m < 1000 ? m : 1000) }' /proc/meminfo)  # MB, below what slurmd finds
socket="$dir/munge/munge.socket"

mungekey -c -k "$dir/munge/munge.key" >/dev/null
munged -S "$socket" --key-file="$dir/munge/munge.key" --log-file="$dir/munge/munged.log" \
  --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed"
wait_for 20 munged test -s "$dir/munge/munged.pid"
cp "$dir/munge/munged.pid" "$dir/pids/munged.pid"

for i in 0 1; do
  if ! mknod -m 666 "$dir/dev/gpu$i" c 1 3 2>/dev/null; then  # containers may lack CAP_MKNOD
    echo "cannot make the fake GPU devices (mknod): the [slurm] tests skip" | tee "$dir/unavailable"
    stop
    exit 0
  fi
done
echo "NodeName=$host Name=gpu File=$dir/dev/gpu[0-1]" > "$dir/etc/gres.conf"
echo "CgroupPlugin=cgroup/v1" > "$dir/etc/cgroup.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=prefopt-tests
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/pgid
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=2
ReturnToService=2
KillWait=10
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$memory Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -f "$SLURM_CONF"
wait_for 30 slurmctld test -s "$dir/slurmctld.pid"
cp "$dir/slurmctld.pid" "$dir/pids/slurmctld.pid"
wait_for 30 "slurmctld to answer" bash -c "scontrol ping | grep -q 'is UP'"
slurmd -f "$SLURM_CONF"
wait_for 30 slurmd test -s "$dir/slurmd.pid"
cp "$dir/slurmd.pid" "$dir/pids/slurmd.pid"
wait_for 30 "node $host idle" bash -c "[ \"\$(sinfo -h -n $host -o %t)\" = idle ]"
echo "local Slurm up: SLURM_CONF=$SLURM_CONF (ports $base, $((base + 1)))"
