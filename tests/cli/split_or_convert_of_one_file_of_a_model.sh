# Issue 14: SRC given as a file. `split DIR/model.safetensors DST` carries config.json and the
# side files beside it as for a directory, so DST verifies; one shard of a sharded set (an index
# beside it lists others) is refused by split, convert, convert --to gguf, inspect and verify (as
# PATH or --against), saying to pass the directory.
$MKMODEL lone --layers 1 >/dev/null
$MODELPREP split lone/model.safetensors split1 >/dev/null
ls split1
$MODELPREP verify split1 --device cpu | tail -1 | sed 's/ (.*//'
$MKMODEL sharded --layers 2 --max-shard-size 200000 >/dev/null
for cmd in "split sharded/model-00002-of-00006.safetensors out" \
           "convert sharded/model-00002-of-00006.safetensors out --to f16" \
           "convert sharded/model-00002-of-00006.safetensors out --to gguf --no-tokenizer" \
           "inspect sharded/model-00002-of-00006.safetensors" \
           "verify sharded/model-00002-of-00006.safetensors --device cpu" \
           "verify split1 --device cpu --against sharded/model-00002-of-00006.safetensors"; do
    set +e; $MODELPREP $cmd >out.txt 2>err.txt; rc=$?; set -e
    echo "${cmd%% *}: exit $rc: $(cat err.txt)"
    [ ! -e out ] || echo "out was written"
done
# A file beside the index that the index does not list is still a model of its own.
cp lone/model.safetensors sharded/other.safetensors
$MODELPREP convert sharded/other.safetensors other-f16 --to f16 >/dev/null && echo "other: converted"
