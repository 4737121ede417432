# hash of a safetensors checkpoint: shards in index order, tensors in data order; each tensor's
# xxh64 equals the one convert recorded in modelprep.json when it wrote the tensor.
$MKMODEL sample --layers 1 --max-shard-size 100000 >/dev/null
$MODELPREP convert sample out --to f16 --max-shard-size 200KB --quiet
$MODELPREP hash out > lines
head -3 lines
tail -1 lines
python3 - <<'PY'
import json
man = json.load(open("out/modelprep.json"))
want = {("out/" + t["file"], t["name"]): t["xxh64"] for t in man["tensors"]}
got = {}
for line in open("lines").read().splitlines()[:-1]:
    algo, digest, where = line.split(None, 2)
    f, name = where.split(":", 1)
    got[(f, name)] = digest
print("tensors:", len(got), "equal to the manifest:", got == want)
PY
$MODELPREP hash out/model-00001-of-00008.safetensors | tail -1
