# A split set whose second split is a symlink out of its directory is refused: the split names
# are generated from the first file's name, and each must resolve inside its directory.
mkdir model outside
cp "$SRC/tests/golden/cases/gguf_split_set/m-00001-of-00002.gguf" model/
cp "$SRC/tests/golden/cases/gguf_split_set/m-00002-of-00002.gguf" outside/
ln -s ../outside/m-00002-of-00002.gguf model/m-00002-of-00002.gguf
status=0; $MODELPREP inspect model > log 2>&1 || status=$?
echo "inspect: exit $status"; sed "s#$PWD/##" log
status=0; $MODELPREP convert model/m-00001-of-00002.gguf out --to f32 > log 2>&1 || status=$?
echo "convert: exit $status"; sed "s#$PWD/##" log
rm log
ls
