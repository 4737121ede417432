# --part and --job-id: malformed values and options that cannot go with them are usage errors
# (exit 2), named before anything is read or written.
$MKMODEL src --layers 1 >/dev/null
for p in 4/4 -1/4 1/0 x/4 1/4097 '1/4 ' 1 /4 +1/4 1/+4; do
    $MODELPREP convert src out --to f16 --part "$p" || echo "exit $?"
done
$MODELPREP convert src out --to f16 --job-id abc || echo "exit $?"
$MODELPREP convert src out --to f16 --part 0/2 --job-id ../x || echo "exit $?"
$MODELPREP convert src out --to f16 --part 0/2 --job-id .hidden || echo "exit $?"
$MODELPREP convert src out --to f16 --part 0/2 --force || echo "exit $?"
$MODELPREP convert src out.gguf --to gguf --part 0/2 || echo "exit $?"
$MODELPREP split src sp --part 0/2 --resume || echo "exit $?"
$MODELPREP merge out --job-id 'a/b' || echo "exit $?"
ls
