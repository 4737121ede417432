# Dense tensors are copied as they are unless --cast-dense asks for the target dtype too.
$MKMODEL sample --layers 1 >/dev/null
$MODELPREP convert sample out --to f32 --quiet
$MODELPREP inspect out | sed -n '/^totals/,$p'
$MODELPREP convert sample cast --to f32 --cast-dense
$MODELPREP inspect cast | sed -n '/^totals/,$p'
