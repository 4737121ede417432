# An input file cut short while modelprep has it mapped (tests/gen/truncat.c truncates it to
# 800000 bytes right after its first mmap, as another process rewriting the checkpoint would):
# the lost pages fault (SIGBUS), and every command that maps inputs says so in one line naming
# the file, exit 4, never a crash. A job stops as a killed one does: DST is not committed (its
# partial directory stays for --resume when the fault came after it was made).
# Which read meets the lost pages first depends on the threads' timing: a read through the
# mapping faults ("cut short while being read"), a pread finds the end ("unexpected end of
# file"); either is the one line this checks. The listing leaves partial directories out.
# (ASAN_OPTIONS: the sanitizer build accepts a preloaded library before its runtime.)
cut_short() { # FILE ARGS...: runs modelprep ARGS with FILE cut short at its first mapping
    f=$1
    shift
    set +e
    LD_PRELOAD=$(dirname "$MKMODEL")/libtruncat.so MP_TRUNC_AT="$f" MP_TRUNC_TO=800000 \
        ASAN_OPTIONS=verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS} "$MODELPREP" "$@" >/dev/null 2>err.txt
    rc=$?
    set -e
    if [ "$(wc -l <err.txt)" = 1 ] && grep -Eq "^modelprep: $f: (cut short while being read|.*unexpected end of file)" err.txt; then
        echo "$*: exit $rc, one line naming $f"
    else
        echo "$*: exit $rc: $(cat err.txt)"
    fi
    rm err.txt
}
for args in "verify m --quiet" "verify m --device cpu --full --quiet" "split m s --quiet" \
            "convert m c --to f16 --quiet"; do
    rm -rf m && $MKMODEL m --layers 2 >/dev/null
    # shellcheck disable=SC2086
    cut_short m/model.safetensors $args
done
for args in "verify o --quiet" "verify o --device cpu --full --quiet"; do
    rm -rf m o && $MKMODEL m --layers 2 >/dev/null && $MODELPREP convert m o --to onednn-int4 --quiet
    # shellcheck disable=SC2086
    cut_short o/model.safetensors $args
done
ls | grep -v '\.partial-'
