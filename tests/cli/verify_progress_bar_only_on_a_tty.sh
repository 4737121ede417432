# verify draws convert's progress bar on stderr when it is a terminal (script(1) gives it one),
# up to its last step; --quiet, or a stderr that is not a terminal, gets none.
$MKMODEL sample --layers 1 --sym >/dev/null
$MODELPREP convert sample out --to onednn-int4 --quiet
script -qec "$MODELPREP verify out --device cpu --rows 4 >/dev/null" /dev/null | tr '\r' '\n' | grep -o 'verify \[#*\] [0-9]* / [0-9]* steps' | tail -1
script -qec "$MODELPREP verify out --device cpu --rows 4 --quiet >/dev/null" /dev/null | wc -c
$MODELPREP verify out --device cpu --rows 4 2>stderr.txt >/dev/null
wc -c <stderr.txt
