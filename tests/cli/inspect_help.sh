$MODELPREP inspect --help
