"""The stage's nested stacks: what moves out of the stage stack, and why.

CloudFormation takes at most 500 resources a stack. The REST API alone is about 190 of them (a
resource and a method per route, the authorizer, gateway responses, the usage plan), and it grows
with every route, so it lives in a nested stack of its own inside the stage stack: one deployment,
one set of outputs (the stage stack's), each template with room to grow.

What the API needs from the stage stack (the functions' ARNs) reaches it as parameters, which CDK
adds; what the stage stack needs from it (the URL, the usage plan id, the stage ARN for the web
ACL) comes back as the nested stack's outputs. References go one way each: the nested stack never
names anything that depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import NestedStack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from loyalty_infra.api import Api
from loyalty_infra.config import DeploySettings


class ApiStack(NestedStack):
    """The REST API of the stage, generated from the route table (see api.py)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        api_name: str,
        functions: Mapping[str, lambda_.IFunction],
        authorizer_function: lambda_.IFunction,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Loyalty platform ({settings.stage}): the REST API, from the route table",
        )
        self.api = Api(
            self,
            "Api",
            settings=settings,
            name=api_name,
            functions=functions,
            authorizer_function=authorizer_function,
        )
