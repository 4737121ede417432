$MKMODEL sample --layers 1 >/dev/null
$MODELPREP verify sample --device cuda:0
