# Class 6 of issue 14: a number taken from a tensor name (layer, GGUF blk.N) is a bounded decimal
# with no sign, no '+', no leading zero and no overflow, below the model's layer count; otherwise
# exit 4 naming the tensor, and nothing is written.
H="python3 $SRC/tests/gen/hostile.py"
try() { # label, then the command
    label=$1; shift
    set +e; "$@" >out.txt 2>err.txt; rc=$?; set -e
    echo "$label: exit $rc: $(cat err.txt)"
    [ ! -e dst ] || echo "$label: dst was written"
    rm -rf dst dst.partial-*
}
for bad in -1 +1 007 99999999999999999999999 18446744073709551616 4294967296 5; do
    rm -rf m && mkdir m
    $H config m num_hidden_layers=2
    $H st m/model.safetensors model.embed_tokens.weight model.layers.0.mlp.up_proj.weight "model.layers.$bad.mlp.up_proj.weight"
    try "split layers.$bad" $MODELPREP split m dst
    # every reader of a safetensors checkpoint checks the same names (formats/name_numbers.c)
    try "inspect layers.$bad" $MODELPREP inspect m
    try "convert layers.$bad" $MODELPREP convert m dst --to f16
    try "convert --to gguf layers.$bad" $MODELPREP convert m dst --to gguf --no-tokenizer
done
# a space, or a number that runs into letters, is no decimal either
for bad in ' 1' 1e0; do
    $H st m/model.safetensors model.embed_tokens.weight "model.layers.$bad.mlp.up_proj.weight"
    try "split layers.$bad" $MODELPREP split m dst
    try "convert layers.$bad" $MODELPREP convert m dst --to bf16
done
# expert numbers: bounded, and below config.json's expert count
rm -rf m && mkdir m
$H config m num_hidden_layers=1 num_experts=4
for bad in -1 +1 01 4294967296 4; do
    $H st m/model.safetensors model.embed_tokens.weight model.layers.0.mlp.experts.0.up_proj.weight \
        "model.layers.0.mlp.experts.$bad.up_proj.weight"
    try "inspect experts.$bad" $MODELPREP inspect m
    try "split experts.$bad" $MODELPREP split m dst
    try "convert experts.$bad" $MODELPREP convert m dst --to f16
done
# DeepSeek's MTP layer is numbered after num_hidden_layers: allowed, one past it is not.
rm -rf m && mkdir m
$H config m num_hidden_layers=2 num_nextn_predict_layers=1
$H st m/model.safetensors model.layers.0.x.weight model.layers.2.x.weight
try "split mtp layer 2" $MODELPREP split m dst2
ls dst2 | grep -c 'model.layers' ; rm -rf dst2
$H st m/model.safetensors model.layers.0.x.weight model.layers.3.x.weight
try "split layer 3 past mtp" $MODELPREP split m dst
for bad in -1 +2 01 99999999999999999999999 18446744073709551615 1; do
    $H gguf b.gguf 1 token_embd.weight blk.0.ffn_up.weight "blk.$bad.ffn_down.weight"
    try "convert blk.$bad" $MODELPREP convert b.gguf dst --to f16
    try "split blk.$bad" $MODELPREP split b.gguf dst
done
