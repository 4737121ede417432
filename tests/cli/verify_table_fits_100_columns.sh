# The verdict comes first and the table fits 100 columns, long names cut from the left; --json
# keeps the full names and every metric.
$MKMODEL moe --layers 1 --experts 4 --sym >/dev/null
$MODELPREP convert moe stacked --to cutlass-int4 --stack-experts --quiet
$MODELPREP verify stacked --device cpu --rows 4 >report.txt
awk '/^ *TENSOR/ || /^(PASS|FAIL|WARN)  / { if (length($0) > m) m = length($0) } END { print "widest table line:", m }' report.txt
grep -E '^ *TENSOR|w13_qweight\[3\]\.up_proj' report.txt
$MODELPREP verify stacked --device cpu --rows 4 --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
t = [x for x in r["tensors"] if x["name"].endswith("w13_qweight[3].up_proj")][0]
print(t["name"], t["status"], sorted(k for k in t if k not in ("name", "status")))'
