# --part I/N: the parts, run in any order, write byte for byte what one process writes (convert,
# split with zstd, split for AirLLM with its .done markers), manifest included; the last part
# merges and leaves nothing beside DST.
$MKMODEL src --layers 4 --max-shard-size 400000 >/dev/null
mkdir one parts
(cd one && $MODELPREP convert ../src out --to f16 --max-shard-size 300KB --quiet)
(cd one && $MODELPREP split ../src sp --compress zstd:3 --quiet)
(cd one && $MODELPREP split ../src layers --for airllm --quiet)
cd parts
for i in 2 0 3 1; do $MODELPREP convert ../src out --to f16 --max-shard-size 300KB --quiet --part $i/4; done
for i in 1 0 2; do $MODELPREP split ../src sp --compress zstd:3 --quiet --part $i/3; done
$MODELPREP split ../src layers --for airllm --quiet --part 1/2
$MODELPREP split ../src layers --for airllm --quiet --part 0/2
cd ..
diff -r one/out parts/out && echo "convert: 4 parts identical to one process"
diff -r one/sp parts/sp && echo "split: 3 parts identical to one process"
diff -r one/layers parts/layers && echo "split --for airllm: 2 parts identical to one process, .done markers included"
ls parts/layers | grep -c '\.done$'
ls -A parts
