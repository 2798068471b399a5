"""HTTP: the route table, request/response models, problem documents, routers."""
