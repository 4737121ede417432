$MKMODEL sample --layers 1 >/dev/null
$MODELPREP convert sample out --to cutlass-int4
