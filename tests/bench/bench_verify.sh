#!/bin/sh
# bench_verify.sh BUILD DIR: `modelprep verify` throughput.
#   - integrity: bytes hashed per second, against `cat > /dev/null` of the same files (warm cache,
#     best of 3 each);
#   - numerics, per layout: verify --full (every row dequantized on the device and compared bit for
#     bit with the CPU reference, plus y = x w^T for 8 rows against its double-precision
#     reference) on the cpu backend, in GB/s of packed codes over the numeric stage's own time
#     (best of 3), and in GB/s per CPU-second of the whole process (user + sys, which a loaded
#     machine does not inflate as it does wall time); and once on PoCL. doc/verify-speed.md has
#     the bound these are measured against (printed with the figures);
#   - the default sampled check (--rows auto: n/64 rows of each tensor, 16 to 64, in runs of 8),
#     its numeric stage scaled to 10 GB of codes by the ratio of codes (the target: under a second
#     for any model of up to 10 GB of codes), per layout on: the same 4-layer model (hidden 2048:
#     1B-class layers, of which no 10 GB model is made, so its scaled figure overstates), a model
#     of wider layers (2 layers of hidden 6144, intermediate 16384: 0.39 GB of codes, the layers
#     of a 10 GB dense model), the Qwen3-30B-A3B-like MoE slice of run.sh (4 layers of 128 experts
#     of 2048 x 768: 1552 small linears, as GPTQ, per-expert cutlass-int4 and stacked cutlass-int4)
#     and the wide model exported to a GGUF (Q4_0).
# The verify runs use OMP_WAIT_POLICY=passive: on a shared machine a spinning thread burns the
# time slice its partner needs (doc/verify-speed.md).
set -e
BUILD=$1 dir=$2
m="$dir/verify-model-sym" out="$dir/scratch/verify-out"
if [ ! -f "$m/model.safetensors.index.json" ]; then
    rm -rf "$m"
    "$BUILD/tests/mkmodel" "$m" --layers 4 --hidden 2048 --intermediate 5632 --vocab 32000 --kv-heads 8 \
        --group-size 128 --sym --max-shard-size 100000000 >/dev/null
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
for i in 1 2 3; do
    "$BUILD/modelprep" verify "$out" --device cpu --rows 1 --json >"$dir/scratch/v-int-$i.json"
done
python3 - "$dir/scratch" "$bytes" "$best_cat" <<'PY'
import json, sys
d, nbytes, best_cat = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cat = nbytes / best_cat / 1e9
i = min((json.load(open(f"{d}/v-int-{k}.json")) for k in (1, 2, 3)), key=lambda r: r["integrity"]["seconds"])
gbs = i["integrity"]["bytes"] / i["integrity"]["seconds"] / 1e9
print(f"  integrity: {i['integrity']['bytes'] / 1e6:.0f} MB in {i['integrity']['seconds']:.3f} s = {gbs:.2f} GB/s;"
      f" cat > /dev/null {cat:.2f} GB/s; ratio {gbs / cat:.2f} (target >= 0.80)")
PY
"$BUILD/modelprep" verify "$out" --device opencl --full --json >"$dir/scratch/v-opencl.json" || true
export OMP_WAIT_POLICY=passive
for layout in onednn-int4 cutlass-int4 gptq-v2 awq compressed-tensors; do
    rm -rf "$out"
    "$BUILD/modelprep" convert "$m" "$out" --to $layout --quiet
    for i in 1 2 3; do
        /usr/bin/time -f '%U %S' -o "$dir/scratch/t-$layout-$i" \
            "$BUILD/modelprep" verify "$out" --device cpu --full --json >"$dir/scratch/v-$layout-$i.json"
        "$BUILD/modelprep" verify "$out" --device cpu --json >"$dir/scratch/s-$layout-$i.json"
    done
done
w="$dir/verify-model-wide"
if [ ! -f "$w/model.safetensors.index.json" ]; then
    rm -rf "$w"
    "$BUILD/tests/mkmodel" "$w" --layers 2 --hidden 6144 --intermediate 16384 --vocab 1000 --heads 48 --kv-heads 8 \
        --group-size 128 --sym --max-shard-size 500000000 >/dev/null
fi
for i in 1 2; do "$BUILD/modelprep" verify "$w" --device cpu --json >"$dir/scratch/w-gptq-$i.json"; done
for layout in cutlass-int4 gptq-v2 awq; do
    rm -rf "$out"
    "$BUILD/modelprep" convert "$w" "$out" --to $layout --quiet
    for i in 1 2; do "$BUILD/modelprep" verify "$out" --device cpu --json >"$dir/scratch/w-$layout-$i.json"; done
done
rm -rf "$out" "$dir/scratch/wide-gguf"
mkdir "$dir/scratch/wide-gguf"
"$BUILD/modelprep" convert "$w" "$dir/scratch/wide-gguf/wide.gguf" --to gguf --no-tokenizer --quiet
for i in 1 2; do
    "$BUILD/modelprep" verify "$dir/scratch/wide-gguf/wide.gguf" --device cpu --json >"$dir/scratch/w-gguf-$i.json"
done
rm -rf "$dir/scratch/wide-gguf"
moe="$dir/moe" # made by run.sh
if [ -f "$moe/model.safetensors.index.json" ]; then
    for i in 1 2; do "$BUILD/modelprep" verify "$moe" --device cpu --json >"$dir/scratch/m-gptq-$i.json"; done
    for stack in "" --stack-experts; do
        rm -rf "$out"
        "$BUILD/modelprep" convert "$moe" "$out" --to cutlass-int4 $stack --quiet
        for i in 1 2; do "$BUILD/modelprep" verify "$out" --device cpu --json >"$dir/scratch/m-cutlass-int4$stack-$i.json"; done
    done
    rm -rf "$out"
fi
python3 - "$dir/scratch" <<'PY'
import json, os, sys
d = sys.argv[1]
print(f"  load average {open('/proc/loadavg').read().split()[0]} on {os.cpu_count()} cores while measuring")
def line(v, what, cpu=None):
    codes = sum(t["n"] * t["k"] for t in v["tensors"]) / 2 / 1e9  # 4-bit codes
    num = v["numerics"]["seconds"]
    c = f"; {cpu:.2f} CPU-s = {codes / cpu:.3f} GB/s per CPU-second" if cpu else ""
    return (f"  verify --full {what}: {len(v['tensors'])} tensors, {codes:.3f} GB of codes, numerics {num:.2f} s ="
            f" {codes / num:.3f} GB/s of codes (target >= 0.5); whole run {v['seconds']:.2f} s{c}; {v['status']}")
for layout in ("onednn-int4", "cutlass-int4", "gptq-v2", "awq", "compressed-tensors"):
    runs = [(json.load(open(f"{d}/v-{layout}-{i}.json")), sum(map(float, open(f"{d}/t-{layout}-{i}").read().split())))
            for i in (1, 2, 3)]
    v = min(runs, key=lambda r: r[0]["numerics"]["seconds"])[0]
    print(line(v, f"{layout:18s} on cpu", min(r[1] for r in runs)))
def sampled(prefix, what):
    v = min((json.load(open(f"{d}/{prefix}-{i}.json")) for i in (1, 2)), key=lambda r: r["numerics"]["seconds"])
    codes = sum(t["n"] * t["k"] for t in v["tensors"]) / 2 / 1e9
    num = v["numerics"]["seconds"]
    rows = sum(t["rows"] for t in v["tensors"])
    return (f"  verify (sampled) {what}: {len(v['tensors'])} tensors, {rows} rows, {codes:.3f} GB of codes, numerics"
            f" {num:.3f} s; scaled to 10 GB of codes {num * 10 / codes:.2f} s (target < 1); {v['status']}")
for layout in ("onednn-int4", "cutlass-int4", "gptq-v2", "awq", "compressed-tensors"):
    print(sampled(f"s-{layout}", f"{layout:18s} on cpu, 1B-class layers"))
for layout in ("gptq", "cutlass-int4", "gptq-v2", "awq", "gguf"):
    print(sampled(f"w-{layout}", f"{layout:18s} on cpu, wide layers"))
for what in ("gptq", "cutlass-int4", "cutlass-int4--stack-experts"):
    try:
        print(sampled(f"m-{what}", f"{what.replace('--', ' --'):18s} on cpu, MoE (128 experts)"))
    except OSError:
        print(f"  verify (sampled) {what} MoE: SKIP (no MoE slice: run.sh makes it)")
# 1.8 to 2.3 cycles per code on an AVX-512 core (doc/verify-speed.md, fifth pass), at this machine's
# clock, on its physical cores (hyperthreads share a core's vector units)
field = lambda c, k: next((l.split(":", 1)[1].strip() for l in c.splitlines() if l.startswith(k)), "")
cpus = [c for c in open("/proc/cpuinfo").read().split("\n\n") if field(c, "processor")]
cores = len({(field(c, "physical id"), field(c, "core id")) for c in cpus})
mhz = sum(float(field(c, "cpu MHz") or 0) for c in cpus) / max(len(cpus), 1)
if "avx512f" in field(cpus[0], "flags").split():
    lo, hi = (cores * mhz * 1e6 / c * 0.5 / 1e9 for c in (2.3, 1.8))
    print(f"  bound of verify --full as defined (two dequantizations, the f32 product, the double reference): about "
          f"{lo:.2f}-{hi:.2f} GB/s of 4-bit codes on these {cores} AVX-512 cores at {mhz:.0f} MHz (1.8-2.3 cycles "
          f"per code; doc/verify-speed.md)")
else:
    print("  bound of verify --full as defined: not worked out for a CPU without AVX-512 (doc/verify-speed.md has the "
          "first pass's AVX2 figure: 0.84 GB/s on 2 cores at 2.6 GHz)")
try:
    v = json.load(open(f"{d}/v-opencl.json"))
    print(line(v, f"{'onednn-int4':18s} on opencl ({v['device']['name'][:30]})"))
except (OSError, ValueError, KeyError) as e:
    print(f"  verify --full on opencl: SKIP ({e})")
PY
rm -rf "$out"
