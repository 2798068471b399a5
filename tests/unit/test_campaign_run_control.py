"""Starting, reading, cancelling and retrying campaign runs, and the dry run, over in-memory ports
(services.campaign_run_control and services.campaign_runs; the ASL itself runs in
tests/integration/test_campaign_runs.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from loyalty.domain.campaign_runs import (
    BatchOutcome,
    CampaignRun,
    RunRef,
    RunStatus,
    RunSummary,
    execution_name,
)
from loyalty.domain.campaigns import SKIP_REASONS, in_control
from loyalty.domain.errors import CampaignNotFound, CampaignNotRunnable, CampaignRunNotFound
from loyalty.services.campaign_run_control import CampaignRunControl
from loyalty.services.campaign_runs import CampaignRuns
from tests.campaign_fakes import FakeActor, FakeCatalogue, campaign


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


class Records:
    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], CampaignRun] = {}

    def create(self, run: CampaignRun, extra: Any = ()) -> CampaignRun | None:
        key = (run.campaign_id, run.run_id)
        if key in self.runs:
            return self.runs[key]
        self.runs[key] = run
        return None

    def get(self, campaign_id: str, run_id: str) -> CampaignRun | None:
        return self.runs.get((campaign_id, run_id))

    def list(self, campaign_id: str, limit: int, cursor: str | None) -> tuple[list[CampaignRun], str | None]:
        runs = sorted((r for (c, _), r in self.runs.items() if c == campaign_id), key=lambda r: r.run_id)
        return runs[::-1][:limit], None

    def _replace(self, run: CampaignRun, **changes: Any) -> None:
        self.runs[(run.campaign_id, run.run_id)] = CampaignRun(**{**run.__dict__, **changes})

    def restart(self, run: CampaignRun, attempt: int, execution: str, started_at: str) -> bool:
        now = self.runs[(run.campaign_id, run.run_id)]
        if (now.status, now.attempt) != (run.status, run.attempt):
            return False
        self._replace(
            run,
            status="running",
            attempt=attempt,
            execution=execution,
            started_at=started_at,
            finished_at=None,
            counts=None,
            error=None,
        )
        return True

    def fail(self, run: CampaignRun, error: str, finished_at: str) -> bool:
        now = self.runs[(run.campaign_id, run.run_id)]
        if (now.status, now.attempt) != ("running", run.attempt):
            return False
        self._replace(now, status="failed", finished_at=finished_at, error=error)
        return True

    def cancel(self, run: CampaignRun, finished_at: str) -> bool:
        now = self.runs[(run.campaign_id, run.run_id)]
        if (now.status, now.attempt) != ("running", run.attempt):
            return False
        self._replace(now, status="cancelled", finished_at=finished_at)
        return True

    def set_audience(self, run: RunRef, audience: int) -> None:
        if (found := self.runs.get((run.campaign_id, run.run_id))) is not None:
            self._replace(found, audience=audience)

    def finish(self, run: RunRef, summary: RunSummary, finished_at: str) -> RunStatus:
        found = self.runs[(run.campaign_id, run.run_id)]
        if found.status != "running":
            return found.status
        status: RunStatus = "succeeded" if summary.status == "succeeded" else "failed"
        self._replace(
            found, status=status, finished_at=finished_at, counts=summary.counts, error=summary.error
        )
        return status


class Ledger:
    def __init__(self) -> None:
        self.outcomes: dict[tuple[RunRef, int], BatchOutcome] = {}

    def save_batch(self, run: RunRef, outcome: BatchOutcome) -> None:
        self.outcomes[(run, outcome.batch)] = outcome

    def batch_outcome(self, run: RunRef, batch: int) -> BatchOutcome | None:
        return self.outcomes.get((run, batch))

    def batch_outcomes(self, run: RunRef) -> list[BatchOutcome]:
        return [o for (r, _), o in sorted(self.outcomes.items(), key=lambda kv: kv[0][1]) if r == run]

    def save_summary(self, run: RunRef, summary: RunSummary, finished_at: str) -> None:
        pass


class Files:
    bucket = "runs-bucket"

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def put_json(self, key: str, value: Any) -> None:
        self.files[key] = json.dumps(value)

    def get_json(self, key: str) -> Any:
        return json.loads(self.files[key])

    def find_json(self, key: str) -> Any | None:
        return json.loads(self.files[key]) if key in self.files else None


class Audience:
    def __init__(self, members: list[str]) -> None:
        self.list = members

    def members(self, segment_id: str) -> list[str]:
        assert segment_id == "seg-1"
        return list(self.list)


class Starter:
    """Runs the workflow's tasks in order when started (as the state machine would), unless held."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.stopped: list[str] = []
        self.workflow: CampaignRuns | None = None
        self.hold = False
        self.ended: dict[str, str] = {}  # execution name -> its status, when not RUNNING

    def start(self, name: str, execution_input: Mapping[str, Any]) -> None:
        if name in [n for n, _ in self.started]:
            return
        self.started.append((name, dict(execution_input)))
        if not self.hold and self.workflow is not None:
            run = RunRef(str(execution_input["campaign_id"]), str(execution_input["run_id"]))
            prepared = self.workflow.prepare(run, execution_input.get("batch_size"))
            manifest = self.workflow._files.get_json(prepared.manifest_key)
            for entry in manifest:
                self.workflow.apply_batch(run, entry["batch"], entry["key"])
            self.workflow.finish(run, prepared, None)

    def stop(self, name: str, cause: str) -> None:
        self.stopped.append(name)

    def status(self, name: str) -> str | None:
        if name not in [n for n, _ in self.started]:
            return None
        return self.ended.get(name, "RUNNING")


class World:
    def __init__(self, members: int = 200, **campaign_fields: Any) -> None:
        self.customers = [f"cust-{i:04d}" for i in range(members)]
        self.catalogue = FakeCatalogue(campaign(**campaign_fields))
        self.actor = FakeActor()
        self.records, self.ledger, self.files = Records(), Ledger(), Files()
        self.audience = Audience(self.customers)
        self.starter = Starter()
        self.clock = Clock()
        self.starter.workflow = CampaignRuns(
            catalogue=self.catalogue,
            actor=self.actor,
            audience=self.audience,
            files=self.files,
            ledger=self.ledger,
            records=self.records,
            clock=self.clock,
            batch_size=50,
        )
        self.control = CampaignRunControl(
            catalogue=self.catalogue,
            actor=self.actor,
            audience=self.audience,
            records=self.records,
            ledger=self.ledger,
            starter=self.starter,
            idempotency=NoIdempotencyKeys(),  # type: ignore[arg-type]
            clock=self.clock,
        )


class NoIdempotencyKeys:
    """The idempotency store when no request carries a key (the HTTP tests cover keys)."""

    def key(self, scope: str, key: str, forever: bool = False) -> tuple[str, str]:
        raise AssertionError("no Idempotency-Key in these tests")

    def find(self, keys: list[Any]) -> dict[Any, Any]:
        assert not keys
        return {}


def held_out(customers: list[str], campaign_id: str = "camp-1", percent: int = 10) -> int:
    return sum(1 for c in customers if in_control(campaign_id, c, percent))


def test_a_run_starts_one_execution_and_finishes_with_exact_counts() -> None:
    world = World()
    view = world.control.start("camp-1", run_id="r-1")
    assert (view.run_id, len(world.starter.started)) == ("r-1", 1)
    name, execution_input = world.starter.started[0]
    assert name == execution_name("camp-1", "r-1", 1)
    assert execution_input == {"campaign_id": "camp-1", "run_id": "r-1"}
    done = world.control.get("camp-1", "r-1")
    control = held_out(world.customers)
    assert done.run.status == "succeeded"
    assert done.counts.as_dict() == {
        "audience": 200,
        "control": control,
        "actioned": 200 - control,
        "skipped": dict.fromkeys(SKIP_REASONS, 0),
        "failed": 0,
    }
    assert 0 < control < 200


def test_starting_the_same_run_id_twice_starts_nothing_twice() -> None:
    world = World()
    world.control.start("camp-1", run_id="r-1")
    again = world.control.start("camp-1", run_id="r-1")
    assert len(world.starter.started) == 1
    assert again.run.status == "succeeded"
    assert sum(world.actor.given.values()) == 200


def test_generated_run_ids_name_their_start_time() -> None:
    world = World()
    view = world.control.start("camp-1")
    assert view.run_id.startswith("run-20261208T100000Z-")


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"status": "draft"}, "draft"),
        ({"status": "paused"}, "paused"),
        ({"trigger": {"type": "event", "event": "CustomerEnrolled"}}, "event-triggered"),
        ({"audience": {"segment_id": None}}, "no audience segment"),
    ],
)
def test_only_an_active_manual_or_scheduled_campaign_with_a_segment_runs(
    fields: dict[str, Any], why: str
) -> None:
    world = World(**fields)
    with pytest.raises(CampaignNotRunnable, match=why):
        world.control.start("camp-1")
    assert world.starter.started == []
    assert world.records.runs == {}


def test_unknown_campaigns_and_runs_are_not_found() -> None:
    world = World()
    with pytest.raises(CampaignNotFound):
        world.control.start("nope")
    with pytest.raises(CampaignRunNotFound):
        world.control.get("camp-1", "nope")
    with pytest.raises(CampaignNotFound):
        world.control.list("nope", 10, None)


def test_progress_while_running_is_the_sum_of_the_batches_so_far() -> None:
    world = World()
    world.starter.hold = True
    world.control.start("camp-1", run_id="r-1")
    run = RunRef("camp-1", "r-1")
    workflow = world.starter.workflow
    assert workflow is not None
    prepared = workflow.prepare(run)
    workflow.apply_batch(run, 0, "runs/camp-1/r-1/batches/000000.json")
    workflow.apply_batch(run, 1, "runs/camp-1/r-1/batches/000001.json")
    view = world.control.get("camp-1", "r-1")
    first_hundred = world.customers[:100]
    assert view.run.status == "running"
    assert (view.counts.audience, view.counts.control, view.counts.actioned) == (
        200,
        held_out(first_hundred),
        100 - held_out(first_hundred),
    )
    # A batch run again (a retry) is counted once: each batch's latest outcome.
    workflow.apply_batch(run, 1, "runs/camp-1/r-1/batches/000001.json")
    assert world.control.get("camp-1", "r-1").counts == view.counts
    assert prepared.batches == 4


def test_a_cancelled_run_stops_its_execution_and_a_retry_completes_it_once() -> None:
    world = World()
    world.starter.hold = True
    world.control.start("camp-1", run_id="r-1")
    run = RunRef("camp-1", "r-1")
    workflow = world.starter.workflow
    assert workflow is not None
    workflow.prepare(run)
    workflow.apply_batch(run, 0, "runs/camp-1/r-1/batches/000000.json")
    cancelled = world.control.cancel("camp-1", "r-1")
    assert cancelled.run.status == "cancelled"
    assert world.starter.stopped == [execution_name("camp-1", "r-1", 1)]
    with pytest.raises(CampaignNotRunnable, match="cancelled"):
        world.control.cancel("camp-1", "r-1")
    # Retried: a new execution under the same run id, nobody given anything twice
    world.starter.hold = False
    retried = world.control.retry("camp-1", "r-1")
    assert [n for n, _ in world.starter.started] == [
        execution_name("camp-1", "r-1", 1),
        execution_name("camp-1", "r-1", 2),
    ]
    assert retried.run.attempt == 2
    final = world.control.get("camp-1", "r-1")
    assert final.run.status == "succeeded"
    assert final.counts.control + final.counts.actioned == 200
    assert set(world.actor.given.values()) == {1}
    assert len(world.actor.given) == 200
    with pytest.raises(CampaignNotRunnable, match="succeeded"):
        world.control.retry("camp-1", "r-1")


def test_a_run_whose_batch_failed_is_failed_and_its_retry_succeeds() -> None:
    world = World()
    broken = {"on": True}

    def fault(customer: str) -> None:
        if broken["on"] and customer == "cust-0120":
            raise ConnectionError("the table went away")

    world.actor.fault = fault
    world.starter.hold = True
    world.control.start("camp-1", run_id="r-1")
    run = RunRef("camp-1", "r-1")
    workflow = world.starter.workflow
    assert workflow is not None
    prepared = workflow.prepare(run)
    for n in range(4):
        key = f"runs/camp-1/r-1/batches/{n:06d}.json"
        try:
            workflow.apply_batch(run, n, key)
        except ConnectionError:
            workflow.record_failure(run, n, 50, "ConnectionError: the table went away")
    summary = workflow.finish(run, prepared, None)
    assert summary.status == "failed"
    failed = world.control.get("camp-1", "r-1")
    assert (failed.run.status, failed.counts.failed) == ("failed", 50)
    broken["on"] = False
    world.starter.hold = False
    world.control.retry("camp-1", "r-1")
    final = world.control.get("camp-1", "r-1")
    assert (final.run.status, final.counts.failed, final.counts.control + final.counts.actioned) == (
        "succeeded",
        0,
        200,
    )
    assert set(world.actor.given.values()) == {1}


def test_the_dry_run_has_the_contracts_shape_and_equals_what_the_run_does() -> None:
    world = World(limits={"max_recipients": 100})
    world.actor.skips = {"cust-0003": "no_consent", "cust-0007": "suppressed"}
    dry = world.control.dry_run("camp-1")
    assert sorted(dry.excluded) == sorted(SKIP_REASONS)
    assert dry.audience == 200
    assert dry.excluded["no_consent"] == 1 and dry.excluded["suppressed"] == 1
    assert dry.excluded["over_budget"] == 0
    assert dry.control + dry.eligible + sum(dry.excluded.values()) == 200
    assert dry.eligible == 100
    assert dry.cost.coupons == 100 and dry.cost.messages == {"email": 100, "sms": 0, "mail": 0, "api": 0}
    assert dry.cost.amount == Decimal("0.00")
    assert len(dry.sample) == 20
    assert world.actor.given == {}  # nothing written
    world.control.start("camp-1", run_id="r-1")
    ran = world.control.get("camp-1", "r-1").counts
    assert (ran.control, ran.actioned, dict(ran.skipped)) == (
        dry.control,
        dry.eligible,
        {k: v for k, v in dry.excluded.items() if v},
    )


def test_a_dry_run_over_a_large_segment_without_limits_answers_every_customer_in_order() -> None:
    # 1,000 members: evaluated in chunks side by side (no limit to consume in order)
    world = World(members=1000)
    world.actor.skips = {"cust-0999": "gone", "cust-0500": "no_consent"}
    dry = world.control.dry_run("camp-1")
    control = held_out(world.customers)
    assert (dry.audience, dry.control, dry.eligible) == (1000, control, 998 - control)
    assert (dry.excluded["gone"], dry.excluded["no_consent"]) == (1, 1)
    assert [r.customer_id for r in dry.sample] == world.customers[:20]


def test_a_run_whose_execution_ended_without_its_finish_reads_failed_and_can_be_retried() -> None:
    world = World()
    world.starter.hold = True
    view = world.control.start("camp-1", run_id="r-1")
    assert world.control.get("camp-1", "r-1").run.status == "running"
    # The execution timed out (or was stopped outside the API): Finish never ran
    world.starter.ended[view.run.execution] = "TIMED_OUT"
    failed = world.control.get("camp-1", "r-1")
    assert (failed.run.status, failed.run.error) == (
        "failed",
        "the execution ended TIMED_OUT before it finished",
    )
    world.starter.hold = False
    world.control.retry("camp-1", "r-1")
    assert world.control.get("camp-1", "r-1").run.status == "succeeded"


def test_a_run_whose_execution_never_started_reads_failed_after_a_minute() -> None:
    world = World()
    broken = Starter()

    def refuse(name: str, execution_input: Mapping[str, Any]) -> None:
        raise ConnectionError("Step Functions went away")

    broken.start = refuse  # type: ignore[method-assign]
    world.control._starter = broken
    with pytest.raises(ConnectionError):
        world.control.start("camp-1", run_id="r-1")
    world.control._starter = world.starter
    assert world.control.get("camp-1", "r-1").run.status == "running"  # it may yet start
    world.clock.at += timedelta(minutes=1)
    failed = world.control.get("camp-1", "r-1")
    assert (failed.run.status, failed.run.error) == ("failed", "the execution never started")
    world.control.retry("camp-1", "r-1")
    assert world.control.get("camp-1", "r-1").run.status == "succeeded"
