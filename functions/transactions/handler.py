from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import transactions

handler = lambda_handler(build_app(transactions.make_router()))
