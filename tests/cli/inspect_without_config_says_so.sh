$MKMODEL one --layers 1 >/dev/null
rm one/config.json
$MODELPREP inspect one | head -3
