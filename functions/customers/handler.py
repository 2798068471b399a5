from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import customers

handler = lambda_handler(build_app(customers.make_router()))
