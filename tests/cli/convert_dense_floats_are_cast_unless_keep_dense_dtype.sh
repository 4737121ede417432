# Dense float tensors take the target dtype (what a "f32" checkpoint should hold); the old
# copy-as-is behaviour is --keep-dense-dtype, and --cast-dense (the default now) still parses.
$MKMODEL sample --layers 1 >/dev/null
$MODELPREP convert sample out --to f32 --quiet --keep-dense-dtype
$MODELPREP inspect out | sed -n '/^totals/,$p'
$MODELPREP convert sample cast --to float32
$MODELPREP inspect cast | sed -n '/^totals/,$p'
$MODELPREP convert sample cast2 --to f32 --cast-dense --quiet && cmp cast/model.safetensors cast2/model.safetensors && echo "--cast-dense: the default"
$MODELPREP convert sample bad --to f32 --cast-dense --keep-dense-dtype
