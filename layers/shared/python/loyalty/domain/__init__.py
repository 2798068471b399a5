"""Pure rules: no boto3, no I/O."""
