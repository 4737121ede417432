#!/bin/sh
# make bench (and make bench-partitioned alone): a partitioned convert on one machine, 4 parts
# run 2 at a time (each with one thread, so the machine's 2 cores do the same work as one
# process's 2 threads), against one process; the parts' total wall time (merge included) must be
# within 10 % of the process's, and every part's peak RSS at most 256 MiB. Writes the figures,
# the date and the machine, with the on-paper figure for N machines on a 690 GB checkpoint, into
# doc/benchmarks-partitioned.md. Best of 5 rounds of each, alternating, against a shared machine's
# noise.
set -e
BUILD=${1:-build}
dir=build/bench
doc=doc/benchmarks-partitioned.md
mkdir -p "$dir/scratch"
. "$(dirname "$0")/model.sh"
bench_model "$BUILD" "$dir"
args="--to f16 --max-shard-size 100MB --quiet"
work=$(cd "$dir/scratch" && pwd)/partitioned
rm -rf "$work" && mkdir -p "$work/one" "$work/parts"
model=$(cd "$dir/model" && pwd)
mp=$(cd "$(dirname "$BUILD/modelprep")" && pwd)/modelprep
rss=$(cd "$BUILD/tests" && pwd)/bench_peak_rss
rounds=5
echo "bench: partitioned convert of $(du -sh "$model" | cut -f1) GPTQ to f16: 4 parts 2 at a time against one process, best of $rounds rounds"
best_one="" best_parts="" all_rounds=""
for r in $(seq "$rounds"); do
    rm -rf "$work/one/out" "$work/parts/out"
    sync
    # shellcheck disable=SC2086
    one=$(cd "$work/one" && "$rss" one "$mp" convert "$model" out $args)
    sync
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    parts=$(cd "$work/parts" && printf '%s\n' 0 1 2 3 |
        OMP_NUM_THREADS=1 xargs -P 2 -I{} "$rss" "part-{}" "$mp" convert "$model" out $args --part {}/4)
    end=$(date +%s.%N)
    t=$(echo "$start $end" | awk '{printf "%.2f", $2 - $1}')
    echo "  round $r: $one; 4 parts: $t s"
    all_rounds="$all_rounds| $r | $(echo "$one" | sed -n 's/^one *\([0-9.]*\) s,.*/\1/p') s | $t s |
"
    echo "$parts" | sed 's/^/    /'
    t1=$(echo "$one" | sed -n 's/^one *\([0-9.]*\) s,.*/\1/p')
    if [ -z "$best_one" ] || awk "BEGIN {exit !($t1 < $best_one)}"; then best_one=$t1 one_line=$one; fi
    if [ -z "$best_parts" ] || awk "BEGIN {exit !($t < $best_parts)}"; then best_parts=$t parts_best=$parts; fi
done
one=$one_line
parts=$parts_best
diff -r "$work/one/out" "$work/parts/out" >/dev/null && same=yes || same=no
echo "  output identical to one process's: $same"
t_one=$best_one
t_parts=$best_parts
max_rss=$(echo "$parts" | sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' | sort -n | tail -n 1)
one_rss=$(echo "$one" | sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p')
out_gb=$(du -sb "$work/one/out" | awk '{printf "%.2f", $1 / 1e9}')
in_gb=$(du -sb "$model" | awk '{printf "%.2f", $1 / 1e9}')
ratio=$(echo "$t_parts $t_one" | awk '{printf "%.3f", $1 / $2}')
time_ok=$(echo "$ratio" | awk '{print ($1 <= 1.10) ? "yes" : "no"}')
rss_ok=$(echo "$max_rss" | awk '{print ($1 <= 256) ? "yes" : "no"}')
echo "  parts total ${t_parts} s against one process ${t_one} s: ratio $ratio (target <= 1.10: $time_ok)"
echo "  largest peak RSS of a part: ${max_rss} MiB (target <= 256: $rss_ok)"
rm -rf "$work"
{
    echo "# Benchmarks: partitioned jobs"
    echo
    echo "Written by \`make bench\` (\`tests/bench/partitioned.sh\`); how partitioned jobs work:"
    echo "[partitioned.md](partitioned.md). Other figures: [benchmarks.md](benchmarks.md)."
    echo
    echo "## 1. Measured: 4 parts, 2 at a time, against one process"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)),"
    echo "$(free -g | awk '/^Mem:/ {print $2}') GiB of memory, $(uname -sr). \`convert $args\` of the ${in_gb} GB GPTQ"
    echo "benchmark checkpoint (16 layers, hidden 2048) into ${out_gb} GB of f16 in 100 MB shards. One process"
    echo "uses both cores (OpenMP); the parts run 2 at a time with \`OMP_NUM_THREADS=1\` each, so both"
    echo "runs have the machine's two cores; the parts' time runs from the first part's start to the"
    echo "last part's end, its merge included. Warm page cache for the source; the best of $rounds"
    echo "rounds each (the machine is shared: the load average was $(cut -d' ' -f1-3 /proc/loadavg) at the end)."
    echo
    echo "| run | wall time | peak RSS | target |"
    echo "|---|---|---|---|"
    echo "| one process | ${t_one} s | ${one_rss} MiB | |"
    echo "$parts" | sed -n 's/^\(part-[0-9]\) *\([0-9.]*\) s, peak RSS \([0-9.]*\) MiB.*/| \1 | \2 s | \3 MiB | ≤ 256 MiB |/p'
    echo "| 4 parts, 2 at a time, merge included | ${t_parts} s (× ${ratio}) | ${max_rss} MiB at most | within 10 %: $time_ok; ≤ 256 MiB: $rss_ok |"
    echo
    echo "Every round (the spread is the shared machine's disk, not the job: one round may find the"
    echo "parts faster than the process, the next slower):"
    echo
    echo "| round | one process | 4 parts, 2 at a time |"
    echo "|---|---|---|"
    printf '%s' "$all_rounds"
    printf '%s' "$all_rounds" | awk -F'|' '{o += $3; p += $4} END {printf "| all | %.2f s | %.2f s (× %.3f) |\n", o, p, p / o}'
    echo
    echo "The merged output is byte for byte the one process's: $same."
    echo
    echo "## 2. On paper: N machines on a 690 GB checkpoint"
    echo
    echo "DeepSeek-V3 in FP8 is about 690 GB; \`convert --to bf16\` writes about 1.3 TB. Every byte"
    echo "moves over a node's link to the shared file system, assumed **1 GB/s per node** (a 10 GbE"
    echo "NFS client, or a SATA-SSD-class disk), with the file system's aggregate bandwidth above N"
    echo "GB/s. A whole run reads the source twice (the tensors, and the source hashes of the"
    echo "manifest) and writes the output: 2 × 690 + 1300 = 2680 GB. Partitioned, each part reads"
    echo "the source files of its shards plus 1/N of the source for the hashes and writes 1/N of"
    echo "the output: 2680/N GB, plus an imbalance of at most one output shard (5 GB by default)"
    echo "and its inputs. The merge reads no weight (seconds). Conversion itself runs at ≥ 1 GB/s"
    echo "per node on 8 cores (the dense path of [benchmarks-float.md](benchmarks-float.md) on 2"
    echo "cores), so the link is the limit."
    echo
    echo "| machines N | bytes per node | time at 1 GB/s per node |"
    echo "|---|---|---|"
    for n in 1 2 4 8 16 32 64; do
        echo "$n" | awk '{b = 2680 / $1 + ($1 > 1 ? 7.5 : 0); printf "| %d | %.0f GB | %.0f s (%.1f min) |\n", $1, b, b, b / 60}'
    done
    echo
    echo "Beyond the file system's aggregate bandwidth (for example 20 GB/s: N = 20) more machines"
    echo "do not help: the job then takes 2680 GB / 20 GB/s = 134 s at best."
} > "$doc"
echo "bench: wrote $doc"
[ "$same" = yes ] || { echo "bench: the parts' output differs from one process's" >&2; exit 1; }
