"""The CDK app, synthesised once for the module with cdk-nag attached, checked as a template.

Given the app as `make synth` builds it (cdk.json's context, cdk-nag's AWS Solutions and Serverless
checks), when it is synthesised, then the template holds what the route table, the resource
definitions and the least-privilege rules say, cdk-nag has nothing unacknowledged, checkov fails
nothing (every skip a written waiver) and cfn-lint finds no errors, in every template the app
writes: the stage stack's and its nested stacks' (the API's, the monitoring's). Most tests read
the stage as one template (`Synth.resources`); API tests read the API's nested stack. A second
synth with every context switch on (about 9 s; only the tests that ask for `synth_all_on` pay for
it) shows what the switches add and that the rule packs stay clean with them.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk import cx_api
from aws_cdk.assertions import Match, Template
from boto3.dynamodb.types import TypeSerializer
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from loyalty.api.authorizer import AUTHORIZER_CACHE_SECONDS
from loyalty.api.gateway_responses import (
    CONTENT_TYPE,
    DEFAULT_4XX,
    DEFAULT_5XX,
    GATEWAY_RESPONSES,
    gateway_response,
)
from loyalty.api.problems import PROBLEM_BASE
from loyalty.api.routes import ROUTES
from loyalty.domain import events as domain_events
from loyalty.domain.access import Access
from loyalty.resources import (
    ACTIVITY_RULE,
    AUTHORIZER,
    CAMPAIGN_RUN,
    CAMPAIGN_SCHEDULES,
    CONSOLE,
    EVENT_BUS,
    FUNCTIONS,
    JOBS,
    SEGMENT_RULE,
    TABLE,
    JobDef,
)
from loyalty.services.mailer import message_id_of
from loyalty.services.publisher import events_of
from loyalty_infra import waivers
from loyalty_infra.config import CLI_CONTEXT_DEFAULTS, DEPS_LAYER_DIR, REPO_ROOT, DeploySettings
from loyalty_infra.functions import TABLE_READ_ACTIONS, TABLE_WRITE_ACTIONS, Definition
from loyalty_infra.outbox import MESSAGE_FILTER, OUTBOX_FILTER
from loyalty_infra.stack import LoyaltyStack, build
from loyalty_local.events import stream_record

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ALL_FUNCTIONS: tuple[Definition, ...] = (*FUNCTIONS, AUTHORIZER, *JOBS)
# As docs/events.md and the brief list them; the grant reads them from loyalty.domain.events.
DOMAIN_DETAIL_TYPES = {
    "TransactionRecorded",
    "PointsEarned",
    "TierChanged",
    "CustomerEnrolled",
    "PointsExpired",
    "PointsRedeemed",
    "PointsRedemptionReversed",
    "GiftCardSold",
    "StoredValueRedeemed",
    "CustomersMerged",
    "MergeUndone",
    "CustomerErased",
    "ChallengeCompleted",
    "BadgeEarned",
    "CustomerEventRecorded",
    "CustomerEventAttributed",
    # Segments (issue 17): profile changes, and memberships entered and left.
    "CustomerUpdated",
    "SegmentEntered",
    "SegmentExited",
    "ScoresUpdated",
    # Campaigns (issue 19): a customer actioned or held out.
    "CampaignActioned",
}
SCHEDULED = tuple(j for j in JOBS if j.schedule)
STREAM_CONSUMERS = tuple(j for j in JOBS if j.consumes_stream)
WRITE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:*",
}
TABLE_WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
STREAM_READ = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
# Actions that AWS authorises only on Resource "*" (no resource-level permissions), each allowed
# only where it is needed and acknowledged in cdk-nag: Lambda reading a DynamoDB stream.
RESOURCE_STAR_ONLY = {"dynamodb:ListStreams"}
# CDK's Function adds DependsOn on its role as well as the role's policy; the role one is
# redundant with the GetAtt. Every other cfn-lint warning fails the test.
CFN_LINT_ACCEPTED_WARNINGS = {"W3005"}


def _substitute(value: Any, parameters: dict[str, Any], outputs: dict[tuple[str, str], Any]) -> Any:
    """The value with every `{"Ref": parameter}` replaced by parameters[parameter] and every
    `{"Fn::GetAtt": [nested stack, "Outputs.name"]}` by outputs[(nested stack, name)]."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in parameters:
            return parameters[value["Ref"]]
        target = value.get("Fn::GetAtt") if set(value) == {"Fn::GetAtt"} else None
        if isinstance(target, list) and str(target[1]).startswith("Outputs."):
            key = (str(target[0]), str(target[1]).removeprefix("Outputs."))
            if key in outputs:
                return outputs[key]
        return {key: _substitute(child, parameters, outputs) for key, child in value.items()}
    if isinstance(value, list):
        return [_substitute(child, parameters, outputs) for child in value]
    return value


@dataclass
class Nested:
    """A nested stack of the stage stack: its template, and its resources as the stage stack wires
    them (every parameter replaced by what the stage stack passes, so a function is its GetAtt in
    the stage template, as if the resources were still there)."""

    stack: cdk.NestedStack
    logical_id: str  # of its AWS::CloudFormation::Stack in the stage template
    template: Template
    template_file: Path
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]  # output name -> value, in the nested template's own terms

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def only_id(self, resource_type: str) -> str:
        (logical_id,) = self.of_type(resource_type)
        return logical_id


@dataclass
class Synth:
    """The stage as synthesised. `resources` is the stage as one template: the stage stack's
    resources and every nested stack's, each reference across stacks (a parameter, an output)
    replaced by what it stands for; `template`, `api` and `monitoring` are the templates as written."""

    app: cdk.App
    stack: LoyaltyStack
    assembly: cx_api.CloudAssembly
    template: Template
    resources: dict[str, dict[str, Any]]
    api: Nested
    monitoring: Nested

    @property
    def nested(self) -> list[Nested]:
        return [self.api, self.monitoring]

    @property
    def templates(self) -> list[tuple[str, Path, dict[str, Any]]]:
        """Every template the app writes for the stage: (name, file, template)."""
        stage = self.assembly.get_stack_artifact(self.stack.artifact_id)
        return [
            (self.stack.stack_name, Path(stage.template_full_path), self.template.to_json()),
            *((n.stack.node.path, n.template_file, n.template.to_json()) for n in self.nested),
        ]

    def from_nested(self, value: Any) -> Any:
        """A stage-template value with every reference to an output of a nested stack replaced by
        that output's value (in the nested template's terms)."""
        outputs = {(n.logical_id, name): v for n in self.nested for name, v in n.outputs.items()}
        return _substitute(value, {}, outputs)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def function_id(self, definition: Definition) -> str:
        found = [
            logical_id
            for logical_id, fn in self.of_type("AWS::Lambda::Function").items()
            if fn["Properties"].get("Description") == definition.description
        ]
        assert len(found) == 1, f"expected one function for {definition.name}, found {found}"
        return found[0]

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement of every policy attached to the role (all Allow), Action as a list."""
        role = self.resources[role_id]["Properties"]
        assert not role.get("ManagedPolicyArns"), f"{role_id} uses managed policies"
        assert not role.get("Policies"), f"{role_id} has inline policies outside the DefaultPolicy"
        statements = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} not in policy["Properties"].get("Roles", []):
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                listed = statement["Action"]
                statements.append({**statement, "Action": [listed] if isinstance(listed, str) else listed})
        return statements

    def role_of(self, definition: Definition) -> str:
        role_id: str = self.resources[self.function_id(definition)]["Properties"]["Role"]["Fn::GetAtt"][0]
        return role_id

    def statements_of(self, definition: Definition) -> list[dict[str, Any]]:
        return self.role_statements(self.role_of(definition))

    def actions_of(self, definition: Definition) -> set[str]:
        """Every IAM action the function's role is allowed, from any policy attached to it."""
        return {action for statement in self.statements_of(definition) for action in statement["Action"]}

    def resources_for(self, definition: Definition, action: str) -> list[Any]:
        """Every resource the function's role may perform `action` on."""
        found: list[Any] = []
        for statement in self.statements_of(definition):
            if action in statement["Action"]:
                listed = statement["Resource"]
                found.extend(listed if isinstance(listed, list) else [listed])
        return found

    def secret_id(self, construct: str) -> str:
        """The logical id of the Secrets Manager secret made by `construct` (ApiKeyPepper, CursorKey)."""
        (logical_id,) = [i for i in self.of_type("AWS::SecretsManager::Secret") if i.startswith(construct)]
        return logical_id

    def only_id(self, resource_type: str) -> str:
        (logical_id,) = self.of_type(resource_type)
        return logical_id


# Every context switch on, for the second synth.
ALL_ON: dict[str, Any] = {
    "stage": "prod",
    "tracing": True,
    "tableCmk": True,
    "waf": True,
    "alarmEmail": "ops@example.com",
    "usagePlanKeys": True,
}
BOTH = pytest.mark.parametrize("which", ["synth", "synth_all_on"])


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synthesise(tmp_path_factory, {})


@pytest.fixture(scope="module")
def synth_all_on(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _synthesise(tmp_path_factory, ALL_ON)


def _synthesise(tmp_path_factory: pytest.TempPathFactory, overrides: dict[str, Any]) -> Synth:
    if not (DEPS_LAYER_DIR / "python").is_dir():
        pytest.fail(f"{DEPS_LAYER_DIR / 'python'} is missing: run `make deps-layer` first (`make test` does)")
    # As app.py (`make synth`) and the CDK CLI build it: the CLI's context defaults, then cdk.json's.
    context = {
        **CLI_CONTEXT_DEFAULTS,
        **json.loads((REPO_ROOT / "cdk.json").read_text())["context"],
        **overrides,
    }
    # Reference asset folders in place instead of copying the 70 MB dependency layer per run.
    context["aws:cdk:disable-asset-staging"] = True
    # `make synth` fails on any cdk-nag finding; here the report is kept so that one test names
    # the findings while the others still run.
    context["@aws-cdk/core:failSynthOnValidationErrors"] = False
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context)
    stack = build(app)
    assembly = app.synth()  # cdk-nag runs here and writes validation-report.json
    template = Template.from_stack(stack)  # reuses the assembly above: no second synth
    stage = template.to_json()["Resources"]
    api = _nested(assembly, stage, stack.api_stack)
    monitoring = _nested(assembly, stage, stack.monitoring_stack)
    outputs = {(n.logical_id, name): v for n in (api, monitoring) for name, v in n.outputs.items()}
    resources = _substitute(stage, {}, outputs)
    for nested in (api, monitoring):
        # Each template has its own CDK metadata resource; every other logical id is the stage's one.
        merged = {k: v for k, v in nested.resources.items() if v["Type"] != "AWS::CDK::Metadata"}
        assert not set(resources) & set(merged), "a logical id in two stacks"
        resources |= merged
    return Synth(app, stack, assembly, template, resources, api, monitoring)


def _nested(
    assembly: cx_api.CloudAssembly, stage: dict[str, dict[str, Any]], stack: cdk.NestedStack
) -> Nested:
    template = Template.from_stack(stack)
    body = template.to_json()
    (logical_id,) = [
        k
        for k, v in stage.items()
        if v["Type"] == "AWS::CloudFormation::Stack"
        and v["Metadata"]["aws:cdk:path"].startswith(f"{stack.node.path}.NestedStack/")
    ]
    passed = stage[logical_id]["Properties"].get("Parameters", {})
    assert set(passed) == set(body.get("Parameters", {})), "a nested stack parameter is not passed"
    return Nested(
        stack=stack,
        logical_id=logical_id,
        template=template,
        template_file=Path(assembly.directory) / stack.template_file,
        resources=_substitute(body["Resources"], passed, {}),
        outputs={name: output["Value"] for name, output in body.get("Outputs", {}).items()},
    )


# ---- data -----------------------------------------------------------------------------------


def test_table_is_on_demand_with_pitr_stream_ttl_and_gsi(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::DynamoDB::Table", 1)
    synth.template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [
                        {"AttributeName": TABLE.partition_key, "KeyType": "HASH"},
                        {"AttributeName": TABLE.sort_key, "KeyType": "RANGE"},
                    ],
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                    "TimeToLiveSpecification": {"AttributeName": TABLE.ttl_attribute, "Enabled": True},
                    "SSESpecification": {"SSEEnabled": True},
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": index.name,
                            "KeySchema": [
                                {"AttributeName": index.partition_key, "KeyType": "HASH"},
                                {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                            ],
                            "Projection": (
                                {"ProjectionType": "ALL"}
                                if index.projection is None
                                else {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(index.projection)}
                            ),
                        }
                        for index in TABLE.indexes
                    ],
                }
            ),
        },
    )


def test_no_hard_coded_physical_names(synth: Synth) -> None:
    named = {
        "AWS::DynamoDB::Table": "TableName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::Events::EventBus": "Name",
        "AWS::SecretsManager::Secret": "Name",
        "AWS::IAM::Role": "RoleName",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Scheduler::Schedule": "Name",
    }
    for resource_type, prop in named.items():
        for logical_id, resource in synth.of_type(resource_type).items():
            value = resource.get("Properties", {}).get(prop)
            # Absent, a token, or CDK's own unique name (path + hash, as EventBus needs one).
            hard_coded = isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9]+[0-9A-F]{8}", value)
            assert not hard_coded, f"{logical_id} hard-codes {prop}={value!r}"
            assert value not in {TABLE.local_name, EVENT_BUS.local_name}


def test_outputs_name_the_api_url_and_table(synth: Synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    assert {"ApiUrl", "TableName", "UsagePlanId"} <= set(outputs)
    assert outputs["TableName"]["Value"] == {"Ref": next(iter(synth.of_type("AWS::DynamoDB::Table")))}
    # Outputs of the stage stack, read from the API's nested stack.
    url = json.dumps(synth.from_nested(outputs["ApiUrl"]["Value"]))
    assert json.dumps({"Ref": synth.api.only_id("AWS::ApiGateway::RestApi")}) in url
    assert json.dumps({"Ref": synth.api.only_id("AWS::ApiGateway::Stage")}) in url
    plan = synth.from_nested(outputs["UsagePlanId"]["Value"])
    assert plan == {"Ref": synth.api.only_id("AWS::ApiGateway::UsagePlan")}


def test_event_bus_with_archive(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::Events::EventBus", 1)
    synth.template.resource_count_is("AWS::Events::Archive", 1)


# ---- functions ------------------------------------------------------------------------------


def test_one_function_per_function_def_and_job_def_plus_authorizer(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::Lambda::Function", len(ALL_FUNCTIONS))
    for definition in ALL_FUNCTIONS:
        props = synth.resources[synth.function_id(definition)]["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.13"
        assert props["Handler"] == "handler.handler"
        assert props["MemorySize"] == definition.memory_mb
        assert props["Timeout"] == definition.timeout_s
        assert len(props["Layers"]) == 2
        assert "TracingConfig" not in props, "X-Ray is off unless the `tracing` context says otherwise"
        assert "LogGroup" in props["LoggingConfig"]


def test_every_function_logs_to_a_group_with_retention(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")
    for definition in ALL_FUNCTIONS:
        group_id = synth.resources[synth.function_id(definition)]["Properties"]["LoggingConfig"]["LogGroup"][
            "Ref"
        ]
        assert groups[group_id]["Properties"]["RetentionInDays"] > 0


def test_environment_names_resources_and_holds_no_secret_value(synth: Synth) -> None:
    secret_id, cursor_key_id = synth.secret_id("ApiKeyPepper"), synth.secret_id("CursorKey")
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    (bus_id,) = synth.of_type("AWS::Events::EventBus")
    for definition in ALL_FUNCTIONS:
        env = synth.resources[synth.function_id(definition)]["Properties"]["Environment"]["Variables"]
        assert env["TABLE_NAME"] == {"Ref": table_id}
        assert env["EVENT_BUS_NAME"] == {"Ref": bus_id}
        # Ref on a secret is its ARN: the function fetches the value with its own grant.
        assert env["API_KEY_PEPPER_SECRET"] == {"Ref": secret_id}
        assert env["CURSOR_KEY_SECRET"] == {"Ref": cursor_key_id}
        assert env["POWERTOOLS_SERVICE_NAME"] == definition.name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Loyalty"
        assert env["TRACING_ENABLED"] == "false"
        rendered = json.dumps(env)
        assert "resolve:secretsmanager" not in rendered
        assert "SecretString" not in rendered


def test_health_touches_no_data(synth: Synth) -> None:
    actions = synth.actions_of(_function("health"))
    assert not {a for a in actions if a.startswith(("dynamodb:", "secretsmanager:", "kms:"))}, actions


def test_authorizer_reads_keys_but_writes_nothing(synth: Synth) -> None:
    actions = synth.actions_of(AUTHORIZER)
    assert "dynamodb:GetItem" in actions
    assert "secretsmanager:GetSecretValue" in actions
    assert not actions & WRITE_ACTIONS, actions & WRITE_ACTIONS


def test_customers_reads_and_writes_data_but_not_the_pepper(synth: Synth) -> None:
    actions = synth.actions_of(_function("customers"))
    assert {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= actions
    # It serves the timeline, a paged list: it reads the cursor key, and no other secret.
    assert "secretsmanager:PutSecretValue" not in actions
    secrets = synth.resources_for(_function("customers"), "secretsmanager:GetSecretValue")
    assert secrets == [{"Ref": synth.secret_id("CursorKey")}], secrets


def test_admin_reads_and_writes_data_and_reads_the_pepper(synth: Synth) -> None:
    actions = synth.actions_of(_function("admin"))
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "secretsmanager:GetSecretValue"} <= actions
    assert "secretsmanager:PutSecretValue" not in actions


# What a state machine's role needs to log to CloudWatch Logs (AWS authorises these on "*" only).
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def test_no_wildcard_actions_or_resources(synth: Synth) -> None:
    stream_roles = {synth.role_of(job) for job in STREAM_CONSUMERS}
    state_machine_roles = {
        sm["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        for sm in synth.of_type("AWS::StepFunctions::StateMachine").values()
    }
    for logical_id, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions = [listed] if isinstance(listed, str) else listed
            for action in actions:
                assert not action.endswith(":*"), f"{logical_id} allows {action}"
            if statement["Resource"] == "*" and set(actions) == {"sns:Publish"}:
                # An SMS (a publish to a phone number) names no resource: the mailer's alone.
                roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
                assert roles == {synth.role_of(_function("mailer"))}, (
                    f"{logical_id} publishes SMS for {roles}"
                )
            elif statement["Resource"] == "*" and set(actions) <= LOG_DELIVERY_ACTIONS:
                # Step Functions' vended log delivery names no resource: the workflows' roles alone.
                roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
                assert roles <= state_machine_roles, f"{logical_id} manages log deliveries for {roles}"
            elif statement["Resource"] == "*":
                # Only an action with no resource-level permissions, alone, for a stream consumer.
                assert set(actions) <= RESOURCE_STAR_ONLY, f"{logical_id} allows {actions} on *"
                roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
                assert roles <= stream_roles, f"{logical_id} allows {actions} on * to {roles}"


def test_transactions_reads_and_writes_data_but_not_the_pepper(synth: Synth) -> None:
    actions = synth.actions_of(_function("transactions"))
    assert {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"} <= actions
    # TransactWriteItems is authorised per item as Put / Update / ConditionCheck.
    assert TABLE_WRITE | {"dynamodb:ConditionCheckItem"} <= actions
    # It serves paged lists: it reads the cursor key, and no other secret.
    secrets = synth.resources_for(_function("transactions"), "secretsmanager:GetSecretValue")
    assert secrets == [{"Ref": synth.secret_id("CursorKey")}], secrets


# customers: the timeline; the mailer: unsubscribe links are signed with a key derived from the cursor key.
LIST_FUNCTIONS = {
    "transactions",
    "cart",
    "offers",
    "admin",
    "accounts",
    "messaging",
    "customers",
    "mailer",
    "campaigns",
}


def test_only_the_functions_serving_lists_read_the_cursor_key(synth: Synth) -> None:
    cursor_key = {"Ref": synth.secret_id("CursorKey")}
    for definition in ALL_FUNCTIONS:
        reads = cursor_key in synth.resources_for(definition, "secretsmanager:GetSecretValue")
        assert reads == (definition.name in LIST_FUNCTIONS), definition.name


def test_only_the_publisher_puts_events_and_only_on_the_bus(synth: Synth) -> None:
    bus = {"Fn::GetAtt": [synth.only_id("AWS::Events::EventBus"), "Arn"]}
    for definition in ALL_FUNCTIONS:
        publishes = getattr(definition, "publishes_events", False)
        if publishes:
            (statement,) = [
                st for st in synth.statements_of(definition) if "events:PutEvents" in st["Action"]
            ]
            assert statement["Action"] == ["events:PutEvents"]
            assert statement["Resource"] == bus
            # Only the platform's own Source and DetailTypes: no spoofing other producers on the bus.
            assert statement["Condition"] == {
                "StringEquals": {
                    "events:source": [domain_events.SOURCE],
                    "events:detail-type": sorted(DOMAIN_DETAIL_TYPES),
                }
            }
        else:
            assert not {a for a in synth.actions_of(definition) if a.startswith("events:")}, definition.name
    assert [j.name for j in JOBS if j.publishes_events] == ["publisher"]


def test_publisher_reads_the_stream_but_not_the_table(synth: Synth) -> None:
    publisher = _function("publisher")
    actions = synth.actions_of(publisher)
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    assert actions >= STREAM_READ
    for action in STREAM_READ:
        assert synth.resources_for(publisher, action) == [{"Fn::GetAtt": [table_id, "StreamArn"]}]
    assert not actions & WRITE_ACTIONS, actions & WRITE_ACTIONS
    assert not actions & {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}
    assert not {a for a in actions if a.startswith("secretsmanager:")}


def test_sweeper_reads_and_writes_data_with_gsi2_but_publishes_nothing(synth: Synth) -> None:
    sweeper = _function("sweeper")
    actions = synth.actions_of(sweeper)
    assert actions >= TABLE_WRITE
    assert "events:PutEvents" not in actions
    assert not {a for a in actions if a.startswith("secretsmanager:")}
    query_on = json.dumps(synth.resources_for(sweeper, "dynamodb:Query"))
    assert '"/index/gsi2"' in query_on, query_on


# ---- jobs: schedules and the outbox stream -------------------------------------------------


def test_every_scheduled_job_runs_on_a_scheduler_schedule_with_retries_and_a_dead_letter_queue(
    synth: Synth,
) -> None:
    schedules = synth.of_type("AWS::Scheduler::Schedule")
    assert len(schedules) == len(SCHEDULED)
    assert "rate(1 hour)" in {j.schedule for j in SCHEDULED if j.name == "sweeper"}
    by_target = {json.dumps(s["Properties"]["Target"]["Arn"]): s["Properties"] for s in schedules.values()}
    queues = synth.of_type("AWS::SQS::Queue")
    for job in SCHEDULED:
        function_id = synth.function_id(job)
        props = by_target[json.dumps({"Fn::GetAtt": [function_id, "Arn"]})]
        assert props["ScheduleExpression"] == job.schedule
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert props.get("State", "ENABLED") == "ENABLED"
        target = props["Target"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
        dead_letter = target["DeadLetterConfig"]["Arn"]
        assert dead_letter["Fn::GetAtt"][0] in queues
        # The schedule's role: assumed by Scheduler for this account, invokes this function only.
        role_id = target["RoleArn"]["Fn::GetAtt"][0]
        (trust,) = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
        assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
        granted = {
            (a, json.dumps(s["Resource"])) for s in synth.role_statements(role_id) for a in s["Action"]
        }
        assert granted == {
            ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": [function_id, "Arn"]})),
            ("sqs:SendMessage", json.dumps(dead_letter)),
        }
        # Scheduler invokes asynchronously: a run that fails in the function lands in the same queue.
        (invoke_config,) = [
            c["Properties"]
            for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
            if c["Properties"]["FunctionName"] == {"Ref": function_id}
        ]
        assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == dead_letter
        assert invoke_config["MaximumRetryAttempts"] <= 2


def test_campaign_schedules_live_in_their_group_and_only_the_campaigns_function_keeps_them(
    synth: Synth,
) -> None:
    (group_id,) = synth.of_type("AWS::Scheduler::ScheduleGroup")
    target_id = synth.function_id(_function(CAMPAIGN_SCHEDULES.target))
    # The scheduler role: assumed by Scheduler for this account and this group only; it invokes
    # campaign-schedule (unqualified) and sends to its dead-letter queue, nothing else.
    (role_id,) = [
        logical_id
        for logical_id, role in synth.of_type("AWS::IAM::Role").items()
        if "CampaignSchedules" in str(role.get("Metadata", {}).get("aws:cdk:path", ""))
    ]
    (trust,) = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [group_id, "Arn"]}
    granted = {a: json.dumps(s["Resource"]) for s in synth.role_statements(role_id) for a in s["Action"]}
    assert set(granted) == {"lambda:InvokeFunction", "sqs:SendMessage"}
    assert granted["lambda:InvokeFunction"] == json.dumps({"Fn::GetAtt": [target_id, "Arn"]})
    (invoke_config,) = [
        c["Properties"]
        for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": target_id}
    ]
    assert (
        json.dumps(invoke_config["DestinationConfig"]["OnFailure"]["Destination"])
        == granted["sqs:SendMessage"]
    )
    # The keepers: scheduler actions on the group's schedules only, and passing that role to Scheduler.
    keepers = set()
    for definition in ALL_FUNCTIONS:
        statements = synth.statements_of(definition)
        actions = {
            a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        if not any(a.startswith("scheduler:") for a in actions):
            assert "iam:PassRole" not in actions, definition.name
            continue
        keepers.add(definition.name)
        (keep,) = [s for s in statements if s.get("Sid") == "KeepCampaignSchedules"]
        assert sorted(keep["Action"]) == sorted(
            [
                "scheduler:CreateSchedule",
                "scheduler:UpdateSchedule",
                "scheduler:DeleteSchedule",
                "scheduler:GetSchedule",
            ]
        )
        assert {"Ref": group_id} in json.loads(json.dumps(keep["Resource"]))["Fn::Join"][1]
        (passes,) = [s for s in statements if s.get("Sid") == "PassSchedulerRole"]
        assert passes["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
        assert passes["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert keepers == {"campaigns"}


def _stream_mapping(synth: Synth, job: str) -> dict[str, Any]:
    """The event source mapping that feeds `job` from the table's stream (one per stream consumer)."""
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    stream = {"Fn::GetAtt": [table_id, "StreamArn"]}
    on_stream = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"].get("EventSourceArn") == stream
    ]
    assert len(on_stream) == len(STREAM_CONSUMERS)
    (props,) = [p for p in on_stream if p["FunctionName"] == {"Ref": synth.function_id(_function(job))}]
    return props


def test_publisher_is_fed_by_the_table_stream_in_order_with_partial_failures(synth: Synth) -> None:
    assert {j.name for j in STREAM_CONSUMERS} == {"publisher", "mailer", "lake"}
    props = _stream_mapping(synth, "publisher")
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["BatchSize"] == 100
    assert props["ParallelizationFactor"] == 1
    assert props["BisectBatchOnFunctionError"] is True
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 24 * 3600
    assert props.get("Enabled", True) is True
    on_failure = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert on_failure["Fn::GetAtt"][0] in synth.of_type("AWS::SQS::Queue")
    assert synth.resources_for(_function("publisher"), "sqs:SendMessage") == [on_failure]
    (only_filter,) = props["FilterCriteria"]["Filters"]
    assert json.loads(only_filter["Pattern"]) == OUTBOX_FILTER


def test_mailer_is_fed_new_messages_from_the_stream_and_retries_on_a_schedule(synth: Synth) -> None:
    mailer = _function("mailer")
    props = _stream_mapping(synth, "mailer")
    (only_filter,) = props["FilterCriteria"]["Filters"]
    assert json.loads(only_filter["Pattern"]) == MESSAGE_FILTER
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < props["MaximumRetryAttempts"] <= 10
    on_failure = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert on_failure["Fn::GetAtt"][0] in synth.of_type("AWS::SQS::Queue")
    # The schedule sends what is due again (failed attempts, lapsed claims).
    assert [j.schedule for j in SCHEDULED if j.name == "mailer"] == ["rate(5 minutes)"]
    # It reads and writes the table (claims, outcomes, the pending index on gsi2), reads no secret
    # but the cursor key (unsubscribe links are signed with a key derived from it) and the brand's
    # webhook secret (the api channel), puts no events.
    actions = synth.actions_of(mailer)
    assert actions >= TABLE_WRITE and "dynamodb:Query" in actions
    assert '"/index/gsi2"' in json.dumps(synth.resources_for(mailer, "dynamodb:Query"))
    assert not {a for a in actions if a.startswith("events:")}
    secrets = synth.resources_for(mailer, "secretsmanager:GetSecretValue")
    assert sorted(map(json.dumps, secrets)) == sorted(
        json.dumps({"Ref": synth.secret_id(name)}) for name in ("CursorKey", "WebhookSecret")
    ), secrets


def test_only_the_mailer_sends_email_and_only_from_the_configured_sender(synth: Synth) -> None:
    sender = synth.stack.settings.sender_email
    domain = sender.rsplit("@", 1)[1]
    for definition in ALL_FUNCTIONS:
        env = synth.resources[synth.function_id(definition)]["Properties"]["Environment"]["Variables"]
        ses_actions = {a for a in synth.actions_of(definition) if a.startswith("ses:")}
        if definition.name != "mailer":
            assert not ses_actions, definition.name
            assert "SENDER_EMAIL" not in env, definition.name
            continue
        assert env["SENDER_EMAIL"] == sender
        (statement,) = [st for st in synth.statements_of(definition) if "ses:SendEmail" in st["Action"]]
        assert statement["Action"] == ["ses:SendEmail"]
        resources = json.dumps(statement["Resource"])
        assert f":identity/{sender}" in resources and f":identity/{domain}" in resources
        # The identity and its domain, and the configuration set whose events report bounces.
        assert len(statement["Resource"]) == 3 and "*" not in resources
        assert ":configuration-set/" in resources
        assert env["SES_CONFIGURATION_SET"] == {"Ref": synth.only_id("AWS::SES::ConfigurationSet")}
        assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": sender}}


def _stream_record(
    event_name: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None
) -> dict[str, Any]:
    serializer = TypeSerializer()
    keys = new or old or {}
    pk, sk = str(keys.get("pk", "CUSTOMER#1")), str(keys.get("sk", "PROFILE"))
    change: dict[str, Any] = {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}
    if new is not None:
        change["NewImage"] = {k: serializer.serialize(v) for k, v in new.items()}
    if old is not None:
        change["OldImage"] = {k: serializer.serialize(v) for k, v in old.items()}
    return stream_record(event_name, change)


def _leaf_values(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[Any]]:
    """The record as EventBridge patterns see it: leaves by path, arrays crushed into their parent."""
    found: dict[tuple[str, ...], list[Any]] = {}
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            for key, child in item.items():
                for child_path, leaves in _leaf_values(child, (*path, key)).items():
                    found.setdefault(child_path, []).extend(leaves)
        elif not isinstance(item, list):
            found.setdefault(path, []).append(item)
    return found


def _pattern_matches(pattern: Any, record: dict[str, Any], path: tuple[str, ...] = ()) -> bool:
    """Enough of Lambda's (EventBridge's) filter semantics for this pattern: equality and `exists`,
    which holds only for leaves. It is a model to keep the pattern and the item shape together,
    not a substitute for AWS; the shape it assumes is the one the docs describe."""
    if isinstance(pattern, dict):
        return all(_pattern_matches(sub, record, (*path, key)) for key, sub in pattern.items())
    values = _leaf_values(record).get(path, [])
    for rule in pattern:
        if isinstance(rule, dict):
            ((operator, argument),) = rule.items()
            assert operator in {"exists", "prefix"}, f"the model knows no {operator!r}"
            if operator == "exists" and bool(values) == argument:
                return True
            if operator == "prefix" and any(str(v).startswith(argument) for v in values):
                return True
        elif rule in values:
            return True
    return False


def test_outbox_filter_passes_every_record_that_carries_events_and_drops_the_rest() -> None:
    enrolled = domain_events.DomainEvent(domain_events.CUSTOMER_ENROLLED, {"customer_id": "C1"})
    earned = domain_events.DomainEvent(domain_events.POINTS_EARNED, {"customer_id": "C1", "points": 10})
    with_events = {"pk": "CUSTOMER#1", "sk": "PROFILE", "outbox": domain_events.outbox([enrolled])}
    records = {
        "insert with an event": _stream_record("INSERT", with_events),
        "modify adding an event": _stream_record(
            "MODIFY", {**with_events, "outbox": domain_events.outbox([enrolled, earned])}, with_events
        ),
        "modify with a NULL outbox": _stream_record("MODIFY", {**with_events, "outbox": None}, with_events),
        "modify with an empty outbox": _stream_record("MODIFY", {**with_events, "outbox": []}),
        "insert without an outbox": _stream_record("INSERT", {"pk": "LEDGER#1", "sk": "1"}),
        "remove (TTL or delete)": _stream_record("REMOVE", None, with_events),
    }
    passed = {name for name, record in records.items() if _pattern_matches(OUTBOX_FILTER, record)}
    assert passed == {"insert with an event", "modify adding an event"}
    # Nothing the publisher would publish is filtered out.
    for name, record in records.items():
        assert name in passed or not events_of(record), name
    # The list-level `exists` (a tempting shortcut) never matches: list elements are not leaves.
    naive = {"dynamodb": {"NewImage": {"outbox": {"L": [{"exists": True}]}}}}
    assert not _pattern_matches(naive, records["insert with an event"])


def test_message_filter_passes_new_messages_only() -> None:
    message = {"pk": "MESSAGE#M1", "sk": "MESSAGE", "status": "queued", "body": "PIN 123456"}
    records = {
        "a new message": _stream_record("INSERT", message),
        "a claim or an outcome": _stream_record("MODIFY", {**message, "status": "sent"}, message),
        "a message expiring (TTL)": _stream_record("REMOVE", None, message),
        "a new profile": _stream_record("INSERT", {"pk": "CUST#1", "sk": "PROFILE"}),
        "a new hold": _stream_record("INSERT", {"pk": "HOLD#MESSAGE#1", "sk": "HOLD"}),
    }
    passed = {name for name, record in records.items() if _pattern_matches(MESSAGE_FILTER, record)}
    assert passed == {"a new message"}
    # The handler picks exactly the records the filter lets through (locally nothing filters).
    assert {name for name, record in records.items() if message_id_of(record)} == passed
    assert message_id_of(records["a new message"]) == "M1"


def test_every_queue_is_encrypted_and_refuses_requests_without_tls(synth: Synth) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    queue_consumers = [j for j in JOBS if j.consumes_queue is not None]
    # ... the dead-letter queue of the SES feedback topic's subscription and that of the campaign
    # schedules (made at run time, in their own group).
    assert len(queues) == len(SCHEDULED) + len(STREAM_CONSUMERS) + 2 * len(queue_consumers) + 2
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
        assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
        denies = [
            statement
            for policy in policies
            if {"Ref": logical_id} in policy["Properties"]["Queues"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Deny"
            and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies, f"{logical_id} accepts requests without TLS"


# ---- API ------------------------------------------------------------------------------------


def _method_paths(synth: Synth) -> dict[str, str]:
    """Logical id of every API Gateway method -> its full path, rebuilt from the resource tree."""
    resources = synth.api.of_type("AWS::ApiGateway::Resource")

    def path_of(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the root resource
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    return {
        logical_id: path_of(method["Properties"]["ResourceId"]) or "/"
        for logical_id, method in synth.api.of_type("AWS::ApiGateway::Method").items()
    }


def test_every_route_is_a_method_with_the_right_authorization(synth: Synth) -> None:
    (authorizer_id,) = synth.api.of_type("AWS::ApiGateway::Authorizer")
    (validator_id,) = synth.api.of_type("AWS::ApiGateway::RequestValidator")
    paths = _method_paths(synth)
    methods = synth.api.of_type("AWS::ApiGateway::Method")
    found = {}
    for logical_id, method in methods.items():
        props = method["Properties"]
        found[(props["HttpMethod"], paths[logical_id])] = props
    assert set(found) == {(r.method, r.path) for r in ROUTES}, "the API and the route table differ"

    for route in ROUTES:
        props = found[(route.method, route.path)]
        if route.access is Access.PUBLIC:
            assert props["AuthorizationType"] == "NONE"
            assert "AuthorizerId" not in props
        else:
            assert props["AuthorizationType"] == "CUSTOM"
            assert props["AuthorizerId"] == {"Ref": authorizer_id}
        assert props["RequestValidatorId"] == {"Ref": validator_id}
        assert props["Integration"]["Type"] == "AWS_PROXY"
        target = synth.function_id(_function(route.function))
        assert target in json.dumps(props["Integration"]["Uri"]), f"{route.method} {route.path} -> {target}"
        for name in (part[1:-1] for part in route.path.split("/") if part.startswith("{")):
            assert props["RequestParameters"][f"method.request.path.{name}"] is True


def test_authorizer_checks_the_key_header_with_the_shared_cache_ttl(synth: Synth) -> None:
    synth.api.template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.x-api-key",
            "AuthorizerResultTtlInSeconds": AUTHORIZER_CACHE_SECONDS,
        },
    )
    (authorizer,) = synth.api.of_type("AWS::ApiGateway::Authorizer").values()
    assert synth.function_id(AUTHORIZER) in json.dumps(authorizer["Properties"]["AuthorizerUri"])


def test_request_validation_checks_body_and_parameters(synth: Synth) -> None:
    synth.api.template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )


def test_stage_logs_throttles_and_traces_per_setting(synth: Synth) -> None:
    synth.api.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "dev",
            "TracingEnabled": False,
            "AccessLogSetting": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("requestId"),
            },
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "HttpMethod": "*",
                            "ResourcePath": "/*",
                            "LoggingLevel": "ERROR",
                            "DataTraceEnabled": False,
                            "ThrottlingRateLimit": Match.any_value(),
                            "ThrottlingBurstLimit": Match.any_value(),
                        }
                    )
                ]
            ),
        },
    )
    synth.api.template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "Throttle": {"RateLimit": Match.any_value(), "BurstLimit": Match.any_value()},
            "Quota": {"Limit": Match.any_value(), "Period": "DAY"},
            "ApiStages": Match.array_with([Match.object_like({"Stage": Match.any_value()})]),
        },
    )


def test_gateway_responses_are_problem_documents(synth: Synth) -> None:
    slugs = {r.slug for r in GATEWAY_RESPONSES}
    assert {"unauthenticated", "forbidden", "throttled", "bad-request", "internal-error"} <= slugs
    by_type = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.api.of_type("AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(by_type) == {r.response_type for r in GATEWAY_RESPONSES}
    for definition in GATEWAY_RESPONSES:
        props = by_type[definition.response_type]
        assert props["StatusCode"] == str(definition.status)
        assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == f"'{CONTENT_TYPE}'"
        body = json.loads(props["ResponseTemplates"]["application/json"])
        assert body == {
            "type": PROBLEM_BASE + definition.slug,
            "title": definition.title,
            "status": definition.status,
            "detail": definition.detail,
        }
    assert by_type["UNAUTHORIZED"]["StatusCode"] == "401"
    assert by_type["ACCESS_DENIED"]["StatusCode"] == "403"
    assert by_type["THROTTLED"]["StatusCode"] == "429"
    # Transient gateway failures tell the caller to retry, like the functions' own 503s.
    for transient in ("AUTHORIZER_FAILURE", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT"):
        assert by_type[transient]["StatusCode"] == "503"
        assert by_type[transient]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


def test_unlisted_gateway_response_types_fall_back_by_status_class() -> None:
    assert gateway_response("UNAUTHORIZED").status == 401
    assert gateway_response("API_CONFIGURATION_ERROR") is DEFAULT_5XX
    assert gateway_response("BAD_REQUEST_BODY") is DEFAULT_4XX


def test_context_switches_tracing_and_the_table_key() -> None:
    app = cdk.App(context={"stage": "prod", "tracing": "true", "tableCmk": True})
    assert DeploySettings.from_context(app.node) == DeploySettings(stage="prod", tracing=True, table_cmk=True)
    assert DeploySettings.from_context(cdk.App().node) == DeploySettings()
    with pytest.raises(ValueError, match="stage"):
        DeploySettings(stage="Prod EU")
    sender = cdk.App(context={"senderEmail": "gifts@brand.example"})
    assert DeploySettings.from_context(sender.node).sender_email == "gifts@brand.example"
    with pytest.raises(ValueError, match="senderEmail"):
        DeploySettings(sender_email="not an address")


# ---- hardening: encryption, throttling, WAF, tracing ----------------------------------------

# Where a resource names the queue that takes what it could not deliver or process.
DEAD_LETTER_KEYS = {"RedrivePolicy", "DeadLetterConfig", "OnFailure"}


def _dead_letter_queue_ids(synth: Synth) -> set[str]:
    """Queues some resource names as its dead-letter target, read from the template alone."""
    found: set[str] = set()

    def walk(value: Any, under: bool) -> None:
        if isinstance(value, dict):
            target = value.get("Fn::GetAtt")
            if under and isinstance(target, list) and target[1] == "Arn":
                found.add(target[0])
            for key, child in value.items():
                walk(child, under or key in DEAD_LETTER_KEYS)
        elif isinstance(value, list):
            for child in value:
                walk(child, under)

    for resource in synth.resources.values():
        walk(resource.get("Properties", {}), False)
    return found & set(synth.of_type("AWS::SQS::Queue"))


@BOTH
def test_table_keeps_pitr_and_is_encrypted_with_the_key_the_setting_picks(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    if not synth.stack.settings.table_cmk:
        assert props["SSESpecification"] == {"SSEEnabled": True}  # the AWS-managed key
        assert not synth.of_type("AWS::KMS::Key").keys() - _alarm_topic_keys(synth)
        return
    key_ref = props["SSESpecification"]["KMSMasterKeyId"]
    assert props["SSESpecification"]["SSEEnabled"] is True and props["SSESpecification"]["SSEType"] == "KMS"
    key = synth.resources[key_ref["Fn::GetAtt"][0]]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


@BOTH
def test_every_queue_is_encrypted_tls_only_and_has_a_dead_letter_queue_or_is_one(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    dead_letter_queues = _dead_letter_queue_ids(synth)
    assert dead_letter_queues
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    for logical_id, queue in synth.of_type("AWS::SQS::Queue").items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
        assert logical_id in dead_letter_queues or "RedrivePolicy" in props, f"{logical_id}: no DLQ"
        if logical_id in dead_letter_queues:
            assert props["MessageRetentionPeriod"] == 14 * 24 * 3600, logical_id
        tls_only = [
            statement
            for policy in policies
            if {"Ref": logical_id} in policy["Properties"]["Queues"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Deny"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and statement["Principal"] == {"AWS": "*"}
            and statement["Action"] == "sqs:*"
        ]
        assert tls_only, f"{logical_id} accepts requests without TLS"


@BOTH
def test_usage_plan_and_stage_throttle_and_keys_come_from_the_authorizer(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    settings = synth.stack.settings
    (api,) = synth.api.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    (plan,) = synth.api.of_type("AWS::ApiGateway::UsagePlan").values()
    assert plan["Properties"]["Throttle"] == {
        "RateLimit": settings.throttle_rate,
        "BurstLimit": settings.throttle_burst,
    }
    assert plan["Properties"]["Quota"] == {"Limit": settings.quota_per_day, "Period": "DAY"}
    (stage_id,) = synth.api.of_type("AWS::ApiGateway::Stage")
    assert plan["Properties"]["ApiStages"][0]["Stage"] == {"Ref": stage_id}
    (every_method,) = [
        m for m in synth.api.resources[stage_id]["Properties"]["MethodSettings"] if m["ResourcePath"] == "/*"
    ]
    assert every_method["ThrottlingRateLimit"] == settings.throttle_rate
    assert every_method["ThrottlingBurstLimit"] == settings.throttle_burst
    for method in synth.api.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        keyed = props["AuthorizationType"] == "CUSTOM"
        assert props.get("ApiKeyRequired", False) is (keyed and settings.usage_plan_keys)


def test_access_log_is_a_json_line_per_request_with_the_key_id_never_the_key(synth: Synth) -> None:
    (stage,) = synth.api.of_type("AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    group_id = setting["DestinationArn"]["Fn::GetAtt"][0]
    assert synth.api.resources[group_id]["Properties"]["RetentionInDays"] > 0
    fields = json.loads(setting["Format"])
    assert {"requestId", "status", "responseLatency", "keyId", "ip", "resourcePath"} <= set(fields)
    assert fields["keyId"] == "$context.authorizer.key_id"
    assert "apiKey" not in setting["Format"]  # $context.identity.apiKey would log the usage key
    assert stage["Properties"]["MethodSettings"][0]["DataTraceEnabled"] is False


@BOTH
def test_no_environment_holds_a_secret_value(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    secrets = set(synth.of_type("AWS::SecretsManager::Secret"))
    plain = {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "TRACING_ENABLED",
        "SENDER_EMAIL",
        "PUBLIC_BASE_URL",  # where unsubscribe links point
    }
    plain |= {"REPORT_ENGINE", "LAKE_DATABASE"}  # the reports' engine and the Glue database's name
    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        for name, value in function["Properties"]["Environment"]["Variables"].items():
            if re.search(r"SECRET|PASSWORD|TOKEN|PEPPER|CREDENTIAL|PRIVATE", name):
                # Only ever the ARN (Ref) of a Secrets Manager secret, read at run time.
                assert isinstance(value, dict) and value.get("Ref") in secrets, f"{logical_id} {name}"
            elif isinstance(value, str):
                assert name in plain, f"{logical_id}: {name}={value!r} is a literal; add it here if harmless"
            rendered = json.dumps(value)
            assert "resolve:secretsmanager" not in rendered and "SecretString" not in rendered


@BOTH
def test_waf_is_off_by_default_and_guards_the_stage_when_on(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    # In the API's nested stack, beside the stage it guards (cdk-nag's APIG3 looks for it there).
    acls = synth.api.of_type("AWS::WAFv2::WebACL")
    associations = synth.api.of_type("AWS::WAFv2::WebACLAssociation")
    if not synth.stack.settings.waf:
        assert not acls and not associations
        return
    ((acl_id, acl),) = acls.items()
    (association,) = associations.values()
    (stage_id,) = synth.api.of_type("AWS::ApiGateway::Stage")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    # The stage's ARN refers to the stage, so the association waits for it.
    arn = json.dumps(association["Properties"]["ResourceArn"])
    assert json.dumps({"Ref": synth.api.only_id("AWS::ApiGateway::RestApi")}) in arn
    assert json.dumps({"Ref": stage_id}) in arn
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    # Named by the stage stack (the nested stack's own name is generated): the dashboard charts it by name.
    assert props["Name"] == f"{synth.stack.stack_name}-api"
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"]).replace("\\", "")
    assert f'"WebACL","{props["Name"]}"' in body
    rules = {rule["Name"]: rule for rule in props["Rules"]}
    rate = rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]
    assert rate == {
        "Limit": synth.stack.settings.waf_rate_limit,
        "AggregateKeyType": "IP",
        "EvaluationWindowSec": 300,
    }
    assert rules["RateLimitPerIp"]["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    groups = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]: rule["Statement"]["ManagedRuleGroupStatement"]
        for rule in props["Rules"]
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert set(groups) == {
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    }
    # Our bodies go up to 64 KB; the common rule set's 8 KB body rule only counts.
    assert groups["AWSManagedRulesCommonRuleSet"]["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}
    ]
    assert all(rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] for rule in props["Rules"])


def test_tracing_setting_turns_on_xray_for_every_function_and_the_stage(synth_all_on: Synth) -> None:
    for logical_id, function in synth_all_on.of_type("AWS::Lambda::Function").items():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, logical_id
    (stage,) = synth_all_on.api.of_type("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["TracingEnabled"] is True


def test_context_reads_every_hardening_switch() -> None:
    settings = DeploySettings.from_context(cdk.App(context={**ALL_ON, "wafRateLimit": "2000"}).node)
    assert (settings.waf, settings.usage_plan_keys, settings.alarm_email) == (True, True, "ops@example.com")
    assert settings.waf_rate_limit == 2000
    defaults = DeploySettings.from_context(cdk.App(context={"alarmEmail": ""}).node)
    assert (defaults.waf, defaults.usage_plan_keys, defaults.alarm_email) == (False, False, None)
    with pytest.raises(ValueError, match="alarmEmail"):
        DeploySettings(alarm_email="ops at example")
    with pytest.raises(ValueError, match="wafRateLimit"):
        DeploySettings(waf_rate_limit=5)


# ---- monitoring ----------------------------------------------------------------------------


def _alarm_topic_keys(synth: Synth) -> set[str]:
    return {
        topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
        for topic in synth.of_type("AWS::SNS::Topic").values()
    }


def _alarms_on(synth: Synth, namespace: str, metric: str, dimension: Any) -> list[dict[str, Any]]:
    """Alarms on one metric, each as {Namespace, MetricName, Dimensions, Stat, Threshold}, whether
    CloudFormation got the metric flat or as a single MetricStat (CDK's form for labelled metrics)."""
    found = []
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if "Metrics" in props:
            stats = [q for q in props["Metrics"] if "MetricStat" in q]
            if len(stats) != 1 or len(props["Metrics"]) != 1:
                continue
            flat = {**stats[0]["MetricStat"]["Metric"], "Stat": stats[0]["MetricStat"]["Stat"]}
        else:
            flat = {
                "Namespace": props.get("Namespace"),
                "MetricName": props.get("MetricName"),
                "Dimensions": props.get("Dimensions", []),
                "Stat": props.get("ExtendedStatistic", props.get("Statistic")),
            }
        if (
            flat["Namespace"] == namespace
            and flat["MetricName"] == metric
            and dimension in [d["Value"] for d in flat["Dimensions"]]
        ):
            found.append({**flat, "Threshold": props["Threshold"]})
    return found


@BOTH
def test_every_alarm_notifies_the_encrypted_tls_only_topic(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    # The alarm topic (the SES feedback topic is the other one).
    ((topic_id, topic),) = [(i, t) for i, t in synth.of_type("AWS::SNS::Topic").items() if "AlarmTopic" in i]
    key = synth.resources[topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert {"Service": "cloudwatch.amazonaws.com"} in [
        s["Principal"] for s in key["Properties"]["KeyPolicy"]["Statement"]
    ]
    (policy,) = [
        p
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    (publish,) = [s for s in statements if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", logical_id
        assert alarm["Properties"]["AlarmDescription"], logical_id
    subscriptions = {
        i: s
        for i, s in synth.of_type("AWS::SNS::Subscription").items()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    }
    email = synth.stack.settings.alarm_email
    if email is None:
        assert not subscriptions
        return
    (subscription,) = subscriptions.values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == email
    dead_letters = subscription["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert dead_letters in _dead_letter_queue_ids(synth)


@BOTH
def test_alarms_watch_the_api_every_function_the_table_every_dead_letter_queue_and_merges(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    api_name = synth.api.only_id("AWS::ApiGateway::RestApi")
    api_dimension = synth.api.resources[api_name]["Properties"]["Name"]
    # Named by the stage stack: the metrics' dimension is a literal, whatever the nested stack is called.
    assert api_dimension == f"{synth.stack.stack_name}-api"
    (five_xx,) = _alarms_on(synth, "AWS/ApiGateway", "5XXError", api_dimension)
    assert five_xx["Stat"] == "Average" and 0 < five_xx["Threshold"] <= 0.05
    (latency,) = _alarms_on(synth, "AWS/ApiGateway", "Latency", api_dimension)
    assert latency["Stat"] == "p99"

    functions = synth.of_type("AWS::Lambda::Function")
    assert len(functions) == len(ALL_FUNCTIONS)
    for function_id, function in functions.items():
        by_metric = {
            metric: _alarms_on(synth, "AWS/Lambda", metric, {"Ref": function_id})
            for metric in ("Errors", "Throttles", "Duration")
        }
        assert all(len(found) == 1 for found in by_metric.values()), (function_id, by_metric)
        (duration,) = by_metric["Duration"]
        assert duration["Stat"] == "p99"
        assert duration["Threshold"] <= function["Properties"]["Timeout"] * 1000 * 0.8

    for queue_id in _dead_letter_queue_ids(synth):
        (depth,) = _alarms_on(
            synth, "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [queue_id, "QueueName"]}
        )
        assert depth["Stat"] == "Maximum" and depth["Threshold"] == 1, queue_id

    math_alarms = [
        a["Properties"]["Metrics"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if "Metrics" in a["Properties"]
    ]

    def metric_key(name: str, dimensions: list[dict[str, Any]]) -> tuple[str, frozenset[tuple[str, str]]]:
        return name, frozenset((d["Name"], json.dumps(d["Value"])) for d in dimensions)

    throttle_metrics = [
        {
            metric_key(q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Metric"]["Dimensions"])
            for q in queries
            if "MetricStat" in q
        }
        for queries in math_alarms
    ]
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    table_dimension = {"Name": "TableName", "Value": {"Ref": table_id}}
    expected = {
        metric_key(f"{kind}ThrottleEvents", [table_dimension, *extra])
        for kind in ("Read", "Write")
        for extra in [[], *([{"Name": "GlobalSecondaryIndexName", "Value": i.name}] for i in TABLE.indexes)]
    }
    # The table and every index, reads and writes, in one alarm.
    assert expected in throttle_metrics
    # Failed merges by metric name whatever the dimensions (powertools adds `service`).
    expressions = [q.get("Expression", "") for queries in math_alarms for q in queries]
    assert "SELECT SUM(MergesFailed) FROM Loyalty" in expressions


def test_dashboard_charts_every_function_and_dead_letter_queue(synth: Synth) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == synth.stack.stack_name
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for function_id in synth.of_type("AWS::Lambda::Function"):
        assert json.dumps({"Ref": function_id}) in body, function_id
    for queue_id in _dead_letter_queue_ids(synth):
        assert json.dumps({"Fn::GetAtt": [queue_id, "QueueName"]}) in body, queue_id
    assert "alarm" in body and "SUM(MergesFailed)" in body
    outputs = synth.template.to_json()["Outputs"]
    assert {"AlarmTopicArn", "DashboardName"} <= set(outputs)


# ---- cdk-nag, checkov and cfn-lint ----------------------------------------------------------

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


@BOTH
def test_cdk_nag_has_no_unacknowledged_findings(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(which)
    # cdk-nag 3 is a policy-validation plugin: its findings, errors and warnings alike, go to the
    # validation report in the assembly, not to annotations. Both packs report there.
    report = json.loads((Path(synth.assembly.directory) / "validation-report.json").read_text())
    violations = [
        (v.get("ruleName"), [c.get("constructPath") for c in v.get("violatingConstructs", [])])
        for plugin in report.get("pluginReports", [])
        for v in plugin.get("violations", [])
    ]
    assert violations == [], violations
    # The same packs run directly over the tree give a readable list if the report format moves.
    for pack in (AwsSolutionsChecks(), ServerlessChecks()):
        direct = pack.validate_scope(synth.app)
        assert direct.success, [(v.rule_name, v.severity) for v in direct.violations]
        assert list(direct.violations) == []


def test_no_errors_or_warnings_annotated_on_the_stack(synth: Synth) -> None:
    # What assertions.Annotations.from_stack reads, taken from the one synth (from_stack re-synths).
    messages = synth.assembly.get_stack_artifact(synth.stack.artifact_id).messages
    flagged = [
        (m.level.value, m.id, str(m.entry.data)) for m in messages if m.level.value in {"error", "warning"}
    ]
    assert not [f for f in flagged if "AwsSolutions-" in f[2] or "Serverless-" in f[2]], flagged
    assert flagged == [], flagged


@BOTH
def test_every_acknowledgement_is_a_written_waiver_on_a_narrow_scope(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    by_reason = {waiver.reason: waiver for waiver in waivers.ALL}
    acknowledged = []
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            assert not isinstance(construct, cdk.Stack | cdk.App), f"acknowledged at {construct.node.path}"
            for rule_id, reason in dict(entry.data).items():
                acknowledged.append(rule_id)
                # Reasons are written once, in loyalty_infra/waivers.py: acknowledge through waive().
                waiver = by_reason.get(str(reason))
                assert waiver is not None, f"{rule_id} at {construct.node.path}: reason not in waivers.py"
                # CDK records each acknowledgement for the plugin report and, prefixed, for annotations.
                rule = rule_id.removeprefix("Annotation::")
                assert rule in waiver.rules, f"{rule_id} at {construct.node.path}: not the waiver's rule"
    assert acknowledged, "no acknowledgements found: has the metadata key changed?"
    for waiver in waivers.ALL:
        assert len(waiver.reason) >= 80 and waiver.rules, waiver


def _checkov(template: Path) -> dict[str, Any]:
    if not CHECKOV.is_file():
        pytest.fail(f"{CHECKOV} is missing: run `make checkov` first (`make test` does)")
    # --skip-download: offline, and every check of the installed version runs.
    completed = subprocess.run(
        [str(CHECKOV), "-f", str(template), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = json.loads(completed.stdout)
    (report,) = output if isinstance(output, list) else [output]
    assert report["check_type"] == "cloudformation"
    return dict(report)


@BOTH
def test_checkov_fails_nothing_and_every_skip_is_a_written_waiver(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    by_reason = {waiver.reason: waiver for waiver in waivers.ALL}
    # Every template the app writes: the stage stack's and each nested stack's.
    for name, template_file, template in synth.templates:
        report = _checkov(template_file)
        summary = report["summary"]
        assert summary["parsing_errors"] == 0, name
        assert summary["resource_count"] == len(template["Resources"]), name
        assert summary["passed"] > 0, name
        failed = [(c["check_id"], c["check_name"], c["resource"]) for c in report["results"]["failed_checks"]]
        assert failed == [], name
        for check in report["results"]["skipped_checks"]:
            waiver = by_reason.get(check["check_result"].get("suppress_comment", ""))
            assert waiver is not None and check["check_id"] in waiver.rules, (
                name,
                check["check_id"],
                check["resource"],
            )


@BOTH
def test_cfn_lint_finds_no_errors(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from cfnlint.api import ManualArgs, lint_file

    synth: Synth = request.getfixturevalue(which)
    problems = []
    # Every template the app writes (E3004 in the stage template: no circular dependency through a
    # nested stack's parameters and outputs).
    for n, (name, _, template) in enumerate(synth.templates):
        template_file = tmp_path / f"template-{n}.json"
        template_file.write_text(json.dumps(template, indent=1))
        matches = lint_file(template_file, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
        problems += [
            f"{name}: {m.rule.id} line {m.linenumber}: {m.message}"
            for m in matches
            if m.rule.id.startswith("E")
            or (m.rule.id.startswith("W") and m.rule.id not in CFN_LINT_ACCEPTED_WARNINGS)
        ]
    assert problems == []


def _function(name: str) -> Definition:
    return next(f for f in ALL_FUNCTIONS if f.name == name)


def test_merges_run_from_a_fifo_queue_with_a_dead_letter_queue(synth: Synth) -> None:
    queues = {k: q for k, q in synth.of_type("AWS::SQS::Queue").items() if q["Properties"].get("FifoQueue")}
    assert len(queues) == 2  # the merge queue and its dead-letter queue
    main = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(main) == 1
    assert main[0]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    assert main[0]["Properties"]["VisibilityTimeout"] == 360
    (mapping,) = [
        m
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if "StartingPosition" not in m["Properties"]
        and m["Properties"]["FunctionName"] == {"Ref": synth.function_id(_function("merger"))}
    ]
    assert mapping["Properties"]["BatchSize"] == 10
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_activity_worker_is_fed_by_a_bus_rule_through_a_standard_queue(synth: Synth) -> None:
    activity = _function("activity")
    (mapping,) = [
        m
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synth.function_id(activity)}
    ]
    assert mapping["Properties"]["BatchSize"] == 10
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    queue = synth.of_type("AWS::SQS::Queue")[queue_id]["Properties"]
    assert "FifoQueue" not in queue  # order does not matter: every effect is keyed and conditional
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    dead_letters_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]

    (rule_id, rule) = next(
        (k, r)
        for k, r in synth.of_type("AWS::Events::Rule").items()
        if "EventPattern" in r["Properties"]
        and r["Properties"]["EventPattern"].get("detail-type") == list(ACTIVITY_RULE.detail_types)
    )
    props = rule["Properties"]
    assert props["EventPattern"]["source"] == [domain_events.SOURCE]
    assert "EventBusName" in props
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [dead_letters_id, "Arn"]}
    # Least privilege: only this rule may send to the queue (and to its dead-letter queue).
    allows = [
        statement
        for policy in synth.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
    ]
    assert allows and all(a["Principal"] == {"Service": "events.amazonaws.com"} for a in allows)
    assert all(
        a["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]} for a in allows
    )
    # It reads and writes the table, and publishes nothing itself (its events leave by the outbox).
    assert synth.actions_of(activity) >= TABLE_WRITE
    assert not {a for a in synth.actions_of(activity) if a.startswith("events:")}


def test_the_segments_worker_is_fed_by_a_bus_rule_through_a_standard_queue_and_sweeps_every_minute(
    synth: Synth,
) -> None:
    segments = _function("segments")
    (mapping,) = [
        m
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": synth.function_id(segments)}
    ]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    queue = synth.of_type("AWS::SQS::Queue")[queue_id]["Properties"]
    assert "FifoQueue" not in queue  # an evaluation reads the customer as they are: order does not matter
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    rule = next(
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
        and r["Properties"]["EventPattern"].get("detail-type") == list(SEGMENT_RULE.detail_types)
    )
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    # Every change the contract lists reaches it: sales and returns, events, profile and consent
    # changes, tier and points, merges and their undo, erasure, scores.
    assert {
        "TransactionRecorded",
        "CustomerEventRecorded",
        "CustomerEventAttributed",
        "CustomerEnrolled",
        "CustomerUpdated",
        "TierChanged",
        "PointsRedeemed",
        "CustomersMerged",
        "MergeUndone",
        "CustomerErased",
        "ScoresUpdated",
    } <= set(rule["EventPattern"]["detail-type"])
    # The clock: a schedule every minute (time-driven changes within 60 seconds).
    (schedule,) = [
        s["Properties"]
        for s in synth.of_type("AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [synth.function_id(segments), "Arn"]}
    ]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    # It reads and writes the table and publishes nothing itself (SegmentEntered leaves by the outbox).
    assert synth.actions_of(segments) >= TABLE_WRITE
    assert not {a for a in synth.actions_of(segments) if a.startswith("events:")}
    # Its send rights: the schedule's failure queue (as every scheduled job's) and its own queue, on
    # which its sweep fans due customers out and a segment's background pass queues its next page
    # (services/segment_passes.py); the offers function, which saves segments, queues a pass's
    # first page there too.
    assert {"Fn::GetAtt": [queue_id, "Arn"]} in synth.resources_for(segments, "sqs:SendMessage")
    assert {"Fn::GetAtt": [queue_id, "Arn"]} in synth.resources_for(_function("offers"), "sqs:SendMessage")
    environment = synth.resources[synth.function_id(segments)]["Properties"]["Environment"]["Variables"]
    assert environment["SEGMENT_QUEUE_URL"] == {"Ref": queue_id}


# ---- the data lake (issue 16) ---------------------------------------------------------------------
def test_the_lake_writer_is_fed_every_business_record_from_the_stream_and_may_only_put_objects(
    synth: Synth,
) -> None:
    from loyalty_infra.outbox import LAKE_FILTER

    props = _stream_mapping(synth, "lake")
    (only_filter,) = props["FilterCriteria"]["Filters"]
    assert json.loads(only_filter["Pattern"]) == LAKE_FILTER
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    lake = _function("lake")
    actions = synth.actions_of(lake)
    assert "s3:PutObject" in actions
    assert not {a for a in actions if a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")}
    assert not {a for a in actions if a.startswith(("s3:Get", "s3:Delete", "secretsmanager:", "athena:"))}
    environment = synth.resources[synth.function_id(lake)]["Properties"]["Environment"]["Variables"]
    assert "LAKE_BUCKET" in environment


def test_the_lake_filter_passes_business_records_of_every_kind_and_drops_the_rest() -> None:
    from loyalty_infra.outbox import LAKE_FILTER

    def passes(pk: str) -> bool:
        prefixes = [p["prefix"] for p in LAKE_FILTER["dynamodb"]["Keys"]["pk"]["S"]]
        return any(pk.startswith(p) for p in prefixes)

    for pk in ("CUST#1", "TXN#ams-01#T1", "REDEMPTION#r", "ACCOUNT#a", "EVENT#s#e", "COUPON#C", "MESSAGE#m",
               "CAMPACT#spring#c1"):  # fmt: skip
        assert passes(pk), pk
    for pk in ("KEYHASH#x", "KEY#k", "LINK#email#x", "IDEM#k", "REQUEST#r", "MERGE#m", "DUE#1"):
        assert not passes(pk), pk


def test_the_buckets_are_private_encrypted_tls_only_with_lifecycle(synth: Synth) -> None:
    buckets = synth.of_type("AWS::S3::Bucket")
    # the lake, its query results, their access logs; the print files; the campaign runs' files
    assert len(buckets) == 5
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        assert props["LifecycleConfiguration"]["Rules"], logical_id
        assert "BucketName" not in props, logical_id
    policies = synth.of_type("AWS::S3::BucketPolicy")
    tls_only = [
        p
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(tls_only) == 5


def test_glue_tables_project_their_dt_partitions_and_match_the_writer(synth: Synth) -> None:
    from loyalty.services.lake import CHANGE_COLUMNS, GLUE_TYPES, KINDS

    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]
        for t in synth.of_type("AWS::Glue::Table").values()
    }
    from loyalty.services.report_sql import REPORTED_KINDS

    # The change tables, and the compacted snapshots the reports read (the test below).
    assert set(tables) == {k.name for k in KINDS} | {f"{k}_snapshot" for k in REPORTED_KINDS}
    for kind in KINDS:
        table = tables[kind.name]["TableInput"]
        assert table["Parameters"]["projection.enabled"] == "true"
        assert table["Parameters"]["projection.dt.type"] == "date"
        assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        assert columns == [(c.name, GLUE_TYPES[c.type]) for c in (*CHANGE_COLUMNS, *kind.columns)]


def test_snapshot_tables_read_one_generation_each_with_the_writers_columns(synth: Synth) -> None:
    from loyalty.services.lake import CHANGE_COLUMNS, GLUE_TYPES, KINDS

    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in synth.of_type("AWS::Glue::Table").values()
    }
    for kind in KINDS:
        table = tables.get(f"{kind.name}_snapshot")
        if table is None:
            continue
        assert table["Parameters"]["projection.generation.type"] == "injected"
        assert table["PartitionKeys"] == [{"Name": "generation", "Type": "string"}]
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        expected = [(c.name, GLUE_TYPES[c.type]) for c in (*CHANGE_COLUMNS, *kind.columns)]
        assert columns == [*expected, ("dt", "string")]


def test_the_compactor_runs_hourly_takes_erasures_from_the_bus_and_rewrites_only_the_lake(
    synth: Synth,
) -> None:
    compactor = _function("compactor")
    props = synth.resources[synth.function_id(compactor)]["Properties"]
    assert props["EphemeralStorage"] == {"Size": 10240} and props["Timeout"] == 900
    actions = synth.actions_of(compactor)
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= actions
    assert not {a for a in actions if a.startswith(("dynamodb:", "athena:", "glue:", "secretsmanager:"))}
    assert not {a for a in actions if a.startswith("events:")}
    # Earlier versions may be deleted of the personal kinds' objects only (erasure), nothing else.
    (purge,) = [
        s
        for p in synth.of_type("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "PurgeErasedVersions"
    ]
    rendered = json.dumps(purge["Resource"])
    assert all(f"/{k}/*" in rendered for k in ("customers", "events")) and "transactions" not in rendered
    schedules = synth.of_type("AWS::Scheduler::Schedule").values()
    assert any(
        s["Properties"]["ScheduleExpression"] == "rate(1 hour)"
        and "Compactor" in json.dumps(s["Properties"]["Target"]["Arn"])
        for s in schedules
    )
    rules = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == ["CustomerErased"]
    ]
    assert len(rules) == 1 and "LakeErasures" in json.dumps(rules[0]["Targets"])
    mappings = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if "LakeErasures" in json.dumps(m["Properties"]["EventSourceArn"])
    ]
    assert len(mappings) == 1 and mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_workgroup_encrypts_results_enforces_its_settings_and_cuts_off_big_scans(synth: Synth) -> None:
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert 0 < config["BytesScannedCutoffPerQuery"] <= 10 * 1024**3
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"


def test_the_reports_function_queries_through_its_workgroup_and_only_reads_the_table(synth: Synth) -> None:
    """Segment previews (issue 17) evaluate with the programme's tiers and default time zone: the
    reports function reads the table (the programme), and writes nothing."""
    reports = _function("reports")
    actions = synth.actions_of(reports)
    assert {"athena:StartQueryExecution", "athena:GetQueryResults", "glue:GetTable"} <= actions
    assert {a for a in actions if a.startswith("dynamodb:")} <= set(TABLE_READ_ACTIONS)
    assert not {a for a in actions if a.startswith(("secretsmanager:", "events:", "sqs:"))}
    assert not {a for a in actions if a.startswith("s3:Delete")}
    environment = synth.resources[synth.function_id(reports)]["Properties"]["Environment"]["Variables"]
    assert environment["REPORT_ENGINE"] == "athena" and "ATHENA_WORKGROUP" in environment


def test_the_scores_job_runs_daily_from_the_lake_and_only_updates_profiles(synth: Synth) -> None:
    """Issue 17: RFM scores are recomputed at least daily from the lake (Athena) and written with
    conditional UpdateItems; publishing goes through the outbox, so no bus access."""
    scores = _function("scores")
    assert isinstance(scores, JobDef) and scores.schedule == "rate(1 day)"
    actions = synth.actions_of(scores)
    assert {"athena:StartQueryExecution", "athena:GetQueryResults", "glue:GetTable"} <= actions
    assert "dynamodb:UpdateItem" in actions
    assert {a for a in actions if a.startswith("dynamodb:")} <= {*TABLE_READ_ACTIONS, *TABLE_WRITE_ACTIONS}
    assert not {
        a for a in actions if a.startswith(("secretsmanager:", "events:", "sqs:Receive", "s3:Delete"))
    }
    environment = synth.resources[synth.function_id(scores)]["Properties"]["Environment"]["Variables"]
    assert environment["REPORT_ENGINE"] == "athena" and "ATHENA_WORKGROUP" in environment


def test_api_gateway_invokes_each_function_by_one_permission(synth: Synth) -> None:
    # Wherever CDK puts them: the routes' in the API's nested stack, the authorizer's in the stage stack.
    api_permissions = [
        resource["Properties"]
        for resource in synth.resources.values()
        if resource["Type"] == "AWS::Lambda::Permission"
        and resource["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    functions_behind_routes = {route.function for route in ROUTES} | {"authorizer"}
    invoked = [json.dumps(p["FunctionName"]) for p in api_permissions]
    assert len(invoked) == len(set(invoked)) == len(functions_behind_routes), invoked
    for definition in (AUTHORIZER, *(_function(name) for name in {route.function for route in ROUTES})):
        function = json.dumps({"Fn::GetAtt": [synth.function_id(definition), "Arn"]})
        assert function in invoked, definition.name
    rest_api = json.dumps({"Ref": synth.api.only_id("AWS::ApiGateway::RestApi")})
    for permission in api_permissions:
        # Only this API may invoke, from any of its methods (one permission a function, not one a route).
        assert rest_api in json.dumps(permission["SourceArn"]), permission


# CloudFormation takes at most 500 resources a stack. Each stack of the stage (the stage stack and
# every nested one) stays at 400 or below: a quarter of the room kept for what is on its way (the
# campaigns alone add a state machine, its task functions, their alarms and a bucket) so that a
# new feature never has to start by moving resources between stacks.
MAX_RESOURCES_PER_STACK = 400


@BOTH
def test_every_stack_of_the_stage_keeps_room_under_cloudformations_500_resources(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(which)
    counts = {name: len(template["Resources"]) for name, _, template in synth.templates}
    assert len(counts) == 1 + len(synth.nested), counts
    assert all(count <= MAX_RESOURCES_PER_STACK for count in counts.values()), counts


def test_the_api_and_monitoring_live_in_nested_stacks_that_wait_for_nothing_waiting_for_them(
    synth: Synth,
) -> None:
    stage = synth.template.to_json()["Resources"]
    assert not [r for r in stage.values() if r["Type"].startswith(("AWS::ApiGateway::", "AWS::WAFv2::"))]
    assert not [r for r in stage.values() if r["Type"].startswith("AWS::CloudWatch::")]
    assert synth.api.of_type("AWS::ApiGateway::Method") and synth.monitoring.of_type("AWS::CloudWatch::Alarm")
    # The stage stack's resources as a graph (Ref, GetAtt, DependsOn): whatever a nested stack's
    # parameters name must not wait, directly or not, for that nested stack (CloudFormation would
    # refuse the circular dependency).
    edges = {logical_id: _refs(resource) & set(stage) for logical_id, resource in stage.items()}
    for nested in synth.nested:
        before: set[str] = set()
        todo = [nested.logical_id]
        while todo:
            for needed in edges[todo.pop()] - before:
                before.add(needed)
                todo.append(needed)
        assert nested.logical_id not in before, nested.stack.node.path


def _refs(value: Any) -> set[str]:
    """Logical ids a template value refers to by Ref, Fn::GetAtt or DependsOn."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "Ref" and isinstance(child, str):
                found.add(child)
            elif key == "Fn::GetAtt" and isinstance(child, list):
                found.add(str(child[0]))
            elif key == "DependsOn":
                found.update([child] if isinstance(child, str) else child)
            else:
                found |= _refs(child)
    elif isinstance(value, list):
        for child in value:
            found |= _refs(child)
    return found


def test_cdk_nag_checks_what_is_in_a_nested_stack(tmp_path: Path) -> None:
    # The packs run as validation plugins on the app: a finding inside a nested stack must reach
    # the report (the API's waivers are only proven by this, since they leave nothing to report).
    app = cdk.App(outdir=str(tmp_path), context={"@aws-cdk/core:failSynthOnValidationErrors": False})
    stage = cdk.Stack(app, "Probe")
    nested = cdk.NestedStack(stage, "Inner")
    sqs.Queue(nested, "Unguarded")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    paths = {
        construct.get("constructPath")
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    }
    assert "Probe/Inner/Unguarded/Resource" in paths, paths


# ---- the console's hosting (its own stack) ---------------------------------------------------------
def _console_resources(synth: Synth) -> dict[str, dict[str, Any]]:
    assert synth.stack.console is not None
    template = synth.assembly.get_stack_artifact(synth.stack.console.artifact_id).template
    return dict(template["Resources"])


def _one(resources: dict[str, dict[str, Any]], resource_type: str) -> dict[str, Any]:
    found = [r["Properties"] for r in resources.values() if r["Type"] == resource_type]
    assert len(found) == 1, (resource_type, len(found))
    return found[0]


def test_the_console_is_a_private_bucket_behind_cloudfront_https_only(synth: Synth) -> None:
    resources = _console_resources(synth)
    bucket = _one(resources, "AWS::S3::Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in bucket
    # Origin access control: only this distribution may read the files, signed (sigv4, always).
    oac = _one(resources, "AWS::CloudFront::OriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    policy = _one(resources, "AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"]
    readers = [st for st in policy if st["Effect"] == "Allow"]
    assert len(readers) == 1
    assert readers[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert readers[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in readers[0]["Condition"]["StringEquals"]
    assert any(st["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(st) for st in policy)

    config = _one(resources, "AWS::CloudFront::Distribution")["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    (api,) = config["CacheBehaviors"]
    assert api["PathPattern"] == "/v1/*" and api["ViewerProtocolPolicy"] == "https-only"
    assert {"POST", "PUT", "PATCH", "DELETE"} <= set(api["AllowedMethods"])
    # The API's answers are never cached (per caller, current), and its origin is the stage.
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert any("execute-api" in json.dumps(o) for o in config["Origins"])


def test_the_console_gets_the_same_security_headers_as_locally(synth: Synth) -> None:
    resources = _console_resources(synth)
    policy = _one(resources, "AWS::CloudFront::ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = policy["SecurityHeadersConfig"]
    assert security["ContentSecurityPolicy"] == {
        "ContentSecurityPolicy": CONSOLE.content_security_policy,
        "Override": True,
    }
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 63_072_000
    assert security["ContentTypeOptions"]["Override"] is True
    custom = {h["Header"]: h["Value"] for h in policy["CustomHeadersConfig"]["Items"]}
    expected = CONSOLE.response_headers()
    assert custom == {k: expected[k] for k in ("Cross-Origin-Opener-Policy", "Permissions-Policy")}
    config = _one(resources, "AWS::CloudFront::Distribution")["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert all("ResponseHeadersPolicyId" in b for b in behaviours)


def test_checkov_fails_nothing_on_the_console_stack(synth: Synth) -> None:
    assert synth.stack.console is not None
    artifact = synth.assembly.get_stack_artifact(synth.stack.console.artifact_id)
    report = _checkov(Path(artifact.template_full_path))
    assert report["summary"]["passed"] > 0
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    by_reason = {waiver.reason: waiver for waiver in waivers.ALL}
    for check in report["results"]["skipped_checks"]:
        waiver = by_reason.get(check["check_result"].get("suppress_comment", ""))
        assert waiver is not None and check["check_id"] in waiver.rules, check["check_id"]


def test_the_run_control_may_start_stop_and_describe_the_run_machine_and_nothing_else(synth: Synth) -> None:
    # The campaigns API and the campaign-schedule job start runs: the run state machine's ARN in
    # their environment, StartExecution on it, Stop/DescribeExecution on its executions only.
    (machine_id,) = [
        i for i in synth.of_type("AWS::StepFunctions::StateMachine") if i.startswith(CAMPAIGN_RUN.logical_id)
    ]
    for name in CAMPAIGN_RUN.controllers:
        definition = _function(name)
        env = synth.resources[synth.function_id(definition)]["Properties"]["Environment"]["Variables"]
        assert env[CAMPAIGN_RUN.arn_env_var] == {"Ref": machine_id}, name
        assert synth.resources_for(definition, "states:StartExecution") == [{"Ref": machine_id}], name
        executions = synth.resources_for(definition, "states:StopExecution")
        assert executions == synth.resources_for(definition, "states:DescribeExecution"), name
        (execution_arn,) = executions
        assert ":execution:" in json.dumps(execution_arn) and machine_id in json.dumps(execution_arn), name
        assert not {a for a in synth.actions_of(definition) if a.startswith("states:")} - {
            "states:StartExecution",
            "states:StopExecution",
            "states:DescribeExecution",
        }, name
    # The run's tasks themselves start nothing.
    for task in (CAMPAIGN_RUN.prepare, CAMPAIGN_RUN.batch, CAMPAIGN_RUN.finish):
        assert not {a for a in synth.actions_of(_function(task)) if a.startswith("states:")}, task
