$MODELPREP inspect --bogus x
