# --compress takes zstd or zstd:LEVEL with LEVEL 1..19; anything else is exit 2 and one line.
for v in zstd:0 zstd:20 zstd:-3 zstd:3x zstd: gzip zstd:99999999999999999999; do
    $MODELPREP split a b --compress "$v" && echo "unexpected success" || echo "--compress $v: exit $?"
done
$MODELPREP split a b --compress zstd --threads 0 || echo "--threads 0: exit $?"
ls
