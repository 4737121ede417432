# tests/sched/slurm_cluster.sh - sourced by slurm.sh (and tests/bench when it runs parts under
# Slurm): a one-node cluster of this host in directory $1. munged, slurmctld and slurmd run as
# root in the background (no systemd), on free ports, with the state, spool, logs and munge
# socket in $1; SLURM_CONF points the clients at it. Daemon pids go to $pids for the caller's
# cleanup. Returns non-zero when the node is not idle within 30 s.
start_cluster() {
    d=$1
    host=$(hostname -s)
    port=$((20000 + $$ % 20000))
    mkdir -p "$d/munge" "$d/state" "$d/spool"
    chmod 700 "$d/munge"
    dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 2>/dev/null
    chmod 400 "$d/munge/munge.key"
    munged -f --key-file="$d/munge/munge.key" --socket="$d/munge/munge.sock" --pid-file="$d/munge/munged.pid" \
        --log-file="$d/munged.log" --seed-file="$d/munge/seed" || return 1
    cat > "$d/slurm.conf" <<CONF
ClusterName=mptest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=600
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    SLURM_CONF=$d/slurm.conf
    export SLURM_CONF
    slurmctld -c -D -f "$d/slurm.conf" >"$d/slurmctld.out" 2>&1 &
    pids="$pids $!"
    slurmd -D -f "$d/slurm.conf" -N "$host" >"$d/slurmd.out" 2>&1 &
    pids="$pids $!"
    i=0
    while [ $i -lt 300 ]; do
        [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# wait_jobs SECONDS ID...: until squeue lists none of the jobs (or the array's tasks), or time runs out.
wait_jobs() {
    limit=$(($1 * 10))
    shift
    i=0
    while [ $i -lt $limit ]; do
        left=$(for j in "$@"; do squeue -h -j "$j" -o %i 2>/dev/null; done | grep -c . || true)
        [ "$left" = 0 ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
job_reason() { squeue -h -j "$1" -o %r 2>/dev/null | head -n 1; }
