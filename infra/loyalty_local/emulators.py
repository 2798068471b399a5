"""Start and stop the embedded AWS: DynamoDB Local (Java) and moto's threaded server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DDB_DIR = REPO / ".local" / "dynamodb"
REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the emulator exited with code {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@dataclass
class DynamoDBLocal:
    """AWS's own DynamoDB Local. `data_dir=None` keeps everything in memory (tests)."""

    port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        jar = DDB_DIR / "DynamoDBLocal.jar"
        if not jar.exists():
            raise RuntimeError(f"{jar} is missing: run `make ddb` (make run / make test do it for you)")
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java is not installed: run `make tools`")
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir)]
        command = [
            java,
            "-Xmx1g",
            f"-Djava.library.path={DDB_DIR / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-sharedDb",
            *storage,
            "-port",
            str(self.port),
            "-disableTelemetry",
        ]
        self.process = subprocess.Popen(
            command, cwd=DDB_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_for_port(self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


@dataclass
class Moto:
    """moto's threaded server for everything but DynamoDB."""

    port: int = field(default_factory=free_port)
    server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Moto:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_for_port(self.port, 15)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def aws_environment(ddb_endpoint: str, moto_endpoint: str) -> dict[str, str]:
    """The standard variables boto3 reads: product code has no local branch."""
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": ddb_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": ddb_endpoint,  # DynamoDB Local serves the stream API too
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }


def apply_environment(values: dict[str, str]) -> None:
    os.environ.update(values)
