"""Messages (issue 18): queueing and sending through the real mailer, per channel, metered.

Run on its own with ``.venv/bin/python -m tools.bench.messages`` (it starts its own DynamoDB Local
and moto), or as a section of ``make bench``.

Set-up (unmetered): an email and an SMS template, 50 members with email and SMS consent and a phone,
a frequency cap and quiet hours in the programme (so the policy is really checked; the clock is
noon in Amsterdam). Metered: queueing 50 welcome messages per channel (MessageQueue.queue: one
conditional put each), then the mailer's scheduled run sending them (``Mailer.send_due``: a Query
of the pending index per page, then per message GetItem, the claim, ONE BatchGetItem for the whole
contact policy and the rendering — profile, send log, template — and one TransactWriteItems for
the outcome, the send log and the timeline entry).

Reported per channel: DynamoDB round trips and WCU per message, messages per second through the
local pipeline (moto's SES/SNS answer in about a millisecond; SES's own latency is ~50-100 ms, so
on AWS a 256 MB mailer with its batch of 100 runs about 10-20 messages/s per concurrent instance,
and 1,000/s needs 50-100 concurrent runs: a shard per stream plus the schedule, or raised SES rate),
and the cost per 1,000 messages beside the provider's own price (SES $0.10 per 1,000 emails).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from loyalty.adapters.messages import MessageRepository
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.access import KeyKind, Principal
from loyalty.domain.customers import Consents, Profile
from loyalty.domain.programme import FrequencyCap, Messaging, QuietHours
from loyalty.domain.templates import Cause, Channel, Template
from loyalty.resources import JOBS
from loyalty.services.customers import EnrolCommand, RawLink
from loyalty.services.messaging import MessageQueue
from loyalty.settings import Settings
from loyalty_local.emulators import REGION
from loyalty_local.runtime import LocalRuntime
from tools.bench.config import RT_LATENCY_MS
from tools.bench.costs import DDB_RRU_PER_M, DDB_WRU_PER_M, LAMBDA_GB_SECOND, LAMBDA_PER_M
from tools.bench.meter import CallCost, DynamoMeter, settle_writes

POS = Principal("bench-pos", KeyKind.POS, "ams-01")
COUNT = 50
MEMORY_MB = next(j.memory_mb for j in JOBS if j.name == "mailer")
PROVIDER_PER_1000 = {"email": 0.10, "sms": None}  # SES; SMS is priced per country and segment
NOON_AMSTERDAM = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOON_AMSTERDAM


@dataclass(frozen=True)
class Figures:
    channel: str
    phase: str  # queue | send
    cost: CallCost
    seconds: float
    done: int

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.seconds * 1000 + RT_LATENCY_MS * self.cost.calls))

    def per_thousand(self) -> float:
        """Lambda (the mailer's memory) and DynamoDB, per 1,000 messages."""
        lambda_ = (
            LAMBDA_PER_M / 1e6 * (1000 / 100)
            + MEMORY_MB / 1024 * (self.billed_ms / 1000 / max(self.done, 1) * 1000) * LAMBDA_GB_SECOND
        )
        ddb = (self.cost.wcu_estimate * DDB_WRU_PER_M + self.cost.rcu_estimate * DDB_RRU_PER_M) / 1e6
        return lambda_ + ddb / max(self.done, 1) * 1000


class MessagesBench:
    def __init__(self) -> None:
        import boto3

        self.session = boto3.session.Session(region_name=REGION)
        self.container = Container(Settings.from_env(), session=self.session, clock=_Clock())
        self.meter = DynamoMeter()
        self.meter.attach(self.container.table._client)
        self.raw = self.session.client("dynamodb")
        self.run = uuid.uuid4().hex[:8]

    def set_up(self) -> tuple[list[str], dict[Channel, str]]:
        c = self.container
        templates = {
            Channel.EMAIL: Template(
                f"bench-email-{self.run}",
                Channel.EMAIL,
                "Hello {{ first_name }}, {{ points.available }} points. {{ unsubscribe_url }}",
                subject="Welcome {{ first_name }}",
            ),
            Channel.SMS: Template(f"bench-sms-{self.run}", Channel.SMS, "Hi {{ first_name }}"),
        }
        for template in templates.values():
            c.templates.put(template)
        programme = c.programme.current()
        messaging = Messaging(
            frequency_caps={"email": FrequencyCap(max=3, per_days=7), "sms": FrequencyCap(max=3, per_days=7)},
            quiet_hours=QuietHours(start="21:00", end="08:00"),
        )
        c.programme.replace(programme.model_copy(update={"messaging": messaging}))
        customers = []
        for n in range(COUNT):
            links = [RawLink("email", f"bench-{self.run}-{n}@example.com"), RawLink("phone", f"+3161{n:07d}")]
            command = EnrolCommand(
                links, Profile(first_name="Bo"), Consents(email=True, sms=True), True, None
            )
            customers.append(c.customers.enrol(command, POS).customer.customer_id)
        return customers, {channel: t.template_id for channel, t in templates.items()}

    def queue(self, channel: Channel, customers: list[str], template_id: str) -> Figures:
        queue = MessageQueue(messages=self.container_messages(), clock=self.container.clock)
        cost = self.meter.start()
        started = time.perf_counter()
        for cid in customers:
            queue.queue(Cause.WELCOME, f"bench-{self.run}", cid, channel, template_id)
        seconds = time.perf_counter() - started
        self.meter.stop()
        settle_writes(cost, self.raw)
        return Figures(channel.value, "queue", cost, seconds, len(customers))

    def send(self, channel: Channel) -> Figures:
        logging.getLogger("loyalty").setLevel(logging.WARNING)
        with bound_container(self.container):
            cost = self.meter.start()
            started = time.perf_counter()
            report = self.container.mailer.send_due()
            seconds = time.perf_counter() - started
            self.meter.stop()
        settle_writes(cost, self.raw)
        return Figures(channel.value, "send", cost, seconds, report.sent)

    def container_messages(self) -> MessageRepository:
        return MessageRepository(self.container.table)


def measure(runtime: LocalRuntime | None = None) -> list[Figures]:
    bench = MessagesBench()
    customers, templates = bench.set_up()
    figures = []
    for channel in (Channel.EMAIL, Channel.SMS):
        figures.append(bench.queue(channel, customers, templates[channel]))
        figures.append(bench.send(channel))
    return figures


def print_figures(figures: list[Figures]) -> None:
    print(
        f"Messages: {COUNT} welcome messages per channel queued (MessageQueue.queue) and sent by the mailer's"
        " scheduled run (Mailer.send_due), contact policy on (caps, quiet hours, consent)"
    )
    print(
        f"  {'channel':<8} {'phase':<6} {'done':>5} {'RTs':>5} {'RT/msg':>7} {'WCU*/msg':>9} {'RCU*/msg':>9}"
        f" {'msg/s':>7} {'$/1,000 (lambda+ddb)':>21} {'provider $/1,000':>17}"
    )
    for f in figures:
        n = max(f.done, 1)
        provider = PROVIDER_PER_1000.get(f.channel) if f.phase == "send" else None
        print(
            f"  {f.channel:<8} {f.phase:<6} {f.done:>5} {f.cost.calls:>5} {f.cost.calls / n:>7.2f}"
            f" {f.cost.wcu_estimate / n:>9.1f} {f.cost.rcu_estimate / n:>9.2f}"
            f" {f.done / max(f.seconds, 1e-9):>7.0f} {f.per_thousand():>21.4f}"
            f" {f'{provider:.2f}' if provider is not None else '-':>17}"
        )
    print(
        "  Per message sent: GetItem (the message), the claim (UpdateItem), ONE BatchGetItem for the contact"
        " policy and the rendering (profile + send log + template: the policy's only read), one"
        " TransactWriteItems (outcome + send log + timeline); a Query of the pending index per 100."
    )


if __name__ == "__main__":
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        print_figures(measure(runtime))
    finally:
        runtime.stop()
