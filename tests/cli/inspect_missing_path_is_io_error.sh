$MODELPREP inspect no/such/model
