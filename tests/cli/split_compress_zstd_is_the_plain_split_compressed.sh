# --compress zstd:5 writes NAME.safetensors.zst files that the zstd CLI decompresses to exactly
# the plain split's files; the index is model.safetensors.zst.index.json; the manifest records
# both sizes and hashes; inspect reads the compressed split; modelprep splits it back to the
# plain bytes.
$MKMODEL tied --layers 2 --tied --max-shard-size 300000 >/dev/null
$MODELPREP split tied plain --quiet
$MODELPREP split tied packed --compress zstd:5 | sed 's/, [0-9.]* MB\/s$/, N MB\/s/'
ls packed
for f in packed/*.safetensors.zst; do
    b=$(basename "$f" .zst)
    zstd -q -d -c "$f" | cmp - "plain/$b"
    echo "$b.zst: zstd -d gives the plain split's file"
done
# The hashes of the files on disk, checked against the same files hashed as the source of
# another split (a separate code path), and the uncompressed ones against the plain split.
$MODELPREP split packed again --quiet
python3 - <<'PY'
import json, os
p = json.load(open("packed/modelprep.json"))
q = json.load(open("plain/modelprep.json"))
a = json.load(open("again/modelprep.json"))
print(p["layout"])
src = {f["name"]: f for f in a["source"]["files"]}
plain = {f["name"]: f for f in q["files"]}
for f in p["files"]:
    n = f["name"]
    if not n.endswith(".zst"):
        print(n, sorted(f))
        continue
    base = n[:-4]
    assert f["size"] == os.path.getsize("packed/" + n) == src[n]["size"]
    assert f["xxh3_128"] == src[n]["xxh3_128"]
    assert f["uncompressed_size"] == plain[base]["size"] == os.path.getsize("plain/" + base)
    assert f["uncompressed_xxh3_128"] == plain[base]["xxh3_128"]
    print(n, f["compression"], f["size"], f["uncompressed_size"], "hashes agree")
tp = {t["name"]: (t["file"], t["xxh64"]) for t in p["tensors"]}
tq = {t["name"]: (t["file"] + ".zst", t["xxh64"]) for t in q["tensors"]}
assert tp == tq
print(len(tp), "tensors: same xxh64, files named .zst")
wp = json.load(open("packed/model.safetensors.zst.index.json"))["weight_map"]
wq = json.load(open("plain/model.safetensors.index.json"))["weight_map"]
assert wp == {k: v + ".zst" for k, v in wq.items()}
print("index: the plain index with .zst names")
PY
for f in plain/*.safetensors; do cmp "$f" "again/$(basename "$f")"; done
echo "split of the compressed split: byte-identical to the plain split"
$MODELPREP inspect packed | sed -n '1,2p;/^files:/,/^$/p;/^totals/p'
$MODELPREP inspect packed --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["compression"]); print(d["files"][1])'
$MODELPREP split tied packed1 --compress zstd --json | python3 -c 'import json, sys; d = json.load(sys.stdin)["compression"]; print(d["format"], d["level"], sorted(d))'
# convert reads a compressed split as its source, to the same output as from the plain split.
$MODELPREP convert plain conv-plain --to f16 --quiet
$MODELPREP convert packed conv-packed --to f16 --quiet
for f in conv-plain/*.safetensors; do cmp "$f" "conv-packed/$(basename "$f")"; done
echo "convert from the compressed split: $(ls conv-packed/*.safetensors | wc -l) files identical to convert from the plain split"
