$MKMODEL sample --layers 1 >/dev/null
$MODELPREP verify sample --rows 8 --full
