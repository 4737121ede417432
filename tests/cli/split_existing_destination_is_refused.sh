$MKMODEL m --layers 1 >/dev/null
mkdir layers
$MODELPREP split m layers
