# -h and --help print the command's own help on stdout and exit 0, before any argument is checked.
for c in inspect convert split hash verify devices; do
    $MODELPREP $c -h | head -1
    $MODELPREP $c --help | tail -1
done
$MODELPREP convert a b -h | head -1
