# The XPU path: a symmetric GPTQ checkpoint becomes cutlass-int4 (two's complement nibbles,
# [N, K/2] uint8, scales [N, G]), and converts back to GPTQ byte for byte.
$MKMODEL sym --layers 1 --sym >/dev/null
$MODELPREP convert sym xpu --to cutlass-int4 --int4 s4
$MODELPREP inspect xpu | sed -n '/^quantization:/p;/^quantized linears/,$p' | head -4
python3 -c 'import json; print(json.dumps(json.load(open("xpu/config.json"))["quantization_config"], sort_keys=True))'
$MODELPREP convert xpu back --to gptq --quiet
python3 $SRC/tests/ref/st_same_tensors.py sym back
