#!/bin/sh
# tests/sched/parallel.sh - GNU parallel runs the 4 parts of a convert and of a split at once
# (the recipe of doc/partitioned.md): they race to create the shared partial directory and to
# merge, and the result equals one process's. Prints SKIP without GNU parallel.
. "$(dirname "$0")/common.sh"
if ! command -v parallel >/dev/null 2>&1; then
    skip "GNU parallel is not installed (Debian package parallel; make deps installs it)"
    summary parallel
    exit 0
fi
setup_work
trap 'rm -rf "$work"' EXIT
cd parts
for round in 1 2 3; do
    rm -rf out sp
    # shellcheck disable=SC2086
    parallel --will-cite --halt now,fail=1 -j 4 "$MODELPREP" convert ../src out $CONVERT_ARGS --part {}/4 ::: 0 1 2 3 >/dev/null ||
        fail "convert round $round: a part failed"
    "$MODELPREP" merge out --quiet || fail "convert round $round: merge after the parts failed"
    same out "convert, 4 parts under GNU parallel -j 4 (round $round)"
    # shellcheck disable=SC2086
    parallel --will-cite --halt now,fail=1 -j 4 "$MODELPREP" split ../src sp $SPLIT_ARGS --part {}/4 ::: 0 1 2 3 >/dev/null ||
        fail "split round $round: a part failed"
    "$MODELPREP" merge sp --quiet || fail "split round $round: merge after the parts failed"
    same sp "split --compress, 4 parts under GNU parallel -j 4 (round $round)"
done
summary parallel
