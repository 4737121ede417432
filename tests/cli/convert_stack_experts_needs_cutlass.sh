$MODELPREP convert a b --to onednn-int4 --stack-experts
