from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import accounts

handler = lambda_handler(build_app(accounts.make_router()))
