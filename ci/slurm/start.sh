#!/usr/bin/env bash
# A real single-node SLURM for the `slurm` tests (and for trying `workbench job` by hand).
#
# Idempotent: installs slurm-wlm and munge when missing, writes the munge key and slurm.conf for
# this machine (`hostname -s`, nproc, memory), starts munged, slurmctld and slurmd unless they
# already run, and waits until `sinfo` shows the node idle. Needs root (CI machines, containers).
#
#   sudo bash ci/slurm/start.sh            # start (or check) the cluster
#   SLURM_CONF_FORCE=1 bash ci/slurm/start.sh   # rewrite slurm.conf and restart the daemons
set -euo pipefail

log() { echo "[slurm] $*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "ci/slurm/start.sh must run as root (it installs packages and starts daemons)" >&2
  exit 2
fi

# -- packages ----------------------------------------------------------------------------------
missing=()
command -v slurmctld >/dev/null || missing+=(slurmctld)
command -v slurmd >/dev/null || missing+=(slurmd)
command -v sbatch >/dev/null || missing+=(slurm-client)
command -v munged >/dev/null || missing+=(munge)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1
fi

# -- munge -------------------------------------------------------------------------------------
key=/etc/munge/munge.key
if [[ ! -s $key ]]; then
  log "writing a munge key"
  install -d -o munge -g munge -m 700 /etc/munge
  dd if=/dev/urandom of=$key bs=1024 count=1 status=none
fi
chown munge:munge $key
chmod 400 $key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null
fi

# -- slurm.conf --------------------------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
# Leave 1 GiB of the machine to the system: slurmd refuses a node that claims more than it has.
mem_mib=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 - 1024}' /proc/meminfo)
conf_dir=/etc/slurm
conf=$conf_dir/slurm.conf
mkdir -p $conf_dir /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
new_conf=$(cat <<CONF
# Written by ci/slurm/start.sh: a single-node cluster for tests.
ClusterName=workbench
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for 10 minutes.
MinJobAge=600
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
)
restart=${SLURM_CONF_FORCE:-0}
if [[ ! -f $conf ]] || [[ "$(cat $conf)" != "$new_conf" ]]; then
  log "writing $conf (node $host, $cpus CPUs, $mem_mib MiB)"
  printf '%s\n' "$new_conf" > $conf
  restart=1
fi

# -- daemons -----------------------------------------------------------------------------------
pidfile() { echo "/run/$1.pid"; }
running() { [[ -f $(pidfile "$1") ]] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }
if [[ $restart == 1 ]]; then
  for d in slurmd slurmctld; do
    if running $d; then
      log "stopping $d (configuration changed)"
      kill "$(cat "$(pidfile $d)")" || true
      for _ in $(seq 100); do running $d || break; sleep 0.1; done
    fi
  done
fi
if ! running slurmctld; then
  log "starting slurmctld"
  slurmctld
fi
if ! running slurmd; then
  log "starting slurmd"
  slurmd
fi

# -- wait for the node -------------------------------------------------------------------------
for i in $(seq 120); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1 || true)
  case $state in
    idle|mixed|allocated) log "node $host is $state"; sinfo; exit 0 ;;
    down*|drain*|drained*)
      # A node that was down before a restart comes back on request.
      scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
echo "[slurm] the node did not become idle; last state: ${state:-none}" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
