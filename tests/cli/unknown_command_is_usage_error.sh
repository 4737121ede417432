$MODELPREP frobnicate
