"""Bus triggers (resources.BusTriggerDef) as the BusRules construct deploys them, on a small stack.

The app defines none yet (campaign triggers come with campaigns), so a stack of its own holds one
trigger to a function and one to a state machine: each is a rule on the bus with the platform's
source and the trigger's detail-types, EventBridge's retry policy and a dead-letter queue, and the
state machine's gets the event's detail as its input.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from loyalty.domain.events import SOURCE
from loyalty.resources import BusTriggerDef
from loyalty_infra.bus_rules import MAX_EVENT_AGE, RETRY_ATTEMPTS, BusRules

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

TO_FUNCTION = BusTriggerDef("Welcome", "welcome", ("CustomerEnrolled",), function="probe")
TO_MACHINE = BusTriggerDef(
    "TierMessage", "tier-message", ("TierChanged",), state_machine="Run", input_path="$.detail"
)


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
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
    template = Template.from_stack(stack).to_json()
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
