# A mistyped command, option, format or choice gets the closest valid one (edit distance, or the
# start of a longer name); a word close to nothing gets no guess. Every one is a usage error.
$MODELPREP verfy x 2>&1 || echo "exit $?"
$MODELPREP convert a b --to f16 --forse 2>&1 || echo "exit $?"
$MODELPREP convert a b --to cutlass_int4 2>&1 || echo "exit $?"
$MODELPREP convert a b --to onednn 2>&1 || echo "exit $?"
$MODELPREP convert a b --to cutlass-int4 --int4 s8 2>&1 || echo "exit $?"
$MODELPREP convert a b --to gptq --scale-dtype fp16 2>&1 || echo "exit $?"
$MODELPREP convert a b --to int3 2>&1 || echo "exit $?"
$MKMODEL sample --layers 1 >/dev/null
$MODELPREP verify sample --device level_zero:1 2>&1 || echo "exit $?"
$MODELPREP inspect x --jsn 2>&1 || echo "exit $?"
$MODELPREP inspect x --frobnicate 2>&1 || echo "exit $?"
