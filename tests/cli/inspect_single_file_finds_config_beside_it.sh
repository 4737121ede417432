$MKMODEL one --layers 1 --bits 8 --group-size -1 --sym --tied >/dev/null
$MODELPREP inspect one/model.safetensors | head -6
