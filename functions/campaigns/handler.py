from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import campaigns

handler = lambda_handler(build_app(campaigns.make_router()))
