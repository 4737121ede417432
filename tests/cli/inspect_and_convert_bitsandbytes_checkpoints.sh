# bitsandbytes checkpoints written byte by byte (tests/gen/bnbgen.py: NF4 with nested absmax, FP4,
# LLM.int8; a 48 x 40 linear whose 64-element blocks straddle rows): inspect lists each linear's
# element, flat block, scale and whether it is nested; convert --to bf16 keeps only the weights
# (the quant_state parts dropped, lm_head left dense and cast) and config.json without its
# quantization_config; a truncated quant_state blob is exit 4 naming file, tensor and rule.
for kind in "nf4 --nested" fp4 int8; do
    set -- $kind
    python3 "$SRC/tests/gen/bnbgen.py" "$1" $kind
    $MODELPREP inspect "$1" | sed -n '/^float-quantized linears/,$p'
    $MODELPREP convert "$1" "$1-bf16" --to bf16
    $MODELPREP inspect "$1-bf16" | sed -n '/^NAME/,/^$/p'
done
python3 -c 'import json; print(json.dumps(json.load(open("nf4-bf16/config.json")), sort_keys=True))'
python3 "$SRC/tests/gen/bnbgen.py" bad nf4 --corrupt-blob
$MODELPREP convert bad bad-bf16 --to bf16
