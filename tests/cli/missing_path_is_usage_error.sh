$MODELPREP inspect
