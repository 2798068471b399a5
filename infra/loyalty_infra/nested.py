"""The stage's nested stacks: what moves out of the stage stack, and why.

CloudFormation takes at most 500 resources a stack. The REST API alone is about 190 of them (a
resource and a method per route, the authorizer, gateway responses, the usage plan), and it grows
with every route, so it lives in a nested stack of its own inside the stage stack: one deployment,
one set of outputs (the stage stack's), each template with room to grow. The optional web ACL goes
with it: its association names the API's stage, and cdk-nag (AwsSolutions-APIG3) recognises a
guarded stage only by an association in the stage's own template.

Monitoring (three alarms a function, one a dead-letter queue, the dashboard) grows with every
function and queue as well, so it has a nested stack of its own too; the stage stack then holds
what the platform is made of (data, functions, queues, schedules) and nothing that only watches it.

What a nested stack needs from the stage stack (the functions' ARNs and names, the queues' and the
table's names) reaches it as parameters, which CDK adds (CloudFormation allows 200 a template; the
monitoring stack takes one a function and one a dead-letter queue). What the stage stack needs back
comes as the nested stack's outputs: its own outputs (the API URL, the usage plan id, the alarm
topic, the dashboard) and the authorizer's invoke permission, which CDK keeps beside the function in
the stage stack and which names the API and its authorizer. The routes' permissions are in the API's
nested stack, one a function. References go one way each: a nested stack never waits for anything
that waits for it (tests/infra checks the graph).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aws_cdk import NestedStack, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from loyalty_infra.api import Api
from loyalty_infra.config import DeploySettings
from loyalty_infra.data import DataTable
from loyalty_infra.firewall import ApiFirewall
from loyalty_infra.monitoring import Monitoring


class ApiStack(NestedStack):
    """The REST API of the stage, generated from the route table (see api.py), and its web ACL when
    the `waf` setting is on (firewall.py). Both are named `api_name`, given by the stage stack."""

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
        self.firewall = (
            ApiFirewall(
                self,
                "Firewall",
                name=api_name,
                stage=self.api.rest_api.deployment_stage,
                rate_limit=settings.waf_rate_limit,
            )
            if settings.waf
            else None
        )


class MonitoringStack(NestedStack):
    """Alarms, their topic and the dashboard for everything in the stage stack (see monitoring.py).
    Build it last: it watches the functions and queues the stage stack holds when it is made."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        stage: Stack,
        rest_api: apigw.RestApi,
        data: DataTable,
        api_functions: Iterable[lambda_.IFunction],
        authorizer: lambda_.IFunction,
        firewall: ApiFirewall | None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Loyalty platform ({settings.stage}): alarms, their topic and the dashboard",
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            stage=stage,
            rest_api=rest_api,
            data=data,
            api_functions=api_functions,
            authorizer=authorizer,
            firewall=firewall,
        )
