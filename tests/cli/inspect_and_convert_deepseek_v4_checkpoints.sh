# DeepSeek-V4 FP4/FP8 hybrids written byte by byte (tests/gen/dsv4gen.py: FP8 linears with E8M0
# block scales on a ragged grid, I8 FP4 experts with E8M0 [N, K/32]; -Base with F32 scales and FP8
# experts, and a -Base config naming no expert_dtype (model_type deepseek_v4 alone); V4.1 with
# expert_dtype inside quantization_config): inspect lists each linear's layout,
# element, block and scale; convert --to bf16 keeps DeepSeek's names, drops every `.scale`, copies
# the BF16 and F32 tensors (router, indexer weights_proj, hc_*) as they are, and writes a config.json
# without quantization_config and expert_dtype; verify passes on the cpu backend, source and
# output, bit for bit.
for v in flash base base-implied v41; do
    python3 "$SRC/tests/gen/dsv4gen.py" $v --variant $v
done
$MODELPREP inspect flash | sed -n '/^quantization/p;/^float-quantized linears/,$p'
$MODELPREP inspect base | sed -n '/^float-quantized linears/,/^$/p'
for v in flash base v41; do
    $MODELPREP convert $v $v-bf16 --to bf16 --quiet
    python3 -c 'import json, sys; print(sys.argv[1], json.dumps(json.load(open(sys.argv[1] + "/config.json")), sort_keys=True))' $v-bf16
done
$MODELPREP inspect flash-bf16 | sed -n '/^NAME/,/^$/p'
cmp flash-bf16/model.safetensors v41-bf16/model.safetensors && echo "V4 and V4.1 convert to the same bytes"
$MODELPREP convert base-implied base-implied-bf16 --to bf16 --quiet
cmp base-bf16/model.safetensors base-implied-bf16/model.safetensors && echo "-Base with and without expert_dtype convert to the same bytes"
for d in flash base flash-bf16 base-bf16; do
    $MODELPREP verify $d --device cpu --full --quiet | tail -1 | sed 's/ ([0-9.]* s)$//'
done
