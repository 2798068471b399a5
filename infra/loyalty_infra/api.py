"""The REST API, generated from the route table (loyalty.api.routes.ROUTES).

Each route becomes a method with a Lambda proxy integration to the function the route names.
Every route that is not PUBLIC goes through the API-key REQUEST authorizer; which key kind may
call which route is then checked inside the functions from the same table. API Gateway's own
error answers are problem documents from loyalty.api.gateway_responses.

Throttling: the stage throttles every method (`*/*`), and the usage plan adds a throttle and a
daily quota per API key. The API's key source is AUTHORIZER: the authorizer names the caller's
usage-plan key (`usageIdentifierKey`, the key id). With `usagePlanKeys` on, every method that needs
a key also requires that usage-plan key, so the plan's limits apply per caller; a key id must then
be registered as an API key in the plan (docs/deploy.md) or its calls are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from loyalty.api.authorizer import AUTHORIZER_CACHE_SECONDS
from loyalty.api.gateway_responses import GATEWAY_RESPONSES
from loyalty.api.routes import ROUTES, Route
from loyalty.domain.access import Access
from loyalty_infra.config import DeploySettings
from loyalty_infra.waivers import (
    API_GATEWAY_LOGGING_ROLE,
    API_KEYS_NOT_COGNITO,
    PUBLIC_ROUTE,
    waive,
)

API_KEY_HEADER = "x-api-key"
_PATH_PARAM = re.compile(r"{([A-Za-z0-9_]+)}")

# One JSON line per request; the key id comes from the authorizer's context, never the key itself.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "keyId": "$context.authorizer.key_id",
    "keyKind": "$context.authorizer.kind",
    "storeId": "$context.authorizer.store_id",
    "authorizerError": "$context.authorizer.error",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
}


def path_parameters(path: str) -> list[str]:
    return _PATH_PARAM.findall(path)


def pascal(text: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", text) if part)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        name: str,
        functions: Mapping[str, lambda_.IFunction],
        authorizer_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=settings.log_retention)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            # Given, not derived from the enclosing stack: in a nested stack that name is generated,
            # and the API's CloudWatch metrics (alarms, dashboard) are keyed by this one.
            rest_api_name=name,
            description="Loyalty platform HTTP API v1 (see spec/api.md)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Usage-plan keys come from the authorizer's answer, never from a client header.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # Execution logging (ERROR level) needs API Gateway's account-level CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry personal data: never log them
                metrics_enabled=True,
                tracing_enabled=settings.tracing,
                throttling_rate_limit=settings.throttle_rate,
                throttling_burst_limit=settings.throttle_burst,
            ),
        )
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "KeyAuthorizer",
            handler=authorizer_function,
            identity_sources=[apigw.IdentitySource.header(API_KEY_HEADER)],
            results_cache_ttl=Duration.seconds(AUTHORIZER_CACHE_SECONDS),
        )
        self.validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        # One invoke permission per function for the whole API rather than one per method: 85
        # methods would add 85 resources and take the stack past CloudFormation's 500. Each
        # function still serves only its own routes (the route table's guard runs in it first).
        integrations = {
            name: apigw.LambdaIntegration(function, proxy=True, scope_permission_to_method=False)
            for name, function in functions.items()
        }
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        for route in ROUTES:
            if route.function not in integrations:
                raise ValueError(
                    f"{route.method} {route.path} names function {route.function!r}, which has none"
                )
            self.methods[(route.method, route.path)] = self._method(route, integrations[route.function])

        for response in GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                pascal(response.response_type),
                type=apigw.ResponseType.of(response.response_type),
                status_code=str(response.status),
                response_headers={name: f"'{value}'" for name, value in response.headers().items()},
                templates={"application/json": json.dumps(response.body())},
            )

        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            description="Throttle and daily quota per API key (the key id the authorizer names)",
            throttle=apigw.ThrottleSettings(
                rate_limit=settings.throttle_rate, burst_limit=settings.throttle_burst
            ),
            quota=apigw.QuotaSettings(limit=settings.quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )
        waive(self.rest_api.node.find_child("CloudWatchRole"), API_GATEWAY_LOGGING_ROLE)

    def _method(self, route: Route, integration: apigw.LambdaIntegration) -> apigw.Method:
        public = route.access is Access.PUBLIC
        params = {f"method.request.path.{name}": True for name in path_parameters(route.path)}
        method = self.rest_api.root.resource_for_path(route.path).add_method(
            route.method,
            integration,
            authorization_type=apigw.AuthorizationType.NONE if public else apigw.AuthorizationType.CUSTOM,
            authorizer=None if public else self.authorizer,
            request_validator=self.validator,
            request_parameters=params or None,
            api_key_required=self.settings.usage_plan_keys and not public,
        )
        waive(method, PUBLIC_ROUTE if public else API_KEYS_NOT_COGNITO)
        return method
