# An interrupted download: the last shard lost its tail.
$MKMODEL sample --max-shard-size 400000 >/dev/null
truncate -s -1000 sample/model-00004-of-00004.safetensors
$MODELPREP inspect sample
