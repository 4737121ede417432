# The main path: an asymmetric GPTQ v1 checkpoint becomes a dense f16 checkpoint.
$MKMODEL sample --max-shard-size 400000 >/dev/null
$MODELPREP convert sample out --to f16 --max-shard-size 1MB
ls out
cat out/config.json
$MODELPREP inspect out | sed -n '1,6p;/^totals/,$p'
