from loyalty.api.app import build_app, lambda_handler
from loyalty.api.routers import reports

handler = lambda_handler(build_app(reports.make_router()))
