# GGUF sources become dense checkpoints only.
status=0; $MODELPREP convert "$SRC/tests/golden/cases/gguf_alignment_64.gguf" out --to gptq || status=$?
echo "exit $status"
