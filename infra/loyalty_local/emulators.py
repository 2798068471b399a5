"""Start and stop the embedded AWS: DynamoDB Local (Java) and moto's threaded server.

Moto runs in our own process, so it dies with it. DynamoDB Local is a JVM of its own: it is tied to
its parent by a parent-death signal (Linux), and a data folder records its pid so that the next
start stops one that a runtime killed hard left behind (other systems, or a signal that was lost).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


PID_FILE = "dynamodb.pid"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel send the child SIGTERM when its parent dies (Linux only).

    libc's prctl is looked up here, before the fork: the child of a threaded process may only call
    what is already loaded. The signal follows the *thread* that forked the child, so emulators
    are started from the main thread. SIGTERM, not SIGKILL: the JVM then closes its SQLite files.
    """
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def stop_leftover(data_dir: Path, timeout: float = 10.0) -> int | None:
    """Stop the DynamoDB Local that a runtime killed hard left on `data_dir`, if its pid file names
    one that still runs there. Call it only while holding the data folder's lock: then no live
    runtime owns that JVM. Returns the pid stopped, if any."""
    path = data_dir / PID_FILE
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    if not _is_dynamodb_on(pid, data_dir):
        return None  # gone, or the pid was reused by another program: leave it alone
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_dynamodb_on(pid, data_dir):
        time.sleep(0.1)
    if _is_dynamodb_on(pid, data_dir):
        os.kill(pid, signal.SIGKILL)
    return pid


def _is_dynamodb_on(pid: int, data_dir: Path) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            if stat.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False  # exited, not yet reaped
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().split(b"\0")
    except OSError:
        return False
    return any(a.endswith(b"DynamoDBLocal.jar") for a in args) and os.fsencode(str(data_dir)) in args


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
        # Its own session keeps a terminal's Ctrl-C from reaching it before we stop it in order;
        # the parent-death signal keeps it from outliving us when we are killed.
        self.process = subprocess.Popen(
            command,
            cwd=DDB_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            # Only a prctl resolved before the fork and two system calls run in the child.
            preexec_fn=_die_with_parent(),  # noqa: PLW1509
        )
        if self.data_dir is not None:
            (self.data_dir / PID_FILE).write_text(str(self.process.pid))
        wait_for_port(self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process is not None and self.data_dir is not None:
            (self.data_dir / PID_FILE).unlink(missing_ok=True)
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
