"""`make run` owns its data folder (issue 12, item 9): a second runtime on the same folder refuses
to start, and DynamoDB Local never outlives the runtime that started it, however it died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from loyalty_local.emulators import PID_FILE, REPO, DynamoDBLocal, free_port, stop_leftover
from loyalty_local.runtime import lock_data_dir


class Run:
    """`python -m loyalty_local run` in a child process."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.log = data.parent / f"run-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_FAULT_")}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loyalty_local", "run", "--port", str(self.port), "--data", str(data)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/v1/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"no answer after {timeout:.0f} s:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def running(pid: int) -> bool:
    """Whether the process runs (an exited child nobody reaped yet does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.1)
    return not running(pid)


def test_a_second_runtime_on_the_same_data_folder_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Run(data)
    try:
        first.wait_ready()
        second = subprocess.run(
            [sys.executable, "-m", "loyalty_local", "run", "--port", str(free_port()), "--data", str(data)],
            cwd=REPO,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1, second.stderr
        assert f"another local runtime (pid {first.process.pid}) is using {data}" in second.stderr
        assert "Traceback" not in second.stderr
        jvms = [p for p in (data / "dynamodb").iterdir() if p.name == PID_FILE]
        assert len(jvms) == 1  # the second started no DynamoDB Local of its own
        assert requests.get(f"http://127.0.0.1:{first.port}/v1/health", timeout=5).status_code == 200
    finally:
        first.stop()
    assert first.process.returncode == 0
    lock_data_dir(data).close()  # a clean stop leaves the folder free


def test_dynamodb_local_dies_with_a_runtime_killed_hard(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = Run(data)
    try:
        run.wait_ready()
        jvm = int((data / "dynamodb" / PID_FILE).read_text())
        assert running(jvm)
        run.process.send_signal(signal.SIGKILL)  # kill -9, an OOM kill: no handler runs
        run.process.wait(timeout=10)
        assert gone_within(jvm, 10), f"DynamoDB Local (pid {jvm}) outlived its runtime"
    finally:
        run.stop()
    lock_data_dir(data).close()  # the dead runtime's lock went with it


def test_the_next_start_stops_a_dynamodb_local_left_behind(tmp_path: Path) -> None:
    """Where no parent-death signal arrived (another OS, or it was lost), the pid file tells the
    next start which JVM on this folder to stop; a pid that is not DynamoDB Local is left alone."""
    folder = tmp_path / "dynamodb"
    left = DynamoDBLocal(data_dir=folder).start()
    assert left.process is not None
    pid = left.process.pid
    try:
        assert stop_leftover(folder) == pid
        assert gone_within(pid, 10)
        assert not (folder / PID_FILE).exists()
        (folder / PID_FILE).write_text(str(os.getpid()))  # a reused pid: this test's own process
        assert stop_leftover(folder) is None
    finally:
        left.stop()
