$MKMODEL one --layers 1 >/dev/null
$MODELPREP inspect one > /dev/full
