$MODELPREP inspect a b
