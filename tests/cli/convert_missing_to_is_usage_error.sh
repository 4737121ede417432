$MODELPREP convert a b
