"""The local runtime: DynamoDB Local + moto's server + a gateway that calls the real handlers."""
