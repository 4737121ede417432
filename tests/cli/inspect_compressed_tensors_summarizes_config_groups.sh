# Issue 14: compressed-tensors keeps bits, group size and symmetry in its config groups; inspect's
# summary line (and --json) reads them there, "per-channel" for the channel strategy; when the
# groups disagree it lists each group (name, bits, group, symmetry, actorder, targets), and --json
# gives them as "config_groups" (the top-level fields null).
show() {
    $MODELPREP inspect $1 | grep '^quantization'
    $MODELPREP inspect $1 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["quantization"])'
}
$MKMODEL gptq --layers 1 --group-size 64 >/dev/null
$MODELPREP convert gptq ct --to compressed-tensors --quiet
show ct
$MKMODEL chan --layers 1 --group-size -1 --sym >/dev/null
$MODELPREP convert chan ct-chan --to compressed-tensors --quiet
show ct-chan
python3 - <<'PY'
import json
c = json.load(open("ct/config.json"))
groups = c["quantization_config"]["config_groups"]
g1 = json.loads(json.dumps(groups["group_0"]))
g1["weights"]["num_bits"] = 8
g1["targets"] = ["re:.*no_such_linear"]
groups["group_1"] = g1
json.dump(c, open("ct/config.json", "w"))
PY
show ct
