"""Schedules stored in moto's EventBridge Scheduler, fired by the local runner on a controlled clock,
and a bus rule with a function target delivered through the local tap.

Given a daily 09:00 Europe/Amsterdam schedule sending to a queue, when the clock walks hour by hour
across the spring change (2027-03-28), then it fires once a day at 09:00 wall time (08:00Z, then
07:00Z) with Scheduler's context attributes filled in, and a tick repeated at the same moment
fires nothing again.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.adapters.campaign_definitions import campaign_item
from loyalty.adapters.dynamo import serialize
from loyalty.domain.campaigns import Campaign
from loyalty.domain.events import SOURCE
from loyalty.resources import CAMPAIGN_RUN, BusTriggerDef
from loyalty_local.bus_triggers import create_trigger, trigger_poller
from loyalty_local.runtime import LocalRuntime
from loyalty_local.scheduler import ScheduleRunner
from loyalty_local.stepfunctions import wait_for_execution
from tests.campaign_fakes import join_segment
from tests.conftest import FixedClock

pytestmark = pytest.mark.xdist_group("scheduler")


@pytest.fixture
def queue(aws_session: Any) -> tuple[str, str]:
    sqs = aws_session.client("sqs")
    url = sqs.create_queue(QueueName=f"sched-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def received(aws_session: Any, url: str) -> list[dict[str, Any]]:
    sqs = aws_session.client("sqs")
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_a_cron_schedule_fires_at_its_wall_clock_time_across_the_spring_change(
    aws_session: Any, queue: tuple[str, str]
) -> None:
    url, arn = queue
    name = f"daily-{uuid.uuid4().hex[:8]}"
    scheduler = aws_session.client("scheduler")
    scheduler.create_schedule(
        Name=name,
        ScheduleExpression="cron(0 9 * * ? *)",
        ScheduleExpressionTimezone="Europe/Amsterdam",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": arn,
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": json.dumps({"job": "daily", "scheduled_time": "<aws.scheduler.scheduled-time>"}),
        },
    )
    clock = FixedClock(datetime(2027, 3, 26, 12, 0, tzinfo=UTC))
    runner = ScheduleRunner(aws_session, clock=clock.now)
    fired = []
    while clock.now() < datetime(2027, 3, 30, 12, 0, tzinfo=UTC):
        fired += [f.scheduled for f in runner.tick() if f.name == name]
        assert not [f for f in runner.tick() if f.name == name]  # the same moment again: nothing
        clock.advance(hours=1)
    assert fired == [
        datetime(2027, 3, 27, 8, 0, tzinfo=UTC),
        datetime(2027, 3, 28, 7, 0, tzinfo=UTC),
        datetime(2027, 3, 29, 7, 0, tzinfo=UTC),
        datetime(2027, 3, 30, 7, 0, tzinfo=UTC),
    ]
    bodies = received(aws_session, url)
    assert sorted(b["scheduled_time"] for b in bodies) == [
        "2027-03-27T08:00:00Z",
        "2027-03-28T07:00:00Z",
        "2027-03-29T07:00:00Z",
        "2027-03-30T07:00:00Z",
    ]
    scheduler.delete_schedule(Name=name)


def test_a_disabled_schedule_and_one_outside_its_dates_do_not_fire(
    aws_session: Any, queue: tuple[str, str]
) -> None:
    _, arn = queue
    scheduler = aws_session.client("scheduler")
    target = {"Arn": arn, "RoleArn": "arn:aws:iam::123456789012:role/scheduler", "Input": "{}"}
    disabled, ended = f"off-{uuid.uuid4().hex[:8]}", f"ended-{uuid.uuid4().hex[:8]}"
    scheduler.create_schedule(
        Name=disabled,
        ScheduleExpression="rate(1 minute)",
        State="DISABLED",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    scheduler.create_schedule(
        Name=ended,
        ScheduleExpression="rate(1 hour)",
        EndDate=datetime(2027, 1, 1, 2, 30, tzinfo=UTC),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    clock = FixedClock(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    runner = ScheduleRunner(aws_session, clock=clock.now)
    fired = []
    for _ in range(6):
        fired += [f for f in runner.tick() if f.name in (disabled, ended)]
        clock.advance(hours=1)
    assert [(f.name, f.scheduled) for f in fired] == [
        (ended, datetime(2027, 1, 1, 1, 0, tzinfo=UTC)),
        (ended, datetime(2027, 1, 1, 2, 0, tzinfo=UTC)),
    ]
    for name in (disabled, ended):
        scheduler.delete_schedule(Name=name)


def test_a_bus_rule_with_a_function_target_reaches_the_handler_through_the_tap(
    aws_session: Any, make_container: Any
) -> None:
    container = make_container()
    settings = container.settings
    trigger = BusTriggerDef(
        logical_id="Enrolled",
        local_name="enrolled-to-fn",
        detail_types=("CustomerEnrolled",),
        function="probe",
    )
    seen: list[dict[str, Any]] = []

    def handler_for(function: str) -> Any:
        assert function == "probe"
        return lambda event, context: seen.append(event)

    tap = create_trigger(aws_session, trigger, settings.event_bus_name, prefix=f"{settings.table_name}-")
    poller = trigger_poller(aws_session, tap, handler_for=handler_for)
    put = aws_session.client("events").put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps({"customer_id": "c-1"}),
                "EventBusName": settings.event_bus_name,
            }
            for detail_type in ("CustomerEnrolled", "TierChanged")
        ]
    )
    assert put["FailedEntryCount"] == 0
    poller.drain(idle_rounds=2, max_seconds=10)
    # Only the matching event, whole, as EventBridge hands it to Lambda.
    assert [(e["detail-type"], e["detail"]) for e in seen] == [("CustomerEnrolled", {"customer_id": "c-1"})]
    assert seen[0]["id"] == put["Entries"][0]["EventId"]
    assert timedelta(0) <= datetime.now(UTC) - datetime.fromisoformat(seen[0]["time"].replace("Z", "+00:00"))


def test_the_local_runtime_runs_the_synthesised_workflows(emulators: Any, aws_session: Any) -> None:
    # Given the runtime `make run` starts, with its workflows on (the same emulators, a table of its own)
    ddb, moto = emulators
    runtime = LocalRuntime(
        table_name=f"wf-{uuid.uuid4().hex[:10]}", ddb=ddb, moto=moto, background_jobs=False, workflows=True
    )
    runtime.start(with_gateway=False)
    try:
        assert runtime.state_machines is not None and runtime.resources is not None
        table = runtime.resources.table_name
        dynamodb = aws_session.client("dynamodb")
        # A manual campaign over a segment of three ids that name nobody (each is skipped as gone)
        now = datetime.now(UTC)
        smoke = Campaign.model_validate(
            {
                "campaign_id": "c",
                "name": "smoke",
                "trigger": {"type": "manual"},
                "audience": {"segment_id": "s"},
                "actions": [{"type": "points", "points": 1}],
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
        )
        dynamodb.put_item(TableName=table, Item=serialize(campaign_item(smoke)))
        join_segment(dynamodb, table, "s", ["c-1", "c-2", "c-3"])
        sfn = aws_session.client("stepfunctions")
        # When a run is started on its campaign run state machine
        arn = sfn.start_execution(
            stateMachineArn=runtime.state_machines.arn(CAMPAIGN_RUN),
            name="smoke",
            input=json.dumps({"campaign_id": "c", "run_id": "r"}),
        )["executionArn"]
        described = wait_for_execution(sfn, arn, timeout=25)
        # Then the tasks ran in-process against the runtime's own table and bucket
        assert described["status"] == "SUCCEEDED", described
        counts = json.loads(described["output"])["counts"]
        assert counts["audience"] == 3 and counts["skipped"]["gone"] == 3, counts
        assert runtime.schedule_runner is not None
    finally:
        runtime.stop()


def test_canary_moto_still_cannot_deliver_a_bus_rule_to_a_function(aws_session: Any) -> None:
    # Why loyalty_local.bus_triggers taps rules into queues: moto fails put_events outright when a
    # rule targets a Lambda function. When this starts passing delivery, the tap can go.
    from botocore.config import Config
    from botocore.exceptions import ClientError

    events = aws_session.client("events", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    bus = f"canary-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    events.put_rule(Name="to-fn", EventBusName=bus, EventPattern=json.dumps({"source": ["canary"]}))
    events.put_targets(
        Rule="to-fn",
        EventBusName=bus,
        Targets=[{"Id": "fn", "Arn": "arn:aws:lambda:eu-west-1:123456789012:function:nowhere"}],
    )
    try:
        with pytest.raises(ClientError):
            events.put_events(
                Entries=[{"Source": "canary", "DetailType": "x", "Detail": "{}", "EventBusName": bus}]
            )
    finally:
        events.remove_targets(Rule="to-fn", EventBusName=bus, Ids=["fn"])
        events.delete_rule(Name="to-fn", EventBusName=bus)
        events.delete_event_bus(Name=bus)
