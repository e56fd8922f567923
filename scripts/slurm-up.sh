#!/usr/bin/env bash
# Start a one-node Slurm 22.05 (Debian's slurm-wlm + munge) for tests and the
# local HPC mode. Idempotent: a running cluster with the same conf is reused.
# Usage: scripts/slurm-up.sh STATE_DIR   -> prints the SLURM_CONF path
set -euo pipefail
state=$(realpath -m "${1:-${LENS_STATE_DIR:-state}}/slurm")
conf="$state/slurm.conf"
[ "$(id -u)" = 0 ] || { echo "slurm-up: needs root (slurmd runs jobs as their users)" >&2; exit 1; }
command -v slurmctld >/dev/null || { echo "slurm-up: slurm-wlm is not installed" >&2; exit 1; }
mkdir -p "$state"/{spool,ctld,log} /run/munge /var/log/munge /etc/munge
chmod 755 "$state"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
# slurmd may claim more CPUs than exist (config_overrides) so that 1000-member
# arrays and multi-node runs can be exercised on 2 cores.
cat > "$conf.new" <<CONF
ClusterName=lens
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmdParameters=config_overrides
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.log
JobAcctGatherType=jobacct_gather/none
MaxArraySize=10001
MaxJobCount=50000
MinJobAge=300
SchedulerParameters=defer_max,batch_sched_delay=1
NodeName=${host} NodeAddr=127.0.0.1 CPUs=16 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
if [ -f "$conf" ] && cmp -s "$conf" "$conf.new" && SLURM_CONF=$conf timeout 5 sinfo -h >/dev/null 2>&1; then
  rm -f "$conf.new"; echo "$conf"; exit 0
fi
mv "$conf.new" "$conf"
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge
chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 0.5
export SLURM_CONF=$conf
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then echo "$conf"; exit 0; fi
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 0.5
done
echo "slurm-up: node did not become idle; see $state/log" >&2
exit 1
