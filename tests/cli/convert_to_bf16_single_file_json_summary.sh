$MKMODEL sample --layers 1 --desc-act --format gptq_v2 >/dev/null
$MODELPREP convert sample/model.safetensors out --to bf16 --json | sed 's/"seconds": [0-9.]*/"seconds": S/'
ls out
