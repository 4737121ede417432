# One file per module, an index over them, the manifest; by default the layout is RabbitLLM's:
# a .done marker beside each file, and an lm_head.safetensors without tensors for the tied head.
$MKMODEL tied --layers 2 --tied --max-shard-size 300000 >/dev/null
$MODELPREP split tied layers
ls layers
python3 -c 'import json; m = json.load(open("layers/modelprep.json")); print(m["layout"]); print(len(m["tensors"]), "tensors,", len(m["files"]), "files")'
$MODELPREP inspect layers | sed -n '1p;/^files:/,/^$/p'
