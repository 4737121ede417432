# One file per module, an index over them, the manifest; the tied head is an alias.
$MKMODEL tied --layers 2 --tied --max-shard-size 300000 >/dev/null
$MODELPREP split tied layers
ls layers
python3 -c 'import json; m = json.load(open("layers/modelprep.json")); print(m["layout"]); print(len(m["tensors"]), "tensors,", len(m["files"]), "files")'
$MODELPREP inspect layers | sed -n '1p;/^files:/,/^$/p'
