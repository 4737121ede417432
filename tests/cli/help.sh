$MODELPREP --help
