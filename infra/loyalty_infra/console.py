"""The marketers' console on AWS: its static files in a private S3 bucket, served by CloudFront.

CloudFront reads the bucket through origin access control (no public bucket, no website endpoint),
answers HTTPS only, and adds the security headers and content security policy of
loyalty.resources.CONSOLE to every answer (the local gateway sends the same). It also sends /v1/*
to the API stage, so the console calls its own origin: the policy's connect-src 'self' holds and
no CORS is needed. The files (`make console` builds them) are uploaded under console/ by
`make deploy-console` after `cdk deploy` (tools/deploy_console.py), which also invalidates the cache.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from loyalty.resources import CONSOLE
from loyalty_infra.waivers import (
    CONSOLE_BUCKET,
    CONSOLE_DEFAULT_CERTIFICATE,
    CONSOLE_EDGE_LOGS,
    CONSOLE_EDGE_WAF,
    CONSOLE_EVERYWHERE,
    waive,
)

# The S3 prefix the files live under: the same path the console has locally (/console/...).
CONSOLE_PREFIX = CONSOLE.path.strip("/")
STS_SECONDS = 63_072_000  # two years, as CONSOLE's Strict-Transport-Security says

# Viewer request: / and /console go to /console/, and a folder's address serves its index.html
# (CloudFront's default root object covers only the bare domain).
_ROUTING = f"""
function handler(event) {{
  var request = event.request;
  var uri = request.uri;
  if (uri === "/" || uri === "{CONSOLE.path}") {{
    return {{statusCode: 301, statusDescription: "Moved Permanently",
             headers: {{location: {{value: "{CONSOLE.path}/"}}}}}};
  }}
  if (uri.endsWith("/")) {{
    request.uri = uri + "{CONSOLE.index}";
  }}
  return request;
}}
"""


def _other_headers() -> list[cloudfront.ResponseCustomHeader]:
    # CloudFront's security-header block has no fields for these two; they go as custom headers.
    wanted = {"Cross-Origin-Opener-Policy", "Permissions-Policy"}
    return [
        cloudfront.ResponseCustomHeader(header=name, value=value, override=True)
        for name, value in CONSOLE.headers
        if name in wanted
    ]


class Console(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        waive(self.bucket, CONSOLE_BUCKET)
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="The console's security headers and content security policy (loyalty.resources)",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CONSOLE.content_security_policy, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.seconds(STS_SECONDS),
                    include_subdomains=True,
                    preload=True,
                    override=True,
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(custom_headers=_other_headers()),
        )
        routing = cloudfront.Function(
            self,
            "Routing",
            code=cloudfront.FunctionCode.from_inline(_ROUTING),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="/ and /console to /console/; a folder's address serves its index.html",
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Loyalty console (static files) and its API under /v1/*",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=routing, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ],
            ),
            additional_behaviors={
                # The API, uncached and with every header but Host (x-api-key, Idempotency-Key).
                "/v1/*": cloudfront.BehaviorOptions(
                    origin=origins.RestApiOrigin(rest_api),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=self.headers,
                ),
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        for waiver in (CONSOLE_EVERYWHERE, CONSOLE_EDGE_WAF, CONSOLE_EDGE_LOGS, CONSOLE_DEFAULT_CERTIFICATE):
            waive(self.distribution, waiver)


class ConsoleStack(Stack):
    """The console's hosting beside the platform's stack; it only reads the API's address."""

    def __init__(
        self, scope: Construct, construct_id: str, *, rest_api: apigw.RestApi, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "loyalty")
        self.console = Console(self, "Console", rest_api=rest_api)
        CfnOutput(
            self,
            "ConsoleUrl",
            value=f"https://{self.console.distribution.distribution_domain_name}{CONSOLE.path}/",
            description="The marketers' console (its files: make deploy-console)",
        )
        CfnOutput(
            self,
            "ConsoleBucketName",
            value=self.console.bucket.bucket_name,
            description="Where make deploy-console uploads the console's files",
        )
        CfnOutput(
            self,
            "ConsoleDistributionId",
            value=self.console.distribution.distribution_id,
            description="The console's CloudFront distribution, invalidated after each upload",
        )
