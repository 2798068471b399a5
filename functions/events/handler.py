from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import events

handler = lambda_handler(build_app(events.make_router()))
