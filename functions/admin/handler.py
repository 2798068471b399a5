from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import admin

handler = lambda_handler(build_app(admin.make_router()))
