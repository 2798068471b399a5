from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import cart

handler = lambda_handler(build_app(cart.make_router()))
