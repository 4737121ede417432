# --force replaces a DST that modelprep wrote (it holds modelprep.json), whatever is in it now.
$MKMODEL sample --layers 1 >/dev/null
$MODELPREP convert sample out --to f16 --quiet
touch out/stale-file
$MODELPREP convert sample out --to f32 --force --quiet
ls out
