#!/bin/sh
# run.sh [BUNDLE] - the GPU check of the cuda backend, as one command on a bare machine with an
# NVIDIA GPU and no package registry (doc/cuda.md, "The device script"). BUNDLE (build/device)
# is made here by `make device-bundle` and carried: the binaries, their libraries, the small
# checkpoints. Steps:
#   1. ldd: every library of the bundle is found;
#   2. `modelprep devices`: a usable cuda device, or the reason and exit 3 (no driver, the stub,
#      no device, NVRTC missing or unable) - where a rehearsal without a GPU stops;
#   3. verify --device cuda --full of one output of every layout against its source, and of the
#      float-format sources (FP8, NVFP4, MXFP4, bitsandbytes: kernels/fp8.cl, fp4.cl, bnb4.cl,
#      bnb8.cl) against their own layout: exit 0, the report's first line names the cuda device;
#   4. the broken layouts and the float checkpoints with a flipped scale byte: exit 1, and a FAIL
#      line naming the tensor or the differing values;
#   5. a generated checkpoint of about 2 GB of cutlass-int4 codes: --full and the default
#      sampled check, with their throughput in GB/s of packed codes.
# Prints PASS/FAIL per check and a summary; exit 0 only when every check passed.
# Rehearsal of steps 3-5 without a GPU: MP_DEVICE=cpu MP_BIG="--layers 1 --hidden 1024
# --intermediate 2816" runs them on the cpu backend with a small "large" checkpoint.
set -u
B=${1:-build/device}
DEV=${MP_DEVICE:-cuda}
BIG=${MP_BIG:---layers 4 --hidden 8192 --intermediate 28672}
MP="$B/bin/modelprep" MK="$B/bin/mkmodel" M="$B/models"
W=${TMPDIR:-/tmp}/mp-device.$$
# The bundle's libraries that this machine lacks, and only those: a system's own newer libstdc++
# or libgomp must win over the copies from the build machine.
mkdir -p "$W/lib"
trap 'rm -rf "$W"' EXIT
for f in "$B"/lib/*; do
    [ -e "$f" ] || continue
    ldconfig -p 2>/dev/null | grep -q "[[:space:]]$(basename "$f") " || ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$W/lib/"
done
echo "carried libraries used: $(ls "$W/lib" | tr '\n' ' ')"
export LD_LIBRARY_PATH="$W/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
t0=$(date +%s)

echo "== 1. the bundle's binaries load"
for b in "$MP" "$MK"; do
    if [ ! -x "$b" ]; then echo "FAIL $b is missing: run 'make device-bundle' before carrying $B"; exit 4; fi
    if ldd "$b" | grep 'not found'; then echo "FAIL $b: libraries not found (above)"; exit 4; fi
done
ok "ldd: every library of modelprep and mkmodel found"

echo "== 2. modelprep devices"
# NVRTC: the loader's, else the one beside the toolkit's nvcc.
if [ -z "${MODELPREP_NVRTC:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so\.1[23] ' &&
    command -v nvcc >/dev/null 2>&1; then
    for f in "$(dirname "$(command -v nvcc)")"/../lib64/libnvrtc.so.1[0-9] \
             "$(dirname "$(command -v nvcc)")"/../lib/libnvrtc.so.1[0-9]; do
        [ -e "$f" ] && export MODELPREP_NVRTC="$f" && break
    done
fi
"$MP" devices
if [ "$DEV" = cuda ] &&
    ! "$MP" devices --json | grep -q '"name": "cuda", "usable": true, "status": "ok", "devices": \[{[^]]*"usable": true'; then
    "$MP" verify "$M/sym-cutlass-u4" --device cuda >/dev/null
    rc=$?
    echo "STOP: no usable CUDA device (verify --device cuda: exit $rc); nothing ran on a GPU"
    exit "$rc"
fi
ok "devices: a usable $DEV device"

echo "== 3. every layout, --device $DEV --full, against its source"
while read -r name src; do
    # src "-": the checkpoint is a quantized source itself, checked against its own layout
    if [ "$src" = - ]; then ref="--no-source"; else ref="--against $M/$src"; fi
    # shellcheck disable=SC2086 # ref is one or two words (the bundle's paths have no spaces)
    out=$("$MP" verify "$M/$name" $ref --device "$DEV" --full 2>&1)
    rc=$?
    first=$(echo "$out" | head -n 1)
    case $first in "device:    $DEV"*) named=1 ;; *) named=0 ;; esac
    if [ $rc = 0 ] && [ $named = 1 ]; then ok "$name: $(echo "$out" | tail -n 1)"
    else bad "$name: exit $rc, first line '$first'"; echo "$out" | tail -n 15; fi
done <"$M/good.txt"

echo "== 4. broken layouts fail and name the tensor"
while read -r name src needle; do
    out=$("$MP" verify "$M/$name" --against "$M/$src" --device "$DEV" --full 2>&1)
    rc=$?
    line=$(echo "$out" | grep "^FAIL numerics: .*$needle" | head -n 1)
    if [ $rc = 1 ] && [ -n "$line" ]; then ok "$name: $line"
    else bad "$name: exit $rc, no FAIL line with '$needle'"; echo "$out" | tail -n 8; fi
done <"$M/cases.txt"

echo "== 5. about 2 GB of cutlass-int4 codes"
big="$W/big-gptq" out="$W/big-cutlass"
# shellcheck disable=SC2086 # BIG is a list of options
"$MK" "$big" $BIG --kv-heads 8 --vocab 32000 --group-size 128 --sym \
    --max-shard-size 2000000000 >/dev/null && "$MP" convert "$big" "$out" --to cutlass-int4 --quiet
rc=$?
if [ $rc != 0 ]; then bad "generating the large checkpoint: exit $rc"; else
    rm -rf "$big"
    for mode in "--full" "--rows 64"; do
        s=$(date +%s.%N)
        # shellcheck disable=SC2086 # the mode is one or two words
        "$MP" verify "$out" --no-source --device "$DEV" $mode --json >"$W/v.json" 2>"$W/v.err"
        rc=$?
        e=$(date +%s.%N)
        line=$(python3 - "$W/v.json" "$s" "$e" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
codes = sum(t["n"] * t["k"] for t in v["tensors"]) / 2 / 1e9
wall = float(sys.argv[3]) - float(sys.argv[2])
num = v["seconds"] - v["integrity"]["seconds"]
print(f"{len(v['tensors'])} tensors, {codes:.3f} GB of codes, {sum(t['rows'] for t in v['tensors'])} rows; "
      f"report {v['seconds']:.2f} s (integrity {v['integrity']['seconds']:.2f} s), wall {wall:.2f} s; "
      f"numerics {codes / max(num, 1e-9):.2f} GB/s of codes; device {v['device']['name']}; {v['status']}")
PY
)
        if [ $rc = 0 ]; then ok "verify $mode: $line"; else bad "verify $mode: exit $rc: $(cat "$W/v.err") $line"; fi
    done
fi
echo "== summary: $pass passed, $fail failed ($(($(date +%s) - t0)) s)"
[ $fail = 0 ]
