$MODELPREP devices | grep '^cuda'
$MODELPREP devices --json | grep -o '"name": "cuda", "usable": false, "status": "[^"]*", "devices": \[\]'
