# The demo's sample: a Llama-like asymmetric GPTQ checkpoint in four shards.
$MKMODEL sample --max-shard-size 400000 >/dev/null
$MODELPREP inspect sample
