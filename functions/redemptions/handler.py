from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import redemptions

handler = lambda_handler(build_app(redemptions.make_router()))
