# tests/sched/common.sh - sourced by the scheduler tests (parallel.sh, slurm.sh): the model, the
# one-process reference, the byte-for-byte comparison and the summary line test_cli.c reads
# ("NAME ok: N checks passed, M skipped"; a check that cannot run prints "SKIP: reason").
set -eu
: "${MODELPREP:?MODELPREP names the modelprep binary}" "${MKMODEL:?MKMODEL names tests/gen/mkmodel}"
checks=0
skipped=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
skip() { skipped=$((skipped + 1)); echo "SKIP: $*"; }
fail() { echo "FAIL: $*"; exit 1; }
summary() { echo "$1 ok: $checks checks passed, $skipped skipped"; }

# In a fresh work directory: src (6 layers, several source shards) and, in one/, what one
# process writes for the jobs the tests partition. The parts run in parts/, so that SRC and DST
# are the same relative paths and the manifests' command lines can be equal.
CONVERT_ARGS="--to f16 --max-shard-size 300KB"
SPLIT_ARGS="--compress zstd:3"
setup_work() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/mp-sched.XXXXXX")
    cd "$work"
    "$MKMODEL" src --layers 6 --max-shard-size 400000 >/dev/null
    mkdir one parts
    # shellcheck disable=SC2086
    (cd one && "$MODELPREP" convert ../src out $CONVERT_ARGS && "$MODELPREP" split ../src sp $SPLIT_ARGS) >/dev/null
}

# same DIR WHAT: parts/DIR holds byte for byte what one/DIR does, nothing else beside it.
same() {
    diff -r "$work/one/$1" "$work/parts/$1" || fail "$2: parts/$1 differs from one process's output"
    leftover=$(cd "$work/parts" && ls -A | grep "^$1\.partial-" || true)
    [ -z "$leftover" ] || fail "$2: $leftover left beside DST"
    pass "$2: byte for byte what one process writes, manifest included"
}
