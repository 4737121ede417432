# "missing argument" says which one, by the name the usage line gives it.
$MODELPREP convert a --to f16 2>&1 || echo "exit $?"
$MODELPREP split 2>&1 || echo "exit $?"
