$MODELPREP convert a b --to f16 --max-shard-size 5XB
