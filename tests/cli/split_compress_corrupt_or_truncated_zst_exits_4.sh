# Hostile .zst files: exit 4 with one line naming the file (and the tensor being read).
$MKMODEL m --layers 2 >/dev/null
$MODELPREP split m z --compress zstd --quiet
cp -r z trunc
truncate -s -100 trunc/model.layers.1.safetensors.zst
$MODELPREP inspect trunc || echo "truncated: exit $?"
cp -r z tail
printf 'junk' >> tail/model.norm.safetensors.zst
$MODELPREP inspect tail || echo "trailing bytes: exit $?"
cp -r z hdr
python3 -c 'p = "hdr/model.layers.0.safetensors.zst"; b = bytearray(open(p, "rb").read()); b[4] |= 8; open(p, "wb").write(b)'
$MODELPREP inspect hdr || echo "bad frame header: exit $?"
cp -r z data
python3 -c 'p = "data/model.layers.1.safetensors.zst"; b = bytearray(open(p, "rb").read()); b[-1] ^= 1; open(p, "wb").write(b)'
$MODELPREP inspect data >/dev/null && echo "inspect validates headers only: exit 0"
$MODELPREP split data out --quiet || echo "corrupt data read by split: exit $?"
# A frame asking for a 2 TiB window, and one that decompresses to more than its header covers.
printf '\x28\xb5\x2f\xfd\x00\xf8\x01\x00\x00' > window.safetensors.zst
$MODELPREP inspect window.safetensors.zst || echo "absurd window: exit $?"
cp m/model.safetensors long.safetensors
printf 'trailing' >> long.safetensors
zstd -q long.safetensors
$MODELPREP inspect long.safetensors.zst || echo "decompresses past the header: exit $?"
# A decompressed header that is not valid safetensors.
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}         ' | zstd -q -c > badheader.safetensors.zst
$MODELPREP inspect badheader.safetensors.zst || echo "invalid header inside: exit $?"
ls
