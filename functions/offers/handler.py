from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import offers

handler = lambda_handler(build_app(offers.make_router()))
