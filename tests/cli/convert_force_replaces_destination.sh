$MKMODEL sample --layers 1 >/dev/null
mkdir out
touch out/stale-file
$MODELPREP convert sample out --to f32 --force --quiet
ls out
