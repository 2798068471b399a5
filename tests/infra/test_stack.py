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
from loyalty.api.routes import AUTHORIZER, FUNCTIONS, ROUTES, FunctionDef
from loyalty.domain.access import Access
from loyalty.resources import EVENT_BUS, TABLE
from loyalty_infra.config import DEPS_LAYER_DIR, REPO_ROOT, DeploySettings
from loyalty_infra.stack import LoyaltyStack, build

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ALL_FUNCTIONS: tuple[FunctionDef, ...] = (*FUNCTIONS, AUTHORIZER)
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

    def function_id(self, definition: FunctionDef) -> str:
        found = [
            logical_id
            for logical_id, fn in self.of_type("AWS::Lambda::Function").items()
            if fn["Properties"].get("Description") == definition.description
        ]
        assert len(found) == 1, f"expected one function for {definition.name}, found {found}"
        return found[0]

    def actions_of(self, definition: FunctionDef) -> set[str]:
        """Every IAM action the function's role is allowed, from any policy attached to it."""
        role_id = self.resources[self.function_id(definition)]["Properties"]["Role"]["Fn::GetAtt"][0]
        role = self.resources[role_id]["Properties"]
        assert not role.get("ManagedPolicyArns"), f"{definition.name} role uses managed policies"
        assert not role.get("Policies"), (
            f"{definition.name} role has inline policies outside the DefaultPolicy"
        )
        actions: set[str] = set()
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} not in policy["Properties"].get("Roles", []):
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                listed = statement["Action"]
                actions.update([listed] if isinstance(listed, str) else listed)
        return actions


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


def test_one_function_per_function_def_plus_authorizer(synth: Synth) -> None:
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
    for logical_id, policy in synth.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            for action in [listed] if isinstance(listed, str) else listed:
                assert not action.endswith(":*"), f"{logical_id} allows {action}"
            assert statement["Resource"] != "*", f"{logical_id} allows {statement['Action']} on *"


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


def _function(name: str) -> FunctionDef:
    return next(f for f in ALL_FUNCTIONS if f.name == name)
