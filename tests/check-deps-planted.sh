#!/bin/sh
# check-deps can fail: in a temporary copy of the source folders, plant one bad include at a
# time and expect check-deps to exit 1 with a line naming that file and include; the untouched
# copy must pass.
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
for d in include common formats repack kernels verify convert programs; do
    [ -d "$src/$d" ] && cp -R "$src/$d" "$tmp/"
done
fail=0
out=$(sh "$src/tests/check-deps.sh" "$tmp" 2>&1) || { echo "check-deps-planted: the clean copy fails:"; echo "$out"; exit 1; }

# plant FILE INCLUDE EXPECTED-TEXT
plant() {
    cp "$tmp/$1" "$tmp/$1.orig"
    printf '#include "%s"\n' "$2" >> "$tmp/$1"
    out=$(sh "$src/tests/check-deps.sh" "$tmp" 2>&1)
    rc=$?
    mv "$tmp/$1.orig" "$tmp/$1"
    if [ $rc -ne 1 ]; then
        echo "check-deps-planted: $1 including \"$2\": check-deps exited $rc, not 1"; fail=1
    elif ! printf '%s\n' "$out" | grep -qF "check-deps: $1 includes \"$2\": $3"; then
        echo "check-deps-planted: $1 including \"$2\": no line saying \"$3\" in:"; echo "$out"; fail=1
    fi
    n=$((n + 1))
}
n=0
plant verify/run.c ../formats/formats_internal.h "formats's internal header, private to formats/"
plant programs/main.c ../formats/scheme_internal.h "formats's internal header, private to formats/"
plant convert/pipeline.c ../verify/device_internal.h "verify's internal header, private to verify/"
plant convert/pipeline.c ../programs/progress.h "convert may use only"
plant convert/split.c ../programs/cli.h "convert may use only"
plant verify/device.c ../repack/repack.h "verify may use only"
plant formats/gguf.c ../convert/dest.h "formats may use only"
plant common/error.c ../formats/formats.h "common may use only"
plant include/modelprep.h ../common/mp_common.h "include may use only"
[ $fail = 0 ] && echo "check-deps-planted: each of $n planted includes fails check-deps, naming it"
exit $fail
