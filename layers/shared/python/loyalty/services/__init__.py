"""Use cases. They get their adapters through constructors and never see an HTTP event."""
