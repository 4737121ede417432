# A Hugging Face cache snapshot (symlinks into ../../blobs) reads fine; a shard or a side file
# that is a symlink out of the checkpoint is refused, and nothing is written.
mkdir -p hub/models--o--n/snapshots/abc hub/models--o--n/blobs
$MKMODEL src --layers 1 >/dev/null
mv src/model.safetensors hub/models--o--n/blobs/0123
cp src/config.json hub/models--o--n/blobs/c1
ln -s ../../blobs/0123 hub/models--o--n/snapshots/abc/model.safetensors
ln -s ../../blobs/c1 hub/models--o--n/snapshots/abc/config.json
$MODELPREP convert hub/models--o--n/snapshots/abc out --to f16 --quiet && echo "cache snapshot: converted"
mkdir evil
ln -s "$PWD/hub/models--o--n/blobs/0123" evil/model.safetensors
status=0; $MODELPREP inspect evil > log 2>&1 || status=$?
echo "inspect evil: exit $status"; sed "s#$PWD/##" log
mkdir evil2
cp hub/models--o--n/blobs/0123 evil2/model.safetensors
cp src/config.json evil2/
ln -s /etc/hostname evil2/tokenizer.json
status=0; $MODELPREP convert evil2 out2 --to f16 > log 2>&1 || status=$?
echo "convert evil2: exit $status"; sed "s#$PWD/##" log
rm log
ls
