$MKMODEL asym --layers 1 --format gptq_v2 >/dev/null
$MODELPREP convert asym onednn --to onednn-int4 --scale-dtype f16
python3 -c 'import json; print(json.dumps(json.load(open("onednn/config.json"))["quantization_config"], sort_keys=True))'
$MODELPREP convert asym ct --to compressed-tensors --quiet
python3 -c 'import json; print(json.dumps(json.load(open("ct/config.json"))["quantization_config"], sort_keys=True))'
$MODELPREP inspect ct | sed -n '/^quantized linears/,+2p'
$MODELPREP convert asym a.f32 --to f32 --quiet
$MODELPREP convert onednn b.f32 --to f32 --quiet
$MODELPREP convert ct c.f32 --to f32 --quiet
cmp a.f32/model.safetensors b.f32/model.safetensors && cmp a.f32/model.safetensors c.f32/model.safetensors && echo "dequantized: identical"
