# A DeepSeek-style FP8 checkpoint (128 x 128 blocks on a ragged grid: 576 = 4.5 blocks): inspect
# lists each linear's element type, block, grid and scale; convert --to bfloat16 writes bf16
# weights only, and config.json without its quantization_config.
$MKMODEL fp8 --fp8-block --layers 1 --hidden 576 --intermediate 1152 --vocab 300 >/dev/null
$MODELPREP inspect fp8 | sed -n '/^quantization:/p;/^float-quantized linears/,$p'
$MODELPREP convert fp8 out --to bfloat16
$MODELPREP inspect out | sed -n '/^totals/,$p'
python3 -c 'import json; print(json.dumps(json.load(open("out/config.json")), sort_keys=True))'
