"""Everything `make run` and the end-to-end tests start, in one object."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import boto3

from loyalty.bootstrap import Container, use_container
from loyalty.resources import BUS_TRIGGERS, CAMPAIGN_RUN, CAMPAIGN_SCHEDULES, JOBS
from loyalty.settings import Settings
from loyalty_local.emulators import REGION, DynamoDBLocal, Moto, aws_environment, stop_leftover
from loyalty_local.faults import FaultInjector, from_environment
from loyalty_local.gateway import LocalGateway
from loyalty_local.jobs import QueuePoller, StreamPoller, Ticker
from loyalty_local.provision import LocalResources, provision
from loyalty_local.scheduler import ScheduleRunner, ScheduleTicker
from loyalty_local.seed import seed, seed_demo_campaigns
from loyalty_local.stepfunctions import LocalStateMachines

# Scheduled jobs run every minute locally (on AWS: hourly, the mailer every 5 minutes), so a demo
# sees points mature and expire soon.
SWEEP_INTERVAL_SECONDS = 60.0
LOCK_FILE = "runtime.lock"
# Where a running runtime says how to reach it (`make invoke` reads it): the AWS endpoints and the
# functions' environment. Only trusted while the lock is held: a runtime killed hard leaves it behind.
ENVIRONMENT_FILE = "runtime.json"


class DataDirInUse(RuntimeError):
    """Another runtime holds the data folder: two DynamoDB Locals on one SQLite file corrupt it."""


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on `data_dir` for as long as the returned file stays open.

    flock's lock goes with the process: a runtime killed hard (kill -9, an OOM kill) releases it,
    so a stale lock never needs clearing by hand. The file holds the owner's pid for the message.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open on purpose until stop()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirInUse(
            f"another local runtime (pid {owner}) is using {data_dir}: stop that `make run` first, "
            "or give this one another data folder (--data)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def publish_environment(data_dir: Path, environment: dict[str, str]) -> None:
    path = data_dir / ENVIRONMENT_FILE
    path.write_text(json.dumps(environment, indent=2, sort_keys=True))
    path.chmod(0o600)


def running_environment(data_dir: Path) -> dict[str, str] | None:
    """The environment of the runtime serving `data_dir`, or None when none is running there."""
    path = data_dir / ENVIRONMENT_FILE
    if not path.exists():
        return None
    try:
        lock_data_dir(data_dir).close()  # we got the lock: whoever wrote the file is gone
    except DataDirInUse:
        published: dict[str, str] = json.loads(path.read_text())
        return published
    return None


@dataclass
class LocalRuntime:
    data_dir: Path | None = None  # None: in-memory DynamoDB (tests)
    table_name: str | None = None
    pool_size: int = 4
    ddb: DynamoDBLocal = field(default_factory=DynamoDBLocal)
    moto: Moto = field(default_factory=Moto)
    resources: LocalResources | None = None
    gateway: LocalGateway | None = None
    container: Container | None = None
    background_jobs: bool = True
    poller: StreamPoller | None = None  # the publisher's
    pollers: list[StreamPoller] = field(default_factory=list)  # one per stream job, the publisher's first
    tickers: list[Ticker] = field(default_factory=list)
    queue_pollers: list[QueuePoller] = field(default_factory=list)  # one per queue job (merger, activity)
    # The state machines the CDK app synthesises (executed by moto, their tasks in-process), the
    # schedules stored in moto's Scheduler fired when due, and bus rules to functions and state
    # machines: `make run` turns them on; the synthesis takes ~20 s when the infra code changed.
    workflows: bool = False
    # The demo campaigns (seed.seed_demo_campaigns): `make run` only, never a test's table.
    demo_campaigns: bool = False
    state_machines: LocalStateMachines | None = None
    schedule_runner: ScheduleRunner | None = None
    schedule_ticker: ScheduleTicker | None = None
    # Off unless asked for (LOYALTY_FAULT_RATE, or tests turning it on with `faults.active(...)`).
    faults: FaultInjector = field(default_factory=lambda: from_environment(dict(os.environ)))
    _owned: list[DynamoDBLocal | Moto] = field(default_factory=list)
    _lock: IO[str] | None = None

    def start(self, *, with_gateway: bool = True, port: int = 3000) -> LocalRuntime:
        if self.data_dir is not None:
            self.data_dir = self.data_dir.resolve()
            self._lock = lock_data_dir(self.data_dir)
        if self.ddb.process is None:  # tests pass in emulators they already started
            self.ddb.data_dir = self.data_dir / "dynamodb" if self.data_dir else None
            if self.ddb.data_dir is not None:
                stop_leftover(self.ddb.data_dir)  # a JVM whose runtime was killed hard: we hold the lock
            self.ddb.start()
            self._owned.append(self.ddb)
        if self.moto.server is None:
            self.moto.start()
            self._owned.append(self.moto)
        os.environ.update(aws_environment(self.ddb.endpoint, self.moto.endpoint))
        session = boto3.session.Session(region_name=REGION)
        self.resources = provision(session, self.table_name, pepper=self._pepper())
        os.environ.update(self.resources.function_environment())
        if self.data_dir is not None:
            publish_environment(
                self.data_dir,
                {
                    **aws_environment(self.ddb.endpoint, self.moto.endpoint),
                    **self.resources.function_environment(),
                },
            )
        # The product code gets its own session, the one faults are injected into; provisioning,
        # the seed and the pollers (which stand in for AWS itself) keep the clean one.
        app_session = boto3.session.Session(region_name=REGION)
        self.faults.install(app_session)
        rate, self.faults.rate = self.faults.rate, 0.0
        self.container = Container(Settings.from_env(), session=app_session)
        use_container(self.container)
        seed(self.container)
        if self.demo_campaigns:
            seed_demo_campaigns(self.container)
        self.faults.rate = rate
        self.pollers = [
            StreamPoller(session, self.resources.table_name, function=job.name)
            for job in sorted(JOBS, key=lambda j: j.name != "publisher")
            if job.consumes_stream
        ]
        self.poller = self.pollers[0]
        self.queue_pollers = [
            QueuePoller(session, self.resources.queue_urls[job.consumes_queue.logical_id], job.name)
            for job in JOBS
            if job.consumes_queue is not None
        ]
        if self.workflows:
            self._start_workflows(session)
        for background in (*self.pollers, *self.queue_pollers):
            background.container = self.container
        if self.background_jobs:
            self._start_background()
        if with_gateway:
            self.gateway = LocalGateway(pool_size=self.pool_size, container=self.container)
            self.gateway.serve(port=port)
        return self

    def stop(self) -> None:
        if self.gateway:
            self.gateway.shutdown()
        for poller in self.pollers:
            poller.stop()
        for queue_poller in self.queue_pollers:
            queue_poller.stop()
        for ticker in self.tickers:
            ticker.stop()
        if self.schedule_ticker is not None:
            self.schedule_ticker.stop()
        if self.state_machines is not None:
            from loyalty_local.stepfunctions import unregister_functions

            unregister_functions(list(self.state_machines.functions.values()))
        use_container(None)
        for emulator in reversed(self._owned):
            emulator.stop()
        self._owned.clear()
        if self._lock is not None:
            if self.data_dir is not None:
                (self.data_dir / ENVIRONMENT_FILE).unlink(missing_ok=True)
            self._lock.close()  # releases the flock
            self._lock = None

    def _start_background(self) -> None:
        for poller in self.pollers:
            poller.start()
        for queue_poller in self.queue_pollers:
            queue_poller.start()
        self.tickers = [
            Ticker(job.name, job.local_interval_s or SWEEP_INTERVAL_SECONDS) for job in JOBS if job.schedule
        ]
        for ticker in self.tickers:
            ticker.container = self.container
            ticker.start()
        if self.schedule_runner is not None:
            self.schedule_ticker = ScheduleTicker(self.schedule_runner).start()

    def _start_workflows(self, session: boto3.session.Session) -> None:
        from loyalty_local.bus_triggers import create_trigger, trigger_poller
        from loyalty_local.stepfunctions import (
            enable,
            provision_job_function,
            provision_state_machines,
            synthesised_template,
        )

        assert self.resources is not None
        # Tests give each runtime's functions and rules their table's prefix, as its queues have.
        prefix = f"{self.table_name}-" if self.table_name else ""
        enable(self.moto.endpoint)
        self.state_machines = provision_state_machines(
            session,
            synthesised_template(),
            buckets=self.resources.buckets,
            prefix=prefix,
            container=self.container,
        )
        if self.state_machines.arns.get(CAMPAIGN_RUN.logical_id) != self.resources.campaign_run_arn:
            raise RuntimeError("the campaign run state machine is not where the functions' settings say")
        # Scheduled campaigns' schedules (made at run time in moto's Scheduler) invoke this job.
        target = f"{prefix}{CAMPAIGN_SCHEDULES.target}"
        provision_job_function(session, target, CAMPAIGN_SCHEDULES.target, self.container)
        self.state_machines.functions[CAMPAIGN_SCHEDULES.target] = target  # unregistered on stop
        self.schedule_runner = ScheduleRunner(session)
        for trigger in BUS_TRIGGERS:
            tap = create_trigger(session, trigger, self.resources.event_bus_name, prefix=prefix)
            self.queue_pollers.append(
                trigger_poller(session, tap, state_machine_arns=self.state_machines.arns)
            )

    def _pepper(self) -> str | None:
        """Keep the key-hashing pepper beside the persistent data, so keys survive a restart."""
        if self.data_dir is None:
            return None
        path = self.data_dir / "api-key-pepper"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()
