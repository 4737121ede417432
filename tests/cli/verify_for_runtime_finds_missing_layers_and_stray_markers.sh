# verify --for airllm|rabbitllm (or the runtime modelprep.json names): every layer file the
# runtime streams is there with its .done marker, and no marker stands without its file; each
# failure is one line naming the file, exit 1.
$MKMODEL m --layers 2 --tied >/dev/null
$MODELPREP split m s --quiet
v() { $MODELPREP verify "$@" --device cpu --rows 4 | grep -E '^(runtime|PASS:|FAIL)' | sed 's/ ([0-9.]* s)$//'; }
v s
v s --for airllm
rm s/model.layers.1.safetensors.done
v s
touch s/model.layers.7.safetensors.done
v s --for airllm
rm s/lm_head.safetensors s/lm_head.safetensors.done
v s --for airllm
v s
$MODELPREP split m p --for plain --quiet
v p
v p --for rabbitllm
$MODELPREP verify m/model-00001-of-00001.safetensors --for airllm 2>&1 || echo "a file: exit $?"
$MODELPREP verify s --for tpu 2>&1 | head -1
