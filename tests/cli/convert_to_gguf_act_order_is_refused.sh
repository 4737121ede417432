# Act-order GPTQ has no exact ggml block type: refused before anything is written, naming the
# linear, the reason and the ways out.
$MKMODEL m --layers 1 --hidden 64 --intermediate 128 --vocab 320 --heads 4 --kv-heads 2 --desc-act --group-size 32 >/dev/null
python3 "$SRC/tests/gen/mktokenizer.py" m llama-bpe >/dev/null
$MODELPREP convert m m.gguf --to gguf
