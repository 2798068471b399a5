from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import templates

handler = lambda_handler(build_app(templates.make_router()))
