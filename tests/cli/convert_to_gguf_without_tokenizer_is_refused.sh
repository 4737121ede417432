# A GGUF needs the tokenizer: without tokenizer.json or tokenizer.model the export is refused
# unless --no-tokenizer; a --to gguf:NAME it does not know is a usage error.
$MKMODEL m --layers 1 --hidden 64 --intermediate 128 --vocab 320 --heads 4 --kv-heads 2 --sym --group-size 32 >/dev/null
$MODELPREP convert m m.gguf --to gguf:q4_k || echo "exit $?"
$MODELPREP convert m m.gguf --to gguf
