# GPTQ v1 stores z - 1, so a zero point of 0 cannot be written: exit 4, nothing left behind.
$MKMODEL v2 --layers 1 --format gptq_v2 >/dev/null
status=0
$MODELPREP convert v2 v1 --to gptq || status=$?
ls
exit $status
