#!/bin/sh
# bench_verify.sh BUILD DIR: `modelprep verify` throughput.
#   - integrity: bytes hashed per second, against `cat > /dev/null` of the same files (warm cache,
#     best of 3 each);
#   - numerics: seconds per GB of packed weights with --full (every row dequantized on the device
#     and compared bit for bit, plus y = x w^T for 8 rows), on the cpu backend and on PoCL.
set -e
BUILD=$1 dir=$2
m="$dir/verify-model" out="$dir/scratch/verify-out"
if [ ! -f "$m/model.safetensors.index.json" ]; then
    rm -rf "$m"
    "$BUILD/tests/mkmodel" "$m" --layers 4 --hidden 2048 --intermediate 5632 --vocab 32000 --kv-heads 8 \
        --group-size 128 --max-shard-size 100000000 >/dev/null
fi
rm -rf "$out"
"$BUILD/modelprep" convert "$m" "$out" --to onednn-int4 --quiet
cat "$out"/* >/dev/null
bytes=$(cat "$out"/* | wc -c)
# best of 3 each, warm cache
best_cat=1000
for i in 1 2 3; do
    t0=$(date +%s.%N); cat "$out"/* >/dev/null; t1=$(date +%s.%N)
    best_cat=$(python3 -c "print(min($best_cat, $t1 - $t0))")
done
t0=0 t1=$best_cat
for i in 1 2 3; do
    "$BUILD/modelprep" verify "$out" --device cpu --rows 1 --json >"$dir/scratch/v-int-$i.json"
done
python3 - "$dir/scratch" <<'PY'
import json, sys
d = sys.argv[1]
runs = [json.load(open(f"{d}/v-int-{i}.json")) for i in (1, 2, 3)]
json.dump(min(runs, key=lambda r: r["integrity"]["seconds"]), open(f"{d}/v-int.json", "w"))
PY
for dev in cpu opencl; do
    "$BUILD/modelprep" verify "$out" --device $dev --full --json >"$dir/scratch/v-$dev.json"
done
python3 - "$dir/scratch" "$bytes" "$t0" "$t1" <<'PY'
import json, sys
d, nbytes, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
cat = nbytes / (t1 - t0) / 1e9
i = json.load(open(f"{d}/v-int.json"))
gbs = i["integrity"]["bytes"] / i["integrity"]["seconds"] / 1e9
print(f"  integrity: {i['integrity']['bytes'] / 1e6:.0f} MB in {i['integrity']['seconds']:.3f} s = {gbs:.2f} GB/s;"
      f" cat > /dev/null {cat:.2f} GB/s; ratio {gbs / cat:.2f} (target >= 0.80)")
for dev in ("cpu", "opencl"):
    v = json.load(open(f"{d}/v-{dev}.json"))
    packed = sum(t["n"] * t["k"] for t in v["tensors"]) / 2 / 1e9  # 4-bit codes
    print(f"  numerics --full on {dev} ({v['device']['name'][:40]}): {len(v['tensors'])} tensors,"
          f" {packed:.3f} GB of codes, {v['seconds']:.2f} s = {v['seconds'] / packed:.1f} s per GB; {v['status']}")
PY
rm -rf "$out"
