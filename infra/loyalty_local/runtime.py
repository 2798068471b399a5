"""Everything `make run` and the end-to-end tests start, in one object."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from loyalty.api.routes import JOBS
from loyalty.bootstrap import Container, use_container
from loyalty.settings import Settings
from loyalty_local.emulators import REGION, DynamoDBLocal, Moto, aws_environment
from loyalty_local.gateway import LocalGateway
from loyalty_local.jobs import StreamPoller, Ticker
from loyalty_local.provision import LocalResources, provision
from loyalty_local.seed import seed

# Scheduled jobs run every minute locally (hourly on AWS), so a demo sees points mature and expire.
SWEEP_INTERVAL_SECONDS = 60.0


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
    poller: StreamPoller | None = None
    tickers: list[Ticker] = field(default_factory=list)
    _owned: list[DynamoDBLocal | Moto] = field(default_factory=list)

    def start(self, *, with_gateway: bool = True, port: int = 3000) -> LocalRuntime:
        if self.ddb.process is None:  # tests pass in emulators they already started
            self.ddb.data_dir = self.data_dir / "dynamodb" if self.data_dir else None
            self.ddb.start()
            self._owned.append(self.ddb)
        if self.moto.server is None:
            self.moto.start()
            self._owned.append(self.moto)
        os.environ.update(aws_environment(self.ddb.endpoint, self.moto.endpoint))
        session = boto3.session.Session(region_name=REGION)
        self.resources = provision(session, self.table_name, pepper=self._pepper())
        os.environ.update(self.resources.function_environment())
        self.container = Container(Settings.from_env(), session=session)
        use_container(self.container)
        seed(self.container)
        self.poller = StreamPoller(session, self.resources.table_name)
        if self.background_jobs:
            self.poller.start()
            self.tickers = [Ticker(job.name, SWEEP_INTERVAL_SECONDS).start() for job in JOBS if job.schedule]
        if with_gateway:
            from loyalty.api.openapi import openapi_document

            self.gateway = LocalGateway(pool_size=self.pool_size, openapi=openapi_document)
            self.gateway.serve(port=port)
        return self

    def stop(self) -> None:
        if self.gateway:
            self.gateway.shutdown()
        if self.poller:
            self.poller.stop()
        for ticker in self.tickers:
            ticker.stop()
        use_container(None)
        for emulator in reversed(self._owned):
            emulator.stop()
        self._owned.clear()

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
