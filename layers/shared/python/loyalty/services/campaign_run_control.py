"""Campaign runs as marketers see them: start, read, list, cancel, retry, and the dry run.

A run is a record (CAMPAIGN#<id> / RUN#<run_id>, written conditionally: starting the same run id
twice starts nothing twice) and one Step Functions execution per attempt of the CAMPAIGN_RUN state
machine (services.campaign_runs is what its tasks do). A retry of a failed or cancelled run starts a
new execution under the same run id: `act` is keyed by (campaign, run, customer), so nobody gets
anything twice, and batches already complete are not acted on again.

While a run runs its counts are summed from its batches' outcomes (each batch's latest, so the sum
is exact at every moment); Finish writes the final counts on the record.

The dry run asks the same actor what it would do (`evaluate`: no writes) over the same members.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from loyalty.adapters.dynamo import TransactionCancelled
from loyalty.domain.campaign_runs import CampaignRun, RunCounts, execution_name, sum_counts
from loyalty.domain.campaigns import SKIP_REASONS, ActResult, Campaign, Cost, Occasion
from loyalty.domain.errors import CampaignNotRunnable, CampaignRunNotFound
from loyalty.domain.templates import Channel
from loyalty.services.campaign_ports import CampaignActor, CampaignCatalogue
from loyalty.services.campaign_runs import RunLedger, RunRecords, SegmentAudience
from loyalty.services.ports import Clock, Idempotency, idempotency_ops, replay_if_recorded

if TYPE_CHECKING:
    from loyalty.adapters.idempotency import IdempotencyStore

SAMPLE = 20
DRY_RUN_CHUNK = 250
DRY_RUN_WORKERS = 16
# What a dry run stands for: the next run's occasion, which nobody has received yet.
DRY_RUN_OCCASION = Occasion("run:dry-run", None)


class RunStarter(Protocol):
    """The CAMPAIGN_RUN state machine (adapters.campaign_run_starter)."""

    def start(self, name: str, execution_input: Mapping[str, Any]) -> None:
        """Start an execution named `name`; one that exists already is not started again."""
        ...

    def stop(self, name: str, cause: str) -> None:
        """Stop the execution named `name` (one that has ended stays as it ended)."""
        ...

    def status(self, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED; None when there is no such execution."""
        ...


# Ends of an execution that Finish did not see: the record would say running for ever.
UNFINISHED_ENDS = frozenset({"TIMED_OUT", "ABORTED", "FAILED"})
NEVER_STARTED_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class RunView:
    run: CampaignRun
    counts: RunCounts

    @property
    def run_id(self) -> str:
        return self.run.run_id


@dataclass(frozen=True)
class DryRun:
    audience: int
    control: int
    eligible: int
    excluded: dict[str, int]
    cost: Cost
    sample: list[ActResult] = field(default_factory=list)

    @classmethod
    def of(cls, results: list[ActResult]) -> DryRun:
        counts = RunCounts.of(results)
        cost = Cost(messages={channel.value: 0 for channel in Channel})
        for result in results:
            if result.outcome == "actioned":
                cost = cost.plus(result.cost)
        return cls(
            audience=len(results),
            control=counts.control,
            eligible=counts.actioned,
            excluded={reason: counts.skipped.get(reason, 0) for reason in SKIP_REASONS},
            cost=cost,
            sample=results[:SAMPLE],
        )


def runnable(campaign: Campaign) -> str | None:
    """Why a run of this campaign cannot start now (None: it can)."""
    if campaign.trigger.type not in ("manual", "schedule"):
        return f"campaign {campaign.campaign_id} is {campaign.trigger.type}-triggered: it has no runs"
    if campaign.status != "active":
        return f"campaign {campaign.campaign_id} is {campaign.status}: only an active campaign runs"
    if campaign.audience.segment_id is None:
        return f"campaign {campaign.campaign_id} has no audience segment to run over"
    return None


class CampaignRunControl:
    def __init__(
        self,
        *,
        catalogue: CampaignCatalogue,
        actor: CampaignActor,
        audience: SegmentAudience,
        records: RunRecords,
        ledger: RunLedger,
        starter: RunStarter,
        idempotency: IdempotencyStore,
        clock: Clock,
    ) -> None:
        self._catalogue = catalogue
        self._actor = actor
        self._audience = audience
        self._records = records
        self._ledger = ledger
        self._starter = starter
        self._idempotency = idempotency
        self._clock = clock

    def start(
        self,
        campaign_id: str,
        run_id: str | None = None,
        trigger: str = "manual",
        batch_size: int | None = None,
        idempotency: Idempotency = None,
    ) -> RunView:
        """Start a run (CampaignNotFound, CampaignNotRunnable). Started again with the same run id,
        it starts nothing new and answers the run as it stands; a request repeated with its
        Idempotency-Key gets its first answer and starts nothing (every run actions everyone again,
        so a resent POST must not become a second run)."""
        replay_if_recorded(self._idempotency, idempotency)
        campaign = self._catalogue.get(campaign_id)
        reason = runnable(campaign)
        if reason is not None:
            raise CampaignNotRunnable(reason)
        now = self._clock.now()
        run_id = run_id or f"run-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        record = CampaignRun(
            campaign_id=campaign_id,
            run_id=run_id,
            status="running",
            trigger=trigger,
            attempt=1,
            execution=execution_name(campaign_id, run_id, 1),
            started_at=now.isoformat(),
        )
        view = RunView(record, RunCounts())
        try:
            recorded = idempotency_ops(self._idempotency, idempotency, view, now)
            existing = self._records.create(record, recorded)
        except TransactionCancelled:
            replay_if_recorded(self._idempotency, idempotency)  # a first try with the key won the race
            raise
        if existing is None:
            self._start(record, batch_size)
            return view
        if existing.status == "running":
            # The record may have been written by a start that failed before its execution began:
            # starting the same execution name again starts nothing twice.
            self._start(existing, batch_size)
        return self._view(existing)

    def get(self, campaign_id: str, run_id: str) -> RunView:
        run = self._record(campaign_id, run_id)
        if run.status == "running":
            why = self._unfinished(run)
            if why is not None and self._records.fail(run, why, self._clock.now().isoformat()):
                run = self._record(campaign_id, run_id)
        return self._view(run)

    def _unfinished(self, run: CampaignRun) -> str | None:
        """Why a record that says running cannot be: its execution ended without its Finish (timed
        out, stopped outside the API, Finish itself failing), or never started (the start failed
        between the record and the execution, a minute ago or more). None: it may well be running."""
        ended = self._starter.status(run.execution)
        if ended in UNFINISHED_ENDS:
            return f"the execution ended {ended} before it finished"
        started = datetime.fromisoformat(run.started_at)
        if ended is None and self._clock.now() - started >= NEVER_STARTED_AFTER:
            return "the execution never started"
        return None

    def list(self, campaign_id: str, limit: int, cursor: str | None) -> tuple[list[RunView], str | None]:
        self._catalogue.get(campaign_id)  # CampaignNotFound for a campaign that does not exist
        runs, next_cursor = self._records.list(campaign_id, limit, cursor)
        return [self._view(run) for run in runs], next_cursor

    def cancel(self, campaign_id: str, run_id: str) -> RunView:
        run = self._record(campaign_id, run_id)
        if run.status != "running":
            raise CampaignNotRunnable(f"run {run_id} is {run.status}: only a running run can be cancelled")
        if not self._records.cancel(run, self._clock.now().isoformat()):
            raise CampaignNotRunnable(f"run {run_id} ended while it was being cancelled")
        self._starter.stop(run.execution, "cancelled by a marketer")
        return self.get(campaign_id, run_id)

    def retry(self, campaign_id: str, run_id: str, batch_size: int | None = None) -> RunView:
        """A failed or cancelled run again, as a new execution under the same run id."""
        run = self._record(campaign_id, run_id)
        if run.status not in ("failed", "cancelled"):
            raise CampaignNotRunnable(
                f"run {run_id} is {run.status}: only a failed or cancelled run is retried"
            )
        reason = runnable(self._catalogue.get(campaign_id))
        if reason is not None:
            raise CampaignNotRunnable(reason)
        attempt = run.attempt + 1
        execution = execution_name(campaign_id, run_id, attempt)
        if not self._records.restart(run, attempt, execution, self._clock.now().isoformat()):
            raise CampaignNotRunnable(f"run {run_id} changed while it was being retried: read it again")
        restarted = self._record(campaign_id, run_id)
        self._start(restarted, batch_size)
        return self._view(restarted)

    def dry_run(self, campaign_id: str) -> DryRun:
        """What a run would do now, customer by customer, without writing anything."""
        campaign = self._catalogue.get(campaign_id)
        if campaign.audience.segment_id is None:
            raise CampaignNotRunnable(f"campaign {campaign_id} has no audience segment to run over")
        members = list(dict.fromkeys(self._audience.members(campaign.audience.segment_id)))
        limits = campaign.limits
        if limits.max_recipients is not None or limits.budget is not None or len(members) <= DRY_RUN_CHUNK:
            # A limit is consumed customer by customer, in the run's order: one pass.
            return DryRun.of(self._actor.evaluate(campaign, DRY_RUN_OCCASION, members))
        # Without limits each customer's answer is their own: chunks evaluated side by side, so a
        # large segment's dry run fits in the API's 29 seconds (each customer is a read or two).
        chunks = [members[i : i + DRY_RUN_CHUNK] for i in range(0, len(members), DRY_RUN_CHUNK)]
        with ThreadPoolExecutor(max_workers=DRY_RUN_WORKERS) as pool:
            answers = pool.map(lambda chunk: self._actor.evaluate(campaign, DRY_RUN_OCCASION, chunk), chunks)
            return DryRun.of([result for answer in answers for result in answer])

    # ---- helpers ----------------------------------------------------------------------------
    def _record(self, campaign_id: str, run_id: str) -> CampaignRun:
        run = self._records.get(campaign_id, run_id)
        if run is None:
            raise CampaignRunNotFound(f"campaign {campaign_id} has no run {run_id}")
        return run

    def _start(self, run: CampaignRun, batch_size: int | None) -> None:
        execution_input: dict[str, Any] = {"campaign_id": run.campaign_id, "run_id": run.run_id}
        if batch_size is not None:
            execution_input["batch_size"] = batch_size
        self._starter.start(run.execution, execution_input)

    def _view(self, run: CampaignRun) -> RunView:
        if run.counts is not None:
            return RunView(run, run.counts)
        # Running (or cancelled before Finish): the batches so far, each batch's latest outcome.
        return RunView(run, sum_counts(run.audience or 0, self._ledger.batch_outcomes(run.ref)))
