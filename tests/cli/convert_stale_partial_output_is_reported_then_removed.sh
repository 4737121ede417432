# A run killed earlier left out.partial-XXXXXX; the next run says so, --force removes it.
$MKMODEL sample --layers 1 >/dev/null
mkdir out.partial-abc123
$MODELPREP convert sample out --to f16 --quiet
ls
$MODELPREP convert sample out --to f16 --quiet --force
ls
