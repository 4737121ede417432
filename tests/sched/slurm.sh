#!/bin/sh
# tests/sched/slurm.sh - a one-node Slurm cluster on this machine, from Debian's packages (munge,
# slurmctld, slurmd), configured for localhost here with its state in a temporary directory.
# contrib/slurm/submit.sh submits the array of 4 parts and the afterok merge; the result must
# equal one process's byte for byte. Then task 2 of a split is stopped mid-way, once it has
# written a layer file, and cancelled (scancel): the merge job can never run, `modelprep merge` names part 2, and
# re-submitting that part alone (submit.sh --array=2) completes the job, again byte for byte.
# The daemons run as root, in the background, without systemd; where they cannot start, every
# check prints SKIP with the reason (never a pass).
. "$(dirname "$0")/common.sh"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

skip_all() {
    skip "$1"
    summary slurm
    exit 0
}
[ "$(id -u)" = 0 ] || skip_all "the Slurm daemons need root here (run make test as root)"
for b in munged slurmctld slurmd sbatch squeue scancel sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || skip_all "$b is not installed (Debian packages munge, slurmctld, slurmd, slurm-client; make deps installs them)"
done

T=$(mktemp -d /tmp/mp-slurm.XXXXXX)
chmod 755 "$T"
pids=""
cleanup() {
    # this cluster's jobs first (SLURM_CONF points at it), so no task outlives its slurmd
    [ -n "${SLURM_CONF:-}" ] && squeue -h -o %i 2>/dev/null | xargs -r scancel --full --signal=KILL 2>/dev/null
    sleep 1
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    [ -f "$T/munge/munged.pid" ] && kill "$(cat "$T/munge/munged.pid")" 2>/dev/null || true
    sleep 1
    rm -rf "$T" "${work:-/nonexistent}"
}
trap cleanup EXIT
. "$here/slurm_cluster.sh"
start_cluster "$T" || skip_all "the Slurm daemons did not start: $(tail -n 3 "$T"/*.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)"

setup_work
cd parts
export MODELPREP SLURM_CONF
export SBATCH_OPTS="--cpus-per-task=1 --mem=64M --output=$T/logs/%x-%A_%a.out"
mkdir -p "$T/logs"

# ids OUTPUT: the array's and the merge's job ids from submit.sh's output
ids() { parts_id=$(echo "$1" | sed -n 's/^parts: \([0-9]*\).*/\1/p'); merge_id=$(echo "$1" | sed -n 's/^merge: \([0-9]*\).*/\1/p'); }

# shellcheck disable=SC2086
ids "$("$repo/contrib/slurm/submit.sh" 4 convert ../src out $CONVERT_ARGS)"
wait_jobs 120 "$parts_id" "$merge_id" || fail "the convert array and merge did not finish within 120 s"
[ "$(job_state "$merge_id")" = COMPLETED ] || fail "merge job $merge_id: $(job_state "$merge_id") ($(cat "$T"/logs/*merge* 2>/dev/null))"
same out "convert as a Slurm array of 4 tasks and an afterok merge job"

# Task 2 of the split stops mid-way (tests/gen/stopat.c: at the fsync of its first layer file,
# before its rename and its record) and is cancelled there.
stopat=$(cd "$(dirname "$MKMODEL")" && pwd)/libstopat.so
[ -f "$stopat" ] || fail "$stopat is missing (make builds it with the test tools)"
cat > "$T/hold-part-2" <<HOLD
#!/bin/sh
if [ "\${SLURM_ARRAY_TASK_ID:-}" = 2 ] && [ -e "$T/hold" ]; then
    export LD_PRELOAD="$stopat" MP_STOP_AT=.safetensors MP_STOP_FLAG="$T/stopped" \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
fi
exec "$MODELPREP" "\$@"
HOLD
chmod +x "$T/hold-part-2"
touch "$T/hold"
# shellcheck disable=SC2086
ids "$(MODELPREP="$T/hold-part-2" "$repo/contrib/slurm/submit.sh" 4 split ../src sp $SPLIT_ARGS)"
i=0
while [ ! -e "$T/stopped" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -e "$T/stopped" ] || fail "task 2 of the split never started"
scancel --full --signal=KILL "${parts_id}_2"  # as a node failure or OOM kill would: no chance to clean up
wait_jobs 60 "$parts_id" || fail "the split array did not end after scancel"
# slurmctld re-evaluates dependencies on its own schedule: the merge job may read "Dependency" for
# a moment after the array ended, then "DependencyNeverSatisfied"
i=0
while [ "$(job_reason "$merge_id")" = Dependency ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(job_reason "$merge_id")" = DependencyNeverSatisfied ] || fail "merge job $merge_id: $(job_reason "$merge_id"), want DependencyNeverSatisfied"
scancel "$merge_id"
# Part 2 never got past its first layer file: no record, nothing committed, its files left for the
# re-run.
[ ! -e sp ] && [ ! -e sp.partial-*/.modelprep-part-2-of-4.json ] || fail "the cancelled part left a record, or sp was committed: $(ls -A . sp.partial-* 2>&1 | tr "\n" " ")"
err=$("$MODELPREP" merge sp 2>&1) && fail "merge with part 2 cancelled exited 0"
echo "$err" | grep -q "part 2/4 has not finished" || fail "merge does not name part 2: $err"
pass "scancel of task 2 mid-way: the afterok merge never runs, modelprep merge names part 2 (exit 4)"
rm -f "$T/hold"
# shellcheck disable=SC2086
ids "$("$repo/contrib/slurm/submit.sh" --array=2 4 split ../src sp $SPLIT_ARGS)"
wait_jobs 120 "$parts_id" "$merge_id" || fail "the re-submitted part and merge did not finish within 120 s"
[ "$(job_state "$merge_id")" = COMPLETED ] || fail "merge job $merge_id after re-submitting part 2: $(job_state "$merge_id")"
same sp "split completed by re-submitting task 2 alone (sbatch --array=2)"
summary slurm
