# --into-checkpoint writes the split as SRC/splitted_model, where AirLLM and RabbitLLM look for
# it, atomically; nothing else in SRC changes. It takes no DST, needs SRC to be a directory and
# a layout with markers; an existing split is refused unless --force.
$MKMODEL ck --layers 2 --max-shard-size 300000 >/dev/null
before=$(cd ck && find . -type f | sort | xargs sha256sum)
$MODELPREP split ck --into-checkpoint --for airllm | sed 's/ into [^:]*:/ into CK:/'
after=$(cd ck && find . -path ./splitted_model -prune -o -type f -print | sort | xargs sha256sum)
[ "$before" = "$after" ] && echo "the checkpoint's own files are unchanged"
ls ck
ls ck/splitted_model | grep -c '\.safetensors\.done$'
$MODELPREP verify ck/splitted_model --device cpu --rows 4 | grep -E '^(runtime|PASS:|FAIL)' | sed 's/ ([0-9.]* s)$//'
$MODELPREP split ck --into-checkpoint || echo "again: exit $?"
$MODELPREP split ck --into-checkpoint --force --quiet && echo "--force: replaced"
$MODELPREP split ck out --into-checkpoint || echo "with a DST: exit $?"
$MODELPREP split ck/config.json --into-checkpoint || echo "SRC a file: exit $?"
$MODELPREP split ck --into-checkpoint --for plain || echo "--for plain: exit $?"
$MODELPREP split ck || echo "no DST: exit $?"
ls ck | grep partial || echo "no partial directory left in SRC"
