# --for chooses whose loader the files are for (doc/split-runtimes.md): airllm and rabbitllm put
# a .done marker beside every layer file; for a tied head, rabbitllm adds lm_head.safetensors
# without tensors (AirLLM keeps the embedding resident instead); plain writes neither.
# --materialize-tied writes the head from the embedding, with its marker.
$MKMODEL tied --layers 1 --tied >/dev/null
$MKMODEL untied --layers 1 --max-shard-size 300000 >/dev/null
for rt in airllm rabbitllm plain; do
    $MODELPREP split tied "tied-$rt" --for "$rt" --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["for"], d["done_markers"], d["empty_head"], d["files"])'
    echo "tied --for $rt:" $(ls "tied-$rt" | grep safetensors)
done
$MODELPREP split untied untied-airllm --for airllm --quiet
echo "untied --for airllm:" $(ls untied-airllm | grep safetensors)
$MODELPREP split tied tied-mat --for rabbitllm --materialize-tied
echo "tied --for rabbitllm --materialize-tied:" $(ls tied-mat | grep safetensors)
python3 - <<'PY'
import json, struct
for d in ("tied-rabbitllm", "tied-mat"):
    raw = open(d + "/lm_head.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    h.pop("__metadata__")
    print(d, "lm_head.safetensors:", sorted(h), len(raw), "bytes")
    lay = json.load(open(d + "/modelprep.json"))["layout"]
    print(d, {k: lay.get(k) for k in ("runtime", "done_markers", "empty_modules", "tied_materialized")})
for d in ("tied-airllm", "tied-rabbitllm", "tied-mat"):
    import os
    assert all(os.path.getsize(os.path.join(d, f)) == 0 for f in os.listdir(d) if f.endswith(".done"))
print("markers are empty files")
PY
