# Class 4 of issue 14: an input that is not a regular file (a FIFO, a socket, a device, a
# directory) is refused without blocking, exit 4, naming the path and what it is. A FIFO that
# nobody writes would hang a blocking open() forever: each command runs under a timeout (124).
H="python3 $SRC/tests/gen/hostile.py"
try() {
    label=$1; shift
    set +e; timeout 20 "$@" >out.txt 2>err.txt; rc=$?; set -e
    echo "$label: exit $rc: $(cat err.txt)"
    rm -rf dst dst.partial-*
}
mkfifo w.safetensors w.gguf
try "inspect fifo .safetensors" $MODELPREP inspect w.safetensors
try "inspect fifo .gguf" $MODELPREP inspect w.gguf
try "hash fifo" $MODELPREP hash w.safetensors
try "verify fifo" $MODELPREP verify w.safetensors --device cpu
try "convert fifo" $MODELPREP convert w.gguf dst --to f16
try "split fifo" $MODELPREP split w.safetensors dst
try "inspect char device" $MODELPREP inspect /dev/null
python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind("sock.safetensors")'
try "inspect socket" $MODELPREP inspect sock.safetensors
# model.safetensors in a directory
mkdir lone && mkfifo lone/model.safetensors
try "inspect dir, model.safetensors a fifo" $MODELPREP inspect lone
try "split dir, model.safetensors a fifo" $MODELPREP split lone dst
# a shard named by the index
$MKMODEL sharded --layers 2 --max-shard-size 200000 >/dev/null
shard=$(ls sharded | grep -m1 '^model-0000')
mv sharded/$shard real-shard && mkfifo sharded/$shard
try "inspect, a shard a fifo" $MODELPREP inspect sharded
try "hash, a shard a fifo" $MODELPREP hash sharded
try "convert, a shard a fifo" $MODELPREP convert sharded dst --to f16
rm sharded/$shard && mkdir sharded/$shard
try "inspect, a shard a directory" $MODELPREP inspect sharded
rm -r sharded/$shard && mv real-shard sharded/$shard
# config.json
mv sharded/config.json config.real && mkfifo sharded/config.json
try "inspect, config.json a fifo" $MODELPREP inspect sharded
try "split, config.json a fifo" $MODELPREP split sharded dst
rm sharded/config.json && mkdir sharded/config.json
try "inspect, config.json a directory" $MODELPREP inspect sharded
rm -r sharded/config.json && mv config.real sharded/config.json
# side files that are copied (tokenizer, chat template): refused, never skipped or blocked on
mkfifo sharded/tokenizer.json
try "split, tokenizer.json a fifo" $MODELPREP split sharded dst
try "convert, tokenizer.json a fifo" $MODELPREP convert sharded dst --to f16
rm sharded/tokenizer.json && mv sharded/tokenizer_config.json tc && mkdir sharded/tokenizer_config.json
try "split, tokenizer_config.json a directory" $MODELPREP split sharded dst
rmdir sharded/tokenizer_config.json && mv tc sharded/tokenizer_config.json && mkfifo sharded/chat_template.jinja
try "convert, chat_template.jinja a fifo" $MODELPREP convert sharded dst --to f16
rm sharded/chat_template.jinja
# a file the manifest lists, and the manifest itself
$MODELPREP split sharded layers >/dev/null
mv layers/model.layers.1.safetensors layer1 && mkfifo layers/model.layers.1.safetensors
try "verify, a split file a fifo" $MODELPREP verify layers --device cpu
try "hash, a split file a fifo" $MODELPREP hash layers
rm layers/model.layers.1.safetensors && mv layer1 layers/model.layers.1.safetensors
mv layers/modelprep.json manifest && mkfifo layers/modelprep.json
try "verify, the manifest a fifo" $MODELPREP verify layers --device cpu
rm layers/modelprep.json && mv manifest layers/modelprep.json
try "verify, restored" $MODELPREP verify layers --device cpu
# the journal of a partial output
mkdir dst.partial-x && mkfifo dst.partial-x/.modelprep-journal
set +e; timeout 20 $MODELPREP split sharded dst --resume >out.txt 2>err.txt; rc=$?; set -e
echo "split --resume, the journal a fifo: exit $rc: $(cat err.txt)"
# the record of a part of a partitioned job
$MODELPREP split sharded pj --part 0/2 --job-id j >/dev/null
mkfifo pj.partial-j/.modelprep-part-1-of-2.json
try "merge, a part's record a fifo" $MODELPREP merge pj --job-id j
