"""Campaign runs with the real CampaignActor, executed by the synthesised state machine (moto, our
handlers in-process): exact counts over 1,000 enrolled customers with a 10% control group, a coupon
each exactly once through retries, a cancel and a retry, a points budget spent exactly under
concurrent batches, and a dry run that says what the run then does."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from loyalty.adapters.campaign_actions import CampaignActionRepository
from loyalty.adapters.campaign_run_starter import StepFunctionsRunStarter, execution_arn
from loyalty.adapters.campaign_runs import DynamoRunLedger, DynamoRunRecords, S3RunFiles, SegmentMembers
from loyalty.bootstrap import Container
from loyalty.domain.campaigns import SKIP_REASONS, ActResult, Campaign, Occasion, in_control
from loyalty.domain.customers import Consents
from loyalty.resources import CAMPAIGN_RUN
from loyalty.services.campaign_ports import CampaignActor
from loyalty.services.campaign_run_control import CampaignRunControl, RunView
from loyalty.services.campaign_runs import CampaignRuns
from loyalty_local.stepfunctions import LocalStateMachines, wait_for_execution
from tests.campaign_fakes import FakeCatalogue, join_segment
from tests.integration.test_campaign_actions import campaign, campaign_ledger, coupons, enrol, offer, template

pytestmark = pytest.mark.xdist_group("campaign-runs")


class FaultyActor:
    """The real actor, with a fault after (or before) a customer's act: a batch that dies midway."""

    def __init__(self, actor: CampaignActor) -> None:
        self._actor = actor
        self.before: Callable[[str], None] | None = None
        self.after: Callable[[str], None] | None = None

    def act(self, campaign: Campaign, occasion: Occasion, customer_id: str) -> ActResult:
        if self.before is not None:
            self.before(customer_id)
        result = self._actor.act(campaign, occasion, customer_id)
        if self.after is not None:
            self.after(customer_id)
        return result

    def evaluate(self, campaign: Campaign, occasion: Occasion, customer_ids: Any) -> list[ActResult]:
        return self._actor.evaluate(campaign, occasion, customer_ids)


@dataclass
class Runs:
    container: Container
    catalogue: FakeCatalogue
    actor: FaultyActor
    control: CampaignRunControl
    arn: str
    sfn: Any

    def segment(self, customers: list[str], segment_id: str = "seg-run") -> None:
        join_segment(self.container.client("dynamodb"), self.container.table.name, segment_id, customers)

    def define(self, actions: list[dict[str, Any]], **fields: Any) -> Campaign:
        # A fixed id: its control group (a hash of campaign and customer ids) is the same every time.
        fields.setdefault("campaign_id", "camp-run")
        camp = campaign(self.container, actions, audience={"segment_id": "seg-run"}, **fields)
        self.catalogue.campaigns[camp.campaign_id] = camp
        return camp

    def wait(self, view: RunView, timeout: float = 60) -> dict[str, Any]:
        return wait_for_execution(self.sfn, execution_arn(self.arn, view.run.execution), timeout=timeout)

    def run(self, camp: Campaign, run_id: str, **extra: Any) -> RunView:
        view = self.control.start(camp.campaign_id, run_id=run_id, **extra)
        described = self.wait(view)
        assert described["status"] in ("SUCCEEDED", "FAILED"), described
        return self.control.get(camp.campaign_id, run_id)


@pytest.fixture
def runs(
    make_container: Callable[..., Container],
    make_state_machines: Callable[[Container], LocalStateMachines],
    aws_session: Any,
) -> Runs:
    container = make_container()
    resources = container.local_resources  # type: ignore[attr-defined]
    machines = make_state_machines(container)
    catalogue = FakeCatalogue()
    actor = FaultyActor(container.campaign_actor)
    ledger, records = DynamoRunLedger(container.table), DynamoRunRecords(container.table)
    audience = SegmentMembers(container.table)
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
    return Runs(container, catalogue, actor, control, arn, sfn)


def coupons_by_customer(runs: Runs, customers: list[str], campaign_id: str) -> Counter[int]:
    """How many customers hold how many of this campaign's coupons."""
    return Counter(
        sum(1 for c in coupons(runs.container, cid) if c.campaign_id == campaign_id) for cid in customers
    )


def skipped(**reasons: int) -> dict[str, int]:
    return {reason: reasons.get(reason, 0) for reason in SKIP_REASONS}


def test_a_run_of_1000_customers_with_a_10_percent_control_group_succeeds_with_exact_counts(
    runs: Runs,
) -> None:
    # Given 1,000 enrolled customers in the campaign's segment and a coupon campaign holding 10% out
    customers = [enrol(runs.container) for _ in range(1000)]
    runs.segment(customers)
    camp = runs.define([{"type": "coupon", "offer_id": offer(runs.container)}], control_group={"percent": 10})
    control = sum(1 for cid in customers if in_control(camp.campaign_id, cid, 10))
    # When a run executes (10 batches of 100, in parallel)
    view = runs.run(camp, "r-1000")
    # Then it succeeded with exact counts, and each actioned customer holds one coupon, control none
    assert view.run.status == "succeeded", view
    assert view.counts.as_dict() == {
        "audience": 1000,
        "control": control,
        "actioned": 1000 - control,
        "skipped": skipped(),
        "failed": 0,
    }
    assert coupons_by_customer(runs, customers, camp.campaign_id) == {1: 1000 - control, 0: control}


def test_a_batch_failing_twice_then_succeeding_gives_each_customer_one_coupon(runs: Runs) -> None:
    # Given a batch that dies twice right after a customer got their coupon (before its outcome is saved)
    customers = [enrol(runs.container) for _ in range(150)]
    runs.segment(customers)
    camp = runs.define([{"type": "coupon", "offer_id": offer(runs.container)}])
    victim = customers[60]
    failures: Counter[str] = Counter()

    def after(cid: str) -> None:
        if cid == victim and failures[cid] < 2:
            failures[cid] += 1
            raise ConnectionError("the function timed out")

    runs.actor.after = after
    # When the run executes (the Retry backs off and runs the batch again)
    view = runs.run(camp, "r-flaky")
    # Then it succeeded, and everyone holds exactly one coupon
    assert failures[victim] == 2
    assert (view.run.status, view.counts.actioned, view.counts.failed) == ("succeeded", 150, 0)
    assert coupons_by_customer(runs, customers, camp.campaign_id) == {1: 150}


def test_a_run_cancelled_midway_and_retried_gives_nobody_a_second_coupon(runs: Runs) -> None:
    # Given a run whose batches stall once 120 customers are actioned
    customers = [enrol(runs.container) for _ in range(300)]
    runs.segment(customers)
    camp = runs.define([{"type": "coupon", "offer_id": offer(runs.container)}])
    gate, reached = threading.Event(), threading.Event()
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def before(cid: str) -> None:
        with lock:
            seen["n"] += 1
            stall = seen["n"] > 120
        if stall:
            reached.set()
            gate.wait(30)

    runs.actor.before = before
    first = runs.control.start(camp.campaign_id, run_id="r-stop", batch_size=50)
    assert reached.wait(30), "the run never reached its stall"
    # When it is cancelled, then retried while the stopped execution's invocations still finish
    assert runs.control.cancel(camp.campaign_id, "r-stop").run.status == "cancelled"
    runs.actor.before = None
    second = runs.control.retry(camp.campaign_id, "r-stop", batch_size=50)
    gate.set()
    assert runs.wait(second)["status"] == "SUCCEEDED"
    assert runs.wait(first)["status"] == "ABORTED"
    # Then everyone holds exactly one coupon, and the run's counts say so
    final = runs.control.get(camp.campaign_id, "r-stop")
    assert (final.run.status, final.run.attempt, final.counts.actioned) == ("succeeded", 2, 300)
    assert coupons_by_customer(runs, customers, camp.campaign_id) == {1: 300}


def test_a_points_budget_is_spent_exactly_by_concurrent_batches(runs: Runs) -> None:
    # Given 200 customers, 10 points each, a budget of 1,230 points and batches of 10 (20 at once)
    customers = [enrol(runs.container) for _ in range(200)]
    runs.segment(customers)
    camp = runs.define([{"type": "points", "points": 10}], limits={"budget": {"points": 1230}})
    # When the run executes
    view = runs.run(camp, "r-budget", batch_size=10)
    # Then 123 customers got 10 points, the other 77 were skipped over budget, and the budget is spent
    assert view.run.status == "succeeded"
    assert (view.counts.actioned, view.counts.skipped["over_budget"]) == (123, 77)
    spent = CampaignActionRepository(runs.container.table).spent(camp.campaign_id)
    assert spent.points == 1230
    ledgers = [campaign_ledger(runs.container, cid, camp.campaign_id) for cid in customers]
    assert sum(map(sum, ledgers)) == 1230
    assert Counter(len(lg) for lg in ledgers) == {1: 123, 0: 77}


def test_the_dry_run_says_what_the_run_then_does(runs: Runs) -> None:
    # Given customers some of whom have not consented to email, a coupon-and-email campaign with a
    # control group and a recipient limit
    consenting = [enrol(runs.container) for _ in range(80)]
    silent = [enrol(runs.container, consents=Consents(email=False)) for _ in range(20)]
    customers = consenting + silent
    runs.segment(customers)
    camp = runs.define(
        [
            {"type": "coupon", "offer_id": offer(runs.container)},
            {"type": "message", "template_id": template(runs.container)},
        ],
        control_group={"percent": 20},
        limits={"max_recipients": 50},
    )
    # When the dry run is asked, then the run executes
    dry = runs.control.dry_run(camp.campaign_id)
    assert runs.container.table.get(f"CAMPACT#{camp.campaign_id}#{customers[0]}", "OCC#run:dry-run") is None
    assert coupons_by_customer(runs, customers, camp.campaign_id) == {0: 100}
    view = runs.run(camp, "r-dry")
    # Then both counted the same per outcome and reason
    assert dry.audience == view.counts.audience == 100
    assert (dry.control, dry.eligible) == (view.counts.control, view.counts.actioned)
    assert dry.excluded == {reason: view.counts.skipped.get(reason, 0) for reason in SKIP_REASONS}
    # The hold-out is drawn after the contact policy: every silent customer is excluded, none held out
    assert dry.excluded["no_consent"] == len(silent)
    assert dry.control == sum(1 for c in consenting if in_control(camp.campaign_id, c, 20))
    assert dry.eligible == 50 and dry.excluded["max_recipients"] > 0
    assert (dry.cost.coupons, dry.cost.messages["email"]) == (50, 50)
    assert len(dry.sample) == 20
