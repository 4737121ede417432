#!/bin/sh
# contrib/slurm/submit.sh - submit a modelprep convert or split as N array tasks plus the merge:
#
#   contrib/slurm/submit.sh N convert SRC DST --to f16 [options]
#   contrib/slurm/submit.sh N split SRC DST [options]
#   contrib/slurm/submit.sh --array=2 N convert SRC DST ...   (re-submit part 2 alone, and a merge)
#
# Prints the array's and the merge's job ids. Extra sbatch options go in SBATCH_OPTS (e.g.
# "--partition=cpu --time=2:00:00"); MODELPREP and MODELPREP_JOB_ID are passed to the tasks.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
array=""
case "${1:-}" in --array=*) array=${1#--array=}; shift ;; esac
if [ $# -lt 4 ]; then
    echo "usage: submit.sh [--array=LIST] N convert|split SRC DST [options]" >&2
    exit 2
fi
n=$1
case "$n" in ''|*[!0-9]*) echo "submit.sh: N must be a number of parts, not '$n'" >&2; exit 2 ;; esac
dst=$4
[ -n "$array" ] || array="0-$((n - 1))"
# shellcheck disable=SC2086
parts=$(sbatch --parsable ${SBATCH_OPTS:-} --array="$array" "$here/convert.sbatch" "$@")
parts=${parts%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_OPTS:-} --dependency=afterok:"$parts" "$here/merge.sbatch" "$dst")
merge=${merge%%;*}
echo "parts: $parts (array $array of $n)"
echo "merge: $merge (after the parts succeed)"
