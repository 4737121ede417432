# A partitioned split's shared directory (DST.partial-<job id>, holding its parts' records and
# locks) is not taken by a whole run's --resume: refused (exit 4) naming it and saying what to
# run, nothing removed; running the missing part then completes the partitioned job.
$MKMODEL src --layers 2 >/dev/null
$MODELPREP split src sp --part 0/2 --job-id j --quiet
$MODELPREP split src sp --resume --quiet || echo "exit $?"
ls -A sp.partial-j | sed 's/model\.layers\.[0-9]*/model.layers.N/' | sort -u
$MODELPREP split src sp --part 1/2 --job-id j --quiet
ls
