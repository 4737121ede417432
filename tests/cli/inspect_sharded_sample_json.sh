$MKMODEL sample --max-shard-size 400000 --layers 1 --desc-act --format gptq_v2 >/dev/null
$MODELPREP inspect sample --json
