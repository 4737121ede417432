$MODELPREP --version
