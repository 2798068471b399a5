"""The CDK app, synthesised once for the module with cdk-nag attached, checked as a template.

Given the app as `make synth` builds it (cdk.json's context, cdk-nag's AWS Solutions checks),
when it is synthesised, then the template holds what the route table, the resource definitions
and the least-privilege rules say, cdk-nag has nothing unacknowledged and cfn-lint no errors.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import cx_api
from aws_cdk.assertions import Match, Template
from boto3.dynamodb.types import TypeSerializer
from cdk_nag import AwsSolutionsChecks

from loyalty.api.authorizer import AUTHORIZER_CACHE_SECONDS
from loyalty.api.gateway_responses import (
    CONTENT_TYPE,
    DEFAULT_4XX,
    DEFAULT_5XX,
    GATEWAY_RESPONSES,
    gateway_response,
)
from loyalty.api.problems import PROBLEM_BASE
from loyalty.api.routes import AUTHORIZER, FUNCTIONS, JOBS, ROUTES
from loyalty.domain import events as domain_events
from loyalty.domain.access import Access
from loyalty.resources import EVENT_BUS, TABLE
from loyalty.services.publisher import events_of
from loyalty_infra.config import DEPS_LAYER_DIR, REPO_ROOT, DeploySettings
from loyalty_infra.functions import Definition
from loyalty_infra.outbox import OUTBOX_FILTER
from loyalty_infra.stack import LoyaltyStack, build

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


@dataclass
class Synth:
    app: cdk.App
    stack: LoyaltyStack
    assembly: cx_api.CloudAssembly
    template: Template
    resources: dict[str, dict[str, Any]]
    seconds: float

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

    def only_id(self, resource_type: str) -> str:
        (logical_id,) = self.of_type(resource_type)
        return logical_id


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    if not (DEPS_LAYER_DIR / "python").is_dir():
        pytest.fail(f"{DEPS_LAYER_DIR / 'python'} is missing: run `make deps-layer` first (`make test` does)")
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    # Reference asset folders in place instead of copying the 70 MB dependency layer per run.
    context["aws:cdk:disable-asset-staging"] = True
    # `make synth` fails on any cdk-nag finding; here the report is kept so that one test names
    # the findings while the others still run.
    context["@aws-cdk/core:failSynthOnValidationErrors"] = False
    started = time.perf_counter()
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context)
    stack = build(app)
    assembly = app.synth()  # cdk-nag runs here and writes validation-report.json
    template = Template.from_stack(stack)  # reuses the assembly above: no second synth
    seconds = time.perf_counter() - started
    return Synth(app, stack, assembly, template, template.to_json()["Resources"], seconds)


def test_synth_is_quick_enough(synth: Synth) -> None:
    # One synth per session is the budget (design.md: about 11 s); a regression shows here first.
    assert synth.seconds < 60, f"synth took {synth.seconds:.1f} s"


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
                            "Projection": {"ProjectionType": "ALL"},
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
    assert {"ApiUrl", "TableName"} <= set(outputs)
    assert outputs["TableName"]["Value"] == {"Ref": next(iter(synth.of_type("AWS::DynamoDB::Table")))}


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
    (secret_id,) = synth.of_type("AWS::SecretsManager::Secret")
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    (bus_id,) = synth.of_type("AWS::Events::EventBus")
    for definition in ALL_FUNCTIONS:
        env = synth.resources[synth.function_id(definition)]["Properties"]["Environment"]["Variables"]
        assert env["TABLE_NAME"] == {"Ref": table_id}
        assert env["EVENT_BUS_NAME"] == {"Ref": bus_id}
        # Ref on a secret is its ARN: the function fetches the value with its own grant.
        assert env["API_KEY_PEPPER_SECRET"] == {"Ref": secret_id}
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
    assert not {a for a in actions if a.startswith("secretsmanager:")}


def test_admin_reads_and_writes_data_and_reads_the_pepper(synth: Synth) -> None:
    actions = synth.actions_of(_function("admin"))
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "secretsmanager:GetSecretValue"} <= actions
    assert "secretsmanager:PutSecretValue" not in actions


def test_no_wildcard_actions_or_resources(synth: Synth) -> None:
    stream_roles = {synth.role_of(job) for job in STREAM_CONSUMERS}
    for logical_id, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions = [listed] if isinstance(listed, str) else listed
            for action in actions:
                assert not action.endswith(":*"), f"{logical_id} allows {action}"
            if statement["Resource"] == "*":
                # Only an action with no resource-level permissions, alone, for a stream consumer.
                assert set(actions) <= RESOURCE_STAR_ONLY, f"{logical_id} allows {actions} on *"
                roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
                assert roles <= stream_roles, f"{logical_id} allows {actions} on * to {roles}"


def test_transactions_reads_and_writes_data_but_not_the_pepper(synth: Synth) -> None:
    actions = synth.actions_of(_function("transactions"))
    assert {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"} <= actions
    # TransactWriteItems is authorised per item as Put / Update / ConditionCheck.
    assert TABLE_WRITE | {"dynamodb:ConditionCheckItem"} <= actions
    assert not {a for a in actions if a.startswith("secretsmanager:")}


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


def test_publisher_is_fed_by_the_table_stream_in_order_with_partial_failures(synth: Synth) -> None:
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(STREAM_CONSUMERS) == 1
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    (mapping,) = mappings.values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": synth.function_id(_function("publisher"))}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
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


def _stream_record(
    event_name: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None
) -> dict[str, Any]:
    serializer = TypeSerializer()
    change: dict[str, Any] = {"Keys": {"pk": {"S": "CUSTOMER#1"}, "sk": {"S": "PROFILE"}}}
    if new is not None:
        change["NewImage"] = {k: serializer.serialize(v) for k, v in new.items()}
    if old is not None:
        change["OldImage"] = {k: serializer.serialize(v) for k, v in old.items()}
    return {"eventID": "1", "eventName": event_name, "eventSource": "aws:dynamodb", "dynamodb": change}


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
            assert operator == "exists", f"the model knows no {operator!r}"
            if bool(values) == argument:
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


def test_every_queue_is_encrypted_and_refuses_requests_without_tls(synth: Synth) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    assert len(queues) == len(SCHEDULED) + len(STREAM_CONSUMERS)
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
    resources = synth.of_type("AWS::ApiGateway::Resource")

    def path_of(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the root resource
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    return {
        logical_id: path_of(method["Properties"]["ResourceId"]) or "/"
        for logical_id, method in synth.of_type("AWS::ApiGateway::Method").items()
    }


def test_every_route_is_a_method_with_the_right_authorization(synth: Synth) -> None:
    (authorizer_id,) = synth.of_type("AWS::ApiGateway::Authorizer")
    (validator_id,) = synth.of_type("AWS::ApiGateway::RequestValidator")
    paths = _method_paths(synth)
    methods = synth.of_type("AWS::ApiGateway::Method")
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
    synth.template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.x-api-key",
            "AuthorizerResultTtlInSeconds": AUTHORIZER_CACHE_SECONDS,
        },
    )
    (authorizer,) = synth.of_type("AWS::ApiGateway::Authorizer").values()
    assert synth.function_id(AUTHORIZER) in json.dumps(authorizer["Properties"]["AuthorizerUri"])


def test_request_validation_checks_body_and_parameters(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True, "ValidateRequestParameters": True}
    )


def test_stage_logs_throttles_and_traces_per_setting(synth: Synth) -> None:
    synth.template.has_resource_properties(
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
    synth.template.has_resource_properties(
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
        for r in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
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


def test_unlisted_gateway_response_types_fall_back_by_status_class() -> None:
    assert gateway_response("UNAUTHORIZED").status == 401
    assert gateway_response("INTEGRATION_TIMEOUT") is DEFAULT_5XX
    assert gateway_response("BAD_REQUEST_BODY") is DEFAULT_4XX


def test_context_switches_tracing_and_the_table_key() -> None:
    app = cdk.App(context={"stage": "prod", "tracing": "true", "tableCmk": True})
    assert DeploySettings.from_context(app.node) == DeploySettings(stage="prod", tracing=True, table_cmk=True)
    assert DeploySettings.from_context(cdk.App().node) == DeploySettings()
    with pytest.raises(ValueError, match="stage"):
        DeploySettings(stage="Prod EU")


# ---- cdk-nag and cfn-lint -------------------------------------------------------------------


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synth) -> None:
    # cdk-nag 3 is a policy-validation plugin: its findings, errors and warnings alike, go to the
    # validation report in the assembly, not to annotations.
    report = json.loads((Path(synth.assembly.directory) / "validation-report.json").read_text())
    violations = [
        (v.get("ruleName"), [c.get("constructPath") for c in v.get("violatingConstructs", [])])
        for plugin in report.get("pluginReports", [])
        for v in plugin.get("violations", [])
    ]
    assert violations == [], violations
    # The same pack run directly over the tree gives a readable list if the report format moves.
    direct = AwsSolutionsChecks().validate_scope(synth.app)
    assert direct.success, [(v.rule_name, v.severity) for v in direct.violations]
    assert list(direct.violations) == []


def test_no_errors_or_warnings_annotated_on_the_stack(synth: Synth) -> None:
    # What assertions.Annotations.from_stack reads, taken from the one synth (from_stack re-synths).
    messages = synth.assembly.get_stack_artifact(synth.stack.artifact_id).messages
    flagged = [
        (m.level.value, m.id, str(m.entry.data)) for m in messages if m.level.value in {"error", "warning"}
    ]
    assert not [f for f in flagged if "AwsSolutions-" in f[2]], flagged
    assert flagged == [], flagged


def test_every_acknowledgement_is_narrow_and_explained(synth: Synth) -> None:
    acknowledged = []
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            assert not isinstance(construct, cdk.Stack | cdk.App), f"acknowledged at {construct.node.path}"
            for rule_id, reason in dict(entry.data).items():
                acknowledged.append(rule_id)
                assert len(str(reason)) >= 40, f"{rule_id} at {construct.node.path}: reason too thin"
    assert acknowledged, "no acknowledgements found: has the metadata key changed?"


def test_cfn_lint_finds_no_errors(synth: Synth, tmp_path: Path) -> None:
    from cfnlint.api import ManualArgs, lint_file

    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(synth.template.to_json(), indent=1))
    matches = lint_file(template_file, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    problems = [
        f"{m.rule.id} line {m.linenumber}: {m.message}"
        for m in matches
        if m.rule.id.startswith("E")
        or (m.rule.id.startswith("W") and m.rule.id not in CFN_LINT_ACCEPTED_WARNINGS)
    ]
    assert problems == []


def _function(name: str) -> Definition:
    return next(f for f in ALL_FUNCTIONS if f.name == name)
