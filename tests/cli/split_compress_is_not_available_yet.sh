$MODELPREP split a b --compress zstd:3
