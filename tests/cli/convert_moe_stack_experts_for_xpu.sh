# --stack-experts: per-expert linears become w13 [E, 2N, K/2] (gate rows, then up rows) and
# w2 [E, H, I/2], with scales alike; the router stays as it is. Each slice equals its expert.
$MKMODEL moe --layers 2 --experts 4 --sym >/dev/null
$MODELPREP convert moe stacked --to cutlass-int4 --int4 s4 --stack-experts
$MODELPREP convert moe single --to cutlass-int4 --int4 s4 --quiet
$MODELPREP inspect stacked | grep -E 'layers\.0\.mlp\.(experts\.w|gate)'
python3 $SRC/tests/ref/check_stack.py stacked single
python3 -c 'import json; print(json.load(open("stacked/modelprep.json"))["layout"]["stacked_experts"])'
