from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import health

handler = lambda_handler(build_app(health.make_router()))
