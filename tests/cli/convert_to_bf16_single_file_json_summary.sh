$MKMODEL sample --layers 1 --desc-act --format gptq_v2 >/dev/null
$MODELPREP convert sample/model.safetensors out --to bf16 --json | sed -e "s/\"seconds\": [0-9.]*/\"seconds\": S/" -e "s/\"gb_per_s\": [0-9.]*/\"gb_per_s\": R/"
ls out
