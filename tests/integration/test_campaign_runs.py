"""The campaign run workflow as the CDK app synthesises it, executed by moto with our handlers.

Given the synthesised template (loyalty_local.stepfunctions: resolved, its functions routed to the
real handlers in-process), when runs are started over audiences in moto's S3, then each item is
applied once per run however batches fail, retry, get caught or the run is stopped and restarted,
and Finish's counts are exact. The canaries at the end pin each moto internal the route relies on.
"""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from loyalty.adapters.campaign_runs import DynamoRunLedger, S3AudienceList, S3RunFiles, item_pk
from loyalty.bootstrap import Container
from loyalty.domain.campaign_runs import InvalidTaskInput, RunRef
from loyalty.domain.events import SOURCE
from loyalty.resources import CAMPAIGN_RUN, BusTriggerDef
from loyalty.services.campaign_runs import CampaignRuns, MarkDone
from loyalty_local import stepfunctions
from loyalty_local.bus_triggers import TriggerDelivery, create_trigger, execution_name, trigger_poller
from loyalty_local.scheduler import ScheduleRunner
from loyalty_local.stepfunctions import LocalStateMachines, wait_for_execution

pytestmark = pytest.mark.xdist_group("campaign-runs")


class CountingAction:
    """MarkDone, counting the items each call applied for the first time; `fault` may raise."""

    def __init__(self, ledger: DynamoRunLedger, fault: Callable[[str], None] | None = None) -> None:
        self._mark = MarkDone(ledger=ledger)
        self.fault = fault
        self.applied: Counter[str] = Counter()
        self._lock = threading.Lock()

    def apply(self, run: RunRef, item: str) -> bool:
        if self.fault is not None:
            self.fault(item)
        first = self._mark.apply(run, item)
        if first:
            with self._lock:
                self.applied[item] += 1
        return first


@dataclass
class Platform:
    container: Container
    action: CountingAction
    arn: str
    sfn: Any
    s3: Any
    bucket: str
    ledger: DynamoRunLedger

    def audience(self, items: list[str]) -> dict[str, str]:
        key = f"audiences/{uuid.uuid4().hex}.txt"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body="\n".join(items).encode())
        return {"bucket": self.bucket, "key": key}

    def start(self, run_id: str, audience: dict[str, str], name: str | None = None, **extra: Any) -> str:
        execution_input = {"campaign_id": "camp-1", "run_id": run_id, "audience": audience, **extra}
        return str(
            self.sfn.start_execution(
                stateMachineArn=self.arn,
                name=name or f"{run_id}-{uuid.uuid4().hex[:8]}",
                input=json.dumps(execution_input),
            )["executionArn"]
        )

    def run(self, run_id: str, audience: dict[str, str], timeout: float = 25, **extra: Any) -> dict[str, Any]:
        return wait_for_execution(self.sfn, self.start(run_id, audience, **extra), timeout=timeout)


@pytest.fixture
def platform(
    make_container: Callable[..., Container],
    make_state_machines: Callable[[Container], LocalStateMachines],
    aws_session: Any,
) -> Platform:
    container = make_container()
    resources = container.local_resources  # type: ignore[attr-defined]
    machines = make_state_machines(container)
    ledger = DynamoRunLedger(container.table)
    action = CountingAction(ledger)
    # The composition root's service, with the counting action in MarkDone's place.
    container.campaign_runs = CampaignRuns(  # type: ignore[misc]
        audience=S3AudienceList(container.client("s3")),
        files=S3RunFiles(container.client("s3"), resources.campaign_runs_bucket),
        ledger=ledger,
        action=action,
        clock=container.clock,
        batch_size=CAMPAIGN_RUN.batch_size,
    )
    return Platform(
        container=container,
        action=action,
        arn=machines.arn(CAMPAIGN_RUN),
        sfn=aws_session.client("stepfunctions"),
        s3=aws_session.client("s3"),
        bucket=resources.campaign_runs_bucket,
        ledger=ledger,
    )


def customers(n: int) -> list[str]:
    return [f"cust-{i:05d}" for i in range(n)]


def summary_of(described: dict[str, Any]) -> dict[str, Any]:
    output = json.loads(described.get("output") or "{}")
    return dict(output)


def markers(platform: Platform, run_id: str, items: list[str]) -> int:
    run = RunRef("camp-1", run_id)
    found = platform.container.table.batch_get([(item_pk(run, i), "ITEM") for i in items])
    return len(found)


def test_a_run_over_1000_items_succeeds_with_exact_counts(platform: Platform) -> None:
    # Given an audience of 1,000 customers, five of them listed twice
    items = customers(1000)
    audience = platform.audience(items + items[:5])
    # When the run executes (10 batches of 100)
    described = platform.run("run-1000", audience)
    # Then it succeeded, every customer applied once, and the counts say so exactly
    assert described["status"] == "SUCCEEDED", described
    summary = platform.ledger.summary(RunRef("camp-1", "run-1000"))
    assert summary is not None
    assert {k: summary[k] for k in ("status", "items", "done", "failed", "batches", "batches_failed")} == {
        "status": "succeeded",
        "items": 1000,
        "done": 1000,
        "failed": 0,
        "batches": 10,
        "batches_failed": 0,
    }
    assert markers(platform, "run-1000", items) == 1000
    assert set(platform.action.applied) == set(items)
    assert set(platform.action.applied.values()) == {1}


def test_a_batch_failing_twice_then_succeeding_applies_each_item_once(platform: Platform) -> None:
    # Given a batch whose first two attempts fail halfway (after 50 of its 100 items)
    items = customers(300)
    attempts: Counter[str] = Counter()

    def fault(item: str) -> None:
        if item == "cust-00150":
            attempts[item] += 1
            if attempts[item] <= 2:
                raise ConnectionError("the table went away")

    platform.action.fault = fault
    # When the run executes
    described = platform.run("run-flaky", platform.audience(items))
    # Then the Retry ran the batch three times, and each item was applied exactly once
    assert described["status"] == "SUCCEEDED", described
    assert attempts["cust-00150"] == 3
    assert set(platform.action.applied) == set(items)
    assert set(platform.action.applied.values()) == {1}
    summary = platform.ledger.summary(RunRef("camp-1", "run-flaky"))
    assert summary is not None
    assert (summary["status"], summary["done"], summary["failed"]) == ("succeeded", 300, 0)


def test_a_failed_batch_is_caught_and_recorded_and_a_restart_completes_the_run_once(
    platform: Platform,
) -> None:
    # Given a batch that can never succeed (an error the Retry leaves to the Catch)
    items = customers(500)

    def fault(item: str) -> None:
        if item == "cust-00242":
            raise InvalidTaskInput("this customer cannot be actioned")

    platform.action.fault = fault
    audience = platform.audience(items)
    # When the run executes
    described = platform.run("run-caught", audience)
    # Then the batch's failure is recorded, the others are done, and the run ends FAILED
    assert described["status"] == "FAILED", described
    assert described.get("error") == "CampaignRunFailed"
    run = RunRef("camp-1", "run-caught")
    outcomes = {o.batch: o for o in platform.ledger.batch_outcomes(run)}
    assert outcomes[2].failed == 100
    assert outcomes[2].error is not None and outcomes[2].error.startswith("InvalidTaskInput")
    summary = platform.ledger.summary(run)
    assert summary is not None
    assert (summary["status"], summary["done"], summary["failed"], summary["batches_failed"]) == (
        "failed",
        400,
        100,
        1,
    )
    # When the cause is mended and the run is started again under the same run id
    platform.action.fault = None
    again = platform.run("run-caught", audience)
    # Then it succeeds, and nobody was applied twice
    assert again["status"] == "SUCCEEDED", again
    assert set(platform.action.applied) == set(items)
    assert set(platform.action.applied.values()) == {1}
    summary = platform.ledger.summary(run)
    assert summary is not None
    assert (summary["status"], summary["done"], summary["failed"]) == ("succeeded", 500, 0)


def test_a_run_stopped_midway_and_restarted_applies_no_item_twice(platform: Platform) -> None:
    # Given a run whose batches stall once 250 items are done
    items = customers(1000)
    gate = threading.Event()
    reached = threading.Event()
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def fault(item: str) -> None:
        with lock:
            seen["items"] += 1
            stall = seen["items"] > 250
        if stall:
            reached.set()
            gate.wait(20)

    platform.action.fault = fault
    audience = platform.audience(items)
    first = platform.start("run-stopped", audience)
    assert reached.wait(20), "the run never reached its stall"
    # When it is stopped midway and restarted under the same run id while the stopped execution's
    # invocations are still in flight (they finish afterwards, racing the restart, as on AWS)
    platform.sfn.stop_execution(executionArn=first, error="Operator", cause="stopped by a test")
    applied_at_stop = sum(platform.action.applied.values())
    platform.action.fault = None
    second = platform.start("run-stopped", audience)
    gate.set()
    again = wait_for_execution(platform.sfn, second, timeout=25)
    stopped = wait_for_execution(platform.sfn, first, timeout=10)
    # Then the first execution was aborted partway, the restart succeeded, and no item was applied twice
    assert stopped["status"] == "ABORTED", stopped
    assert 0 < applied_at_stop <= 250
    assert again["status"] == "SUCCEEDED", again
    assert set(platform.action.applied) == set(items)
    assert set(platform.action.applied.values()) == {1}
    assert markers(platform, "run-stopped", items) == 1000
    summary = summary_of(again)
    assert (summary["status"], summary["done"], summary["batches_missing"]) == ("succeeded", 1000, 0)


def test_an_audience_that_cannot_be_read_fails_the_run_with_its_reason(platform: Platform) -> None:
    # Given an audience file that does not exist
    audience = {"bucket": platform.bucket, "key": "audiences/missing.txt"}
    # When the run executes
    described = platform.run("run-missing", audience)
    # Then Prepare's failure is caught, Finish records it, and the run ends FAILED at once (not retried)
    assert described["status"] == "FAILED"
    summary = platform.ledger.summary(RunRef("camp-1", "run-missing"))
    assert summary is not None
    assert summary["status"] == "failed"
    assert summary["error"].startswith("InvalidTaskInput")
    assert platform.action.applied == Counter()


def test_an_empty_audience_is_a_run_of_nothing_that_succeeds(platform: Platform) -> None:
    described = platform.run("run-empty", platform.audience([]))
    assert described["status"] == "SUCCEEDED", described
    summary = summary_of(described)
    assert (summary["items"], summary["done"], summary["batches"]) == (0, 0, 0)


def test_a_run_without_ids_fails_at_once_with_the_reason(platform: Platform) -> None:
    # Given an execution input with no campaign id
    arn = platform.sfn.start_execution(
        stateMachineArn=platform.arn, name="no-ids", input=json.dumps({"run_id": "r-1", "audience": {}})
    )["executionArn"]
    # When it runs, then Prepare and Finish both refuse it, neither is retried, and the run fails
    described = wait_for_execution(platform.sfn, arn, timeout=10)
    assert (described["status"], described.get("error")) == ("FAILED", "InvalidTaskInput")
    assert platform.action.applied == Counter()


# ---- scheduled and event-triggered runs --------------------------------------------------------------


def test_a_one_time_schedule_in_a_time_zone_starts_the_run_when_the_clock_reaches_it(
    platform: Platform, aws_session: Any
) -> None:
    # Given a one-time schedule (Amsterdam time) starting a run, stored in moto's Scheduler
    items = customers(120)
    execution_input = {
        "campaign_id": "camp-1",
        "run_id": "run-scheduled",
        "audience": platform.audience(items),
    }
    name = f"{platform.container.settings.table_name}-campaign"
    aws_session.client("scheduler").create_schedule(
        Name=name,
        ScheduleExpression="at(2027-03-28T09:00:00)",
        ScheduleExpressionTimezone="Europe/Amsterdam",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": platform.arn,
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": json.dumps(execution_input),
        },
    )
    runner = ScheduleRunner(aws_session)
    # When the clock stands a minute before 09:00 CEST (07:00Z, the day summer time starts), then at it
    before = [f for f in runner.tick(datetime(2027, 3, 28, 6, 59, tzinfo=UTC)) if f.name == name]
    at = [f for f in runner.tick(datetime(2027, 3, 28, 7, 0, tzinfo=UTC)) if f.name == name]
    again = [f for f in runner.tick(datetime(2027, 3, 28, 7, 5, tzinfo=UTC)) if f.name == name]
    # Then it fired once, at 07:00Z, the run succeeded, and the one-time schedule is gone
    assert (before, [f.scheduled for f in at], again) == ([], [datetime(2027, 3, 28, 7, 0, tzinfo=UTC)], [])
    executions = platform.sfn.list_executions(stateMachineArn=platform.arn)["executions"]
    (execution,) = [e for e in executions if e["name"].startswith(name[-20:]) or name in e["name"]]
    described = wait_for_execution(platform.sfn, execution["executionArn"], timeout=25)
    assert described["status"] == "SUCCEEDED", described
    assert summary_of(described)["done"] == 120
    names = [s["Name"] for s in aws_session.client("scheduler").list_schedules()["Schedules"]]
    assert name not in names


def test_a_bus_rule_starts_one_run_per_event_through_the_local_tap(
    platform: Platform, aws_session: Any
) -> None:
    # Given a rule on the bus whose target is the run state machine (moto cannot deliver to it)
    trigger = BusTriggerDef(
        logical_id="RunRequested",
        local_name="run-requested",
        detail_types=("CampaignRunRequested",),
        state_machine=CAMPAIGN_RUN.logical_id,
        input_path="$.detail",
    )
    settings = platform.container.settings
    tap = create_trigger(aws_session, trigger, settings.event_bus_name, prefix=f"{settings.table_name}-")
    poller = trigger_poller(aws_session, tap, state_machine_arns={CAMPAIGN_RUN.logical_id: platform.arn})
    detail = {
        "campaign_id": "camp-1",
        "run_id": "run-triggered",
        "audience": platform.audience(customers(50)),
    }
    # When the event is put on the bus (moto's rule matches it into the tap) and delivered twice
    events = aws_session.client("events")
    put = events.put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": "CampaignRunRequested",
                "Detail": json.dumps(detail),
                "EventBusName": settings.event_bus_name,
            }
        ]
    )
    assert put["FailedEntryCount"] == 0
    poller.drain(idle_rounds=2, max_seconds=10)
    (message,) = put["Entries"]
    poller_delivery = TriggerDelivery(
        aws_session, trigger, state_machine_arns={CAMPAIGN_RUN.logical_id: platform.arn}
    )
    poller_delivery.deliver({"id": message["EventId"], "detail": detail})  # a redelivery
    # Then one execution was started for the event, named after it, and the run succeeded
    executions = [
        e
        for e in platform.sfn.list_executions(stateMachineArn=platform.arn)["executions"]
        if "run-requested" in e["name"]
    ]
    assert [e["name"] for e in executions] == [execution_name(trigger, {"id": message["EventId"]})]
    described = wait_for_execution(platform.sfn, executions[0]["executionArn"], timeout=25)
    assert described["status"] == "SUCCEEDED", described
    assert summary_of(described)["done"] == 50
    assert poller.failures == 0


# ---- what moto cannot run stays out of the synthesised ASL ------------------------------------------


def _definition(template: dict[str, Any]) -> dict[str, Any]:
    _, machine = stepfunctions.find_resource(
        template, "AWS::StepFunctions::StateMachine", f"/{CAMPAIGN_RUN.logical_id}/StateMachine/Resource"
    )
    refs = {"AWS::Partition": "aws"}
    refs.update(
        {
            f"{lid}.{attr}": "arn:x"
            for lid, attr in stepfunctions.references(machine["Properties"]["DefinitionString"])
            if attr
        }
    )
    refs.update(
        {
            lid: "x"
            for lid, attr in stepfunctions.references(machine["Properties"]["DefinitionString"])
            if not attr
        }
    )
    return dict(json.loads(stepfunctions.resolve(machine["Properties"]["DefinitionString"], refs)))


def test_the_synthesised_asl_avoids_what_the_local_interpreter_cannot_run(
    cdk_template: dict[str, Any],
) -> None:
    text = json.dumps(_definition(cdk_template))
    for absent in (
        "ItemBatcher",
        "JSONata",
        '"Assign"',
        "EXPRESS",
        "ToleratedFailurePercentage",
        "startExecution",
    ):
        assert absent not in text, absent
    batches = _definition(cdk_template)["States"]["Batches"]
    assert batches["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert batches["MaxConcurrency"] == CAMPAIGN_RUN.max_concurrency
    retry = batches["ItemProcessor"]["States"]["Batch"]["Retry"]
    assert retry[0] == {"ErrorEquals": list(CAMPAIGN_RUN.not_retried), "MaxAttempts": 0}
    assert retry[1]["BackoffRate"] == CAMPAIGN_RUN.batch_retry.backoff_rate


# ---- canaries: each moto internal this route relies on ---------------------------------------------


def test_canary_moto_lambda_invocations_go_through_invoke_lambda() -> None:
    from moto.awslambda.models import LambdaFunction

    original = inspect.unwrap(LambdaFunction._invoke_lambda)
    assert getattr(LambdaFunction._invoke_lambda, "loyalty_in_process", False), "the patch is not installed"
    # Every invoke (the Invoke API, Step Functions tasks, triggers) reaches it with the parsed body.
    assert "self._invoke_lambda(event=body)" in inspect.getsource(LambdaFunction.invoke)
    parameters = list(inspect.signature(original).parameters)
    assert parameters == ["self", "event"], parameters


def test_canary_moto_model_data_answers_with_functions_created(emulators: Any, aws_session: Any) -> None:
    # The patched `docker_client` raises AttributeError so that moto's data.json, which reads every
    # attribute of every model and skips only TypeError, AttributeError and ValueError, still
    # answers once a function exists (the messaging tests read SES's sent mail there).
    import io
    import zipfile

    import requests
    from moto.awslambda.models import LambdaFunction
    from moto.moto_api._internal import responses

    from loyalty_local.stepfunctions import install_in_process_lambda

    install_in_process_lambda()
    assert "except (TypeError, AttributeError, ValueError)" in inspect.getsource(responses)
    assert isinstance(LambdaFunction.__dict__["docker_client"], property)
    _, moto = emulators
    role = aws_session.client("iam").create_role(RoleName="canary-data-json", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    aws_session.client("lambda").create_function(
        FunctionName="canary-data-json",
        Runtime="python3.11",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": code.getvalue()},
    )
    assert requests.get(f"{moto.endpoint}/moto-api/data.json", timeout=30).status_code == 200


def test_canary_moto_step_functions_name_errors_by_error_type() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda

    source = inspect.getsource(state_task_lambda)
    assert 'cause_object["errorType"]' in source


def test_canary_moto_interpreter_calls_lambda_on_moto_port(emulators: Any) -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    _, moto = emulators
    stepfunctions.enable(moto.endpoint)
    assert "moto_server_port()" in inspect.getsource(boto_client.boto_client_for)
    from moto import settings

    assert settings.moto_server_port() == str(moto.port)


def test_canary_moto_executes_state_machines_once_configured(emulators: Any) -> None:
    from moto.core.config import default_user_config

    _, moto = emulators
    stepfunctions.enable(moto.endpoint)
    assert default_user_config["stepfunctions"]["execute_state_machine"] is True


def test_canary_an_invoke_answers_with_the_lambda_error_envelope(
    platform: Platform, aws_session: Any
) -> None:
    # A Batch invocation with a bad input: our handler raises, moto answers as Lambda does.
    name = f"{platform.container.settings.table_name}-{CAMPAIGN_RUN.batch}"
    answer = aws_session.client("lambda").invoke(FunctionName=name, Payload=json.dumps({"campaign_id": "c"}))
    assert answer.get("FunctionError") == "Handled"
    body = json.loads(answer["Payload"].read())
    assert body["errorType"] == "InvalidTaskInput"
