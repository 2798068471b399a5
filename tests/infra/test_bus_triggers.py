"""Bus triggers (resources.BusTriggerDef) as the BusRules construct deploys them, on a small stack.

A stack of its own holds one trigger to a function and one to a state machine: each is a rule on
the bus with the platform's source and the trigger's detail-types, EventBridge's retry policy and a
dead-letter queue, and the state machine's gets the event's detail as its input. The function may
be invoked by its rule alone, and what fails inside it after Lambda's retries lands in the same
dead-letter queue. The app's own trigger (campaign triggers) is checked in the whole stack's
template (tests/infra/test_stack.py) and here against its definition.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from loyalty.domain.campaigns import TRIGGER_EVENTS
from loyalty.domain.events import SOURCE
from loyalty.resources import BUS_TRIGGERS, CAMPAIGN_TRIGGER, BusTriggerDef
from loyalty_infra.bus_rules import (
    ASYNC_MAX_EVENT_AGE,
    ASYNC_RETRY_ATTEMPTS,
    MAX_EVENT_AGE,
    RETRY_ATTEMPTS,
    BusRules,
)

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

TO_FUNCTION = BusTriggerDef("Welcome", "welcome", ("CustomerEnrolled",), function="probe")
TO_MACHINE = BusTriggerDef(
    "TierMessage", "tier-message", ("TierChanged",), state_machine="Run", input_path="$.detail"
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    stack = cdk.Stack(cdk.App(), "Triggers")
    bus = events.EventBus(stack, "Bus")
    function = lambda_.Function(
        stack,
        "Probe",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    machine = sfn.StateMachine(
        stack, "Run", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Nothing"))
    )
    BusRules(
        stack,
        "BusRules",
        bus=bus,
        queues={},
        dead_letters={},
        definitions=(),
        triggers=(TO_FUNCTION, TO_MACHINE),
        functions={"probe": function},
        state_machines={"Run": machine},
    )
    return dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def rules(template: dict[str, Any]) -> dict[str, Any]:
    return {
        r["Properties"]["Description"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
    }


def test_a_trigger_to_a_function_is_a_rule_with_retries_and_a_dead_letter_queue(
    rules: dict[str, Any],
) -> None:
    rule = rules["CustomerEnrolled to probe"]
    assert rule["EventPattern"] == {"source": [SOURCE], "detail-type": ["CustomerEnrolled"]}
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][1] == "Arn"
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": int(MAX_EVENT_AGE.to_seconds()),
    }
    assert "DeadLetterConfig" in target
    assert "InputPath" not in target  # the whole event, as EventBridge sends it to Lambda


def test_a_trigger_to_a_state_machine_starts_it_with_the_events_detail(rules: dict[str, Any]) -> None:
    rule = rules["TierChanged to Run"]
    (target,) = rule["Targets"]
    assert target["InputPath"] == "$.detail"
    assert "RoleArn" in target
    assert "DeadLetterConfig" in target


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


def test_only_the_rule_may_invoke_the_function(template: dict[str, Any]) -> None:
    (rule_id,) = [k for k, r in of_type(template, "AWS::Events::Rule").items() if "probe" in r["Description"]]
    (permission,) = of_type(template, "AWS::Lambda::Permission").values()
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def test_a_failure_inside_the_function_lands_in_the_dead_letter_queue(
    template: dict[str, Any], rules: dict[str, Any]
) -> None:
    (config,) = of_type(template, "AWS::Lambda::EventInvokeConfig").values()
    assert config["MaximumRetryAttempts"] == ASYNC_RETRY_ATTEMPTS
    assert config["MaximumEventAgeInSeconds"] == int(ASYNC_MAX_EVENT_AGE.to_seconds())
    (target,) = rules["CustomerEnrolled to probe"]["Targets"]
    # One queue for both: events EventBridge could not deliver, invocations that failed inside.
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == target["DeadLetterConfig"]["Arn"]
    (policy,) = of_type(template, "AWS::SQS::QueuePolicy").values()
    senders = {
        json.dumps(s["Condition"], sort_keys=True)
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s["Action"] == "sqs:SendMessage"
    }
    # Each rule may send only its own failures (aws:SourceArn), nothing else may send.
    assert len(senders) == 2 and all("aws:SourceArn" in c for c in senders)


def test_the_campaign_trigger_is_the_apps_only_trigger_and_takes_every_trigger_event() -> None:
    assert BUS_TRIGGERS == (CAMPAIGN_TRIGGER,)
    assert sorted(CAMPAIGN_TRIGGER.detail_types) == sorted(TRIGGER_EVENTS)
    assert CAMPAIGN_TRIGGER.function == "campaign-triggers"
