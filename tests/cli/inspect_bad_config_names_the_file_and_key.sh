$MKMODEL one --layers 1 >/dev/null
printf '{"num_hidden_layers": "two"}' > one/config.json.new
mv one/config.json.new one/config.json
$MODELPREP inspect one
