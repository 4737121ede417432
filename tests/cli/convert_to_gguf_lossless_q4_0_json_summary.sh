# A symmetric 4-bit GPTQ llama with a BPE tokenizer becomes a lossless Q4_0 GGUF file, with its
# manifest beside it; the q and k projections are permuted for llama.cpp's rope.
$MKMODEL m --layers 1 --hidden 64 --intermediate 128 --vocab 320 --heads 4 --kv-heads 2 --sym --group-size 32 >/dev/null
rm m/tokenizer_config.json
python3 "$SRC/tests/gen/mktokenizer.py" m llama-bpe >/dev/null
$MODELPREP convert m m.gguf --to gguf --json | sed -e "s/\"seconds\": [0-9.]*/\"seconds\": S/"
ls
