"""The campaign run workflow as the CDK app synthesises it, executed by moto with our handlers.

Given the synthesised template (loyalty_local.stepfunctions: resolved, its functions routed to the
real handlers in-process), when runs of a campaign are started, cancelled and retried through the
run control (services.campaign_run_control, its Step Functions adapter) over a segment's members,
then each customer is acted on once per run however batches fail, retry, get caught or the run is
stopped and retried, and the counts are exact. The actor here is a small fake keeping its receipts
in the table (tests/campaign_fakes.py): these tests are about the workflow; the real actor's runs
are in tests/integration/test_campaign_run_actions.py. The canaries at the end pin each moto
internal the route relies on.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from loyalty.adapters.campaign_run_starter import StepFunctionsRunStarter, execution_arn
from loyalty.adapters.campaign_runs import DynamoRunLedger, DynamoRunRecords, S3RunFiles, SegmentMembers
from loyalty.bootstrap import Container
from loyalty.domain.campaign_runs import InvalidTaskInput, RunRef
from loyalty.domain.campaigns import SKIP_REASONS, in_control
from loyalty.domain.events import SOURCE
from loyalty.resources import CAMPAIGN_RUN, BusTriggerDef
from loyalty.services.campaign_run_control import CampaignRunControl, RunView
from loyalty.services.campaign_runs import CampaignRuns
from loyalty_local import stepfunctions
from loyalty_local.bus_triggers import TriggerDelivery, create_trigger, execution_name, trigger_poller
from loyalty_local.scheduler import ScheduleRunner
from loyalty_local.stepfunctions import LocalStateMachines, wait_for_execution
from tests.campaign_fakes import FakeActor, FakeCatalogue, campaign, join_segment

pytestmark = pytest.mark.xdist_group("campaign-runs")


@dataclass
class Platform:
    container: Container
    actor: FakeActor
    catalogue: FakeCatalogue
    control: CampaignRunControl
    arn: str
    sfn: Any
    ledger: DynamoRunLedger
    records: DynamoRunRecords

    def segment(self, customers: list[str], segment_id: str = "seg-1") -> None:
        settings = self.container.settings
        join_segment(self.container.client("dynamodb"), settings.table_name, segment_id, customers)

    def execution(self, view: RunView) -> str:
        return execution_arn(self.arn, view.run.execution)

    def run(self, run_id: str, timeout: float = 25, **extra: Any) -> tuple[dict[str, Any], RunView]:
        view = self.control.start("camp-1", run_id=run_id, **extra)
        described = wait_for_execution(self.sfn, self.execution(view), timeout=timeout)
        return described, self.control.get("camp-1", run_id)


@pytest.fixture
def platform(
    make_container: Callable[..., Container],
    make_state_machines: Callable[[Container], LocalStateMachines],
    aws_session: Any,
) -> Platform:
    container = make_container()
    resources = container.local_resources  # type: ignore[attr-defined]
    machines = make_state_machines(container)
    ledger, records = DynamoRunLedger(container.table), DynamoRunRecords(container.table)
    actor = FakeActor(receipts=container.table)
    catalogue = FakeCatalogue(campaign("camp-1"))
    audience = SegmentMembers(container.table)
    # The composition root's workflow service, with the fake catalogue and actor in their places.
    container.campaign_runs = CampaignRuns(
        catalogue=catalogue,
        actor=actor,
        audience=audience,
        files=S3RunFiles(container.client("s3"), resources.campaign_runs_bucket),
        ledger=ledger,
        records=records,
        clock=container.clock,
        batch_size=CAMPAIGN_RUN.batch_size,
    )
    arn = machines.arn(CAMPAIGN_RUN)
    sfn = aws_session.client("stepfunctions")
    control = CampaignRunControl(
        catalogue=catalogue,
        actor=actor,
        audience=audience,
        records=records,
        ledger=ledger,
        starter=StepFunctionsRunStarter(sfn, arn),
        idempotency=container.idempotency,
        clock=container.clock,
    )
    return Platform(container, actor, catalogue, control, arn, sfn, ledger, records)


def customers(n: int) -> list[str]:
    return [f"cust-{i:05d}" for i in range(n)]


def summary_of(described: dict[str, Any]) -> dict[str, Any]:
    output = json.loads(described.get("output") or "{}")
    return dict(output)


def no_skips() -> dict[str, int]:
    return dict.fromkeys(SKIP_REASONS, 0)


def assert_each_once(platform: Platform, items: list[str]) -> None:
    given = {c.removeprefix("control:"): n for c, n in platform.actor.given.items()}
    assert set(given) == set(items)
    assert set(given.values()) == {1}


def test_a_run_over_1000_customers_with_a_10_percent_control_group_ends_with_exact_counts(
    platform: Platform,
) -> None:
    # Given a segment of 1,000 customers and a campaign holding 10% out
    items = customers(1000)
    platform.segment(items)
    control = sum(1 for c in items if in_control("camp-1", c, 10))
    # When a run executes (10 batches of 100)
    described, view = platform.run("run-1000")
    # Then it succeeded, every customer answered once, and the counts say so exactly
    assert described["status"] == "SUCCEEDED", described
    assert view.run.status == "succeeded"
    assert view.counts.as_dict() == {
        "audience": 1000,
        "control": control,
        "actioned": 1000 - control,
        "skipped": no_skips(),
        "failed": 0,
    }
    assert 50 < control < 150
    summary = platform.ledger.summary(RunRef("camp-1", "run-1000"))
    assert summary is not None
    assert (summary["batches"], summary["batches_failed"], summary["done"]) == (10, 0, 1000)
    assert_each_once(platform, items)
    assert view.run.finished_at is not None


def test_a_batch_failing_twice_then_succeeding_acts_on_each_customer_once(platform: Platform) -> None:
    # Given a batch whose first two attempts fail partway (at one customer of its 100)
    items = customers(300)
    platform.segment(items)
    attempts: Counter[str] = Counter()

    def fault(item: str) -> None:
        if item == "cust-00150":
            attempts[item] += 1
            if attempts[item] <= 2:
                raise ConnectionError("the table went away")

    platform.actor.fault = fault
    # When the run executes
    described, view = platform.run("run-flaky")
    # Then the Retry ran the batch three times, and each customer was given the campaign once
    assert described["status"] == "SUCCEEDED", described
    assert attempts["cust-00150"] == 3
    assert_each_once(platform, items)
    assert (view.run.status, view.counts.control + view.counts.actioned, view.counts.failed) == (
        "succeeded",
        300,
        0,
    )


def test_a_failed_batch_is_caught_and_counted_and_a_retry_completes_the_run_once(
    platform: Platform,
) -> None:
    # Given a batch that can never succeed (an error the Retry leaves to the Catch)
    items = customers(500)
    platform.segment(items)

    def fault(item: str) -> None:
        if item == "cust-00242":
            raise InvalidTaskInput("this customer cannot be actioned")

    platform.actor.fault = fault
    # When the run executes
    described, view = platform.run("run-caught")
    # Then the batch's failure is recorded, the others are done, and the run failed
    assert described["status"] == "FAILED", described
    assert described.get("error") == "CampaignRunFailed"
    outcomes = platform.ledger.batch_outcomes(RunRef("camp-1", "run-caught"))
    (caught,) = [o for o in outcomes if o.failed]  # the batch holding cust-00242 (shard order)
    assert caught.failed == 100
    assert caught.error is not None and caught.error.startswith("InvalidTaskInput")
    assert (view.run.status, view.counts.failed) == ("failed", 100)
    assert view.counts.control + view.counts.actioned == 400
    # When the cause is mended and the run retried (a new execution under the same run id)
    platform.actor.fault = None
    retried = platform.control.retry("camp-1", "run-caught")
    again = wait_for_execution(platform.sfn, platform.execution(retried), timeout=25)
    # Then it succeeds, and nobody was given anything twice
    assert again["status"] == "SUCCEEDED", again
    final = platform.control.get("camp-1", "run-caught")
    assert (final.run.status, final.run.attempt, final.counts.failed) == ("succeeded", 2, 0)
    assert final.counts.control + final.counts.actioned == 500
    assert_each_once(platform, items)


def test_a_run_cancelled_midway_and_retried_gives_nobody_anything_twice(platform: Platform) -> None:
    # Given a run whose batches stall once 250 customers are answered
    items = customers(1000)
    platform.segment(items)
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

    platform.actor.fault = fault
    first = platform.control.start("camp-1", run_id="run-stopped")
    assert reached.wait(20), "the run never reached its stall"
    # When it is cancelled midway (StopExecution) and retried while the stopped execution's
    # invocations are still in flight (they finish afterwards, racing the retry, as on AWS)
    cancelled = platform.control.cancel("camp-1", "run-stopped")
    assert cancelled.run.status == "cancelled"
    given_at_stop = sum(platform.actor.given.values())
    platform.actor.fault = None
    second = platform.control.retry("camp-1", "run-stopped")
    gate.set()
    again = wait_for_execution(platform.sfn, platform.execution(second), timeout=25)
    stopped = wait_for_execution(platform.sfn, platform.execution(first), timeout=10)
    # Then the first execution was aborted partway, the retry succeeded, and nobody got anything twice
    assert stopped["status"] == "ABORTED", stopped
    assert 0 < given_at_stop <= 250
    assert again["status"] == "SUCCEEDED", again
    assert_each_once(platform, items)
    final = platform.control.get("camp-1", "run-stopped")
    assert (final.run.status, final.counts.control + final.counts.actioned) == ("succeeded", 1000)


def test_an_execution_stopped_outside_the_api_reads_failed_and_is_retried(platform: Platform) -> None:
    # Given a run stalled midway, its execution stopped in the console (not through cancel)
    items = customers(300)
    platform.segment(items)
    gate, reached = threading.Event(), threading.Event()

    def fault(item: str) -> None:
        reached.set()
        gate.wait(20)

    platform.actor.fault = fault
    first = platform.control.start("camp-1", run_id="run-console")
    assert reached.wait(20), "the run never started its batches"
    platform.sfn.stop_execution(executionArn=platform.execution(first), error="Operator", cause="console")
    platform.actor.fault = None
    gate.set()  # the invocations in flight finish (moto ends the execution after them)
    assert wait_for_execution(platform.sfn, platform.execution(first), timeout=20)["status"] == "ABORTED"
    # When the run is read, then it failed (Finish never ran), and a retry completes it once
    failed = platform.control.get("camp-1", "run-console")
    assert (failed.run.status, failed.run.error) == (
        "failed",
        "the execution ended ABORTED before it finished",
    )
    second = platform.control.retry("camp-1", "run-console")
    assert wait_for_execution(platform.sfn, platform.execution(second), timeout=25)["status"] == "SUCCEEDED"
    final = platform.control.get("camp-1", "run-console")
    assert (final.run.status, final.counts.control + final.counts.actioned) == ("succeeded", 300)
    assert_each_once(platform, items)


def test_starting_the_same_run_id_twice_starts_one_execution(platform: Platform) -> None:
    platform.segment(customers(50))
    described, _ = platform.run("run-once")
    again = platform.control.start("camp-1", run_id="run-once")
    executions = platform.sfn.list_executions(stateMachineArn=platform.arn)["executions"]
    assert [e["name"] for e in executions] == [again.run.execution]
    assert (again.run.status, described["status"]) == ("succeeded", "SUCCEEDED")


def test_a_run_of_a_campaign_deleted_meanwhile_fails_with_its_reason(platform: Platform) -> None:
    # Given a run started while the campaign existed, deleted before Prepare could read it (the
    # control reads its own catalogue, which still has it; the workflow's has forgotten it)
    platform.segment(customers(10))
    platform.catalogue.campaigns.clear()
    control = CampaignRunControl(
        catalogue=FakeCatalogue(campaign("camp-1")),
        actor=platform.actor,
        audience=SegmentMembers(platform.container.table),
        records=platform.records,
        ledger=platform.ledger,
        starter=StepFunctionsRunStarter(platform.sfn, platform.arn),
        idempotency=platform.container.idempotency,
        clock=platform.container.clock,
    )
    view = control.start("camp-1", run_id="run-orphan")
    described = wait_for_execution(platform.sfn, platform.execution(view), timeout=25)
    # Then Prepare's failure is caught, Finish records it, and the run failed at once (not retried)
    assert described["status"] == "FAILED"
    run = platform.records.get("camp-1", "run-orphan")
    assert run is not None
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith("InvalidTaskInput")
    assert platform.actor.given == Counter()


def test_an_empty_segment_is_a_run_of_nothing_that_succeeds(platform: Platform) -> None:
    described, view = platform.run("run-empty")
    assert described["status"] == "SUCCEEDED", described
    assert view.counts.as_dict() == {
        "audience": 0,
        "control": 0,
        "actioned": 0,
        "skipped": no_skips(),
        "failed": 0,
    }


def test_an_execution_without_ids_fails_at_once_with_the_reason(platform: Platform) -> None:
    # Given an execution input with no campaign id
    arn = platform.sfn.start_execution(
        stateMachineArn=platform.arn, name="no-ids", input=json.dumps({"run_id": "r-1"})
    )["executionArn"]
    # When it runs, then Prepare and Finish both refuse it, neither is retried, and the run fails
    described = wait_for_execution(platform.sfn, arn, timeout=10)
    assert (described["status"], described.get("error")) == ("FAILED", "InvalidTaskInput")
    assert platform.actor.given == Counter()


# ---- scheduled and event-triggered executions ----------------------------------------------------


def test_a_one_time_schedule_in_a_time_zone_starts_the_run_when_the_clock_reaches_it(
    platform: Platform, aws_session: Any
) -> None:
    # Given a one-time schedule (Amsterdam time) starting an execution, stored in moto's Scheduler
    platform.segment(customers(120))
    execution_input = {"campaign_id": "camp-1", "run_id": "run-scheduled"}
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
    # An execution started without the run control still leaves its run's record, counted
    run = platform.records.get("camp-1", "run-scheduled")
    assert run is not None and (run.status, run.counts and run.counts.audience) == ("succeeded", 120)
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
    platform.segment(customers(50))
    detail = {"campaign_id": "camp-1", "run_id": "run-triggered"}
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
