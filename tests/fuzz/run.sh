#!/bin/sh
# make fuzz FUZZ_SECONDS=N: builds each libFuzzer harness with clang-14 and ASan/UBSan, runs it
# for N seconds on a scratch copy of its seed corpus, and fails on any crash, leak or UB report.
# New crashing inputs land in build/fuzz/crashes/<target>/: add them to tests/fuzz/corpus.
# FUZZ_TARGETS="config gguf" runs only those. Each run's execs are appended to
# build/fuzz/execs.log (date, target, execs, seconds, commit) for the running totals.
set -e
seconds=${1:-10}
cc=${FUZZ_CC:-clang-14}
out=build/fuzz
mkdir -p "$out"
flags="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -I. $(pkg-config --cflags libcjson) -fopenmp \
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Wno-pass-failed"
libs="$(pkg-config --libs libxxhash libcjson libzstd) -lm"
# verify/ without the device backends: the harnesses reach the reference and the manifest checks.
srcs="$(ls common/*.c formats/*.c repack/*.c) verify/dequant_ref.c verify/dequant_float.c verify/dequant_fp4.c verify/dequant_bnb.c verify/integrity.c verify/structure.c"
status=0
rev=$(git rev-parse --short HEAD 2>/dev/null || echo -) # the commit the harnesses are built from
for t in ${FUZZ_TARGETS:-st_header index config json manifest gguf journal tokenizer}; do
    extra= # the journal reader is convert/'s (the resume path)
    [ "$t" = journal ] && extra="convert/journal.c convert/dest.c"
    "$cc" $flags -o "$out/fuzz_$t" tests/fuzz/fuzz_$t.c tests/fuzz/fuzz_common.c $srcs $extra $libs
    rm -rf "$out/corpus/$t" && mkdir -p "$out/corpus/$t" "$out/crashes/$t"
    cp tests/fuzz/corpus/$t/* "$out/corpus/$t/"
    if "$out/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$out/crashes/$t/" \
        "$out/corpus/$t" >"$out/$t.log" 2>&1; then
        execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | grep -o '[0-9]*$')
        echo "fuzz $t: ${execs:-?} execs in ${seconds}s, no crash"
        echo "$(date -u +%FT%TZ) $t ${execs:-0} $seconds $rev" >>"$out/execs.log"
    else
        echo "fuzz $t: FAILED, see $out/$t.log and $out/crashes/$t/" >&2
        tail -30 "$out/$t.log" >&2
        status=1
    fi
done
exit $status
