mkdir empty
$MODELPREP inspect empty
