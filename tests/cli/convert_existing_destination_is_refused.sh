$MKMODEL sample --layers 1 >/dev/null
mkdir out
$MODELPREP convert sample out --to f32
