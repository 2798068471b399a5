"""`make invoke FN=<function> EVENT=events/<file>.json`: one handler called with one event file, as
`sam local invoke` would, the result as JSON on stdout; against the running platform when one holds
the data folder, otherwise against a platform of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from loyalty_local import events
from loyalty_local.emulators import aws_environment
from loyalty_local.runtime import lock_data_dir, publish_environment, running_environment
from tests.e2e.conftest import Api

ROOT = Path(__file__).resolve().parents[2]


def invoke(function: str, event_file: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "loyalty_local", "invoke", function, str(event_file)]
    command += ["--data", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


def test_a_published_environment_is_trusted_only_while_its_runtime_holds_the_folder(tmp_path: Path) -> None:
    assert running_environment(tmp_path) is None
    lock = lock_data_dir(tmp_path)
    publish_environment(tmp_path, {"TABLE_NAME": "t"})
    assert running_environment(tmp_path) == {"TABLE_NAME": "t"}
    lock.close()  # the runtime is gone (a hard kill leaves the file behind)
    assert running_environment(tmp_path) is None


def test_invoke_calls_the_handler_against_the_running_platform(api: Api, tmp_path: Path) -> None:
    # Given a running platform holding a data folder, and a customer enrolled over HTTP
    runtime = api.runtime
    assert runtime is not None and runtime.resources is not None
    lock = lock_data_dir(tmp_path)
    environment = aws_environment(runtime.ddb.endpoint, runtime.moto.endpoint)
    publish_environment(tmp_path, {**environment, **runtime.resources.function_environment()})
    customer_id = api.enrol()["customer_id"]
    event: dict[str, Any] = events.sample(events.API_GATEWAY)
    event["path"] = f"/v1/customers/{customer_id}"
    event["pathParameters"] = {"customer_id": customer_id}
    event_file = tmp_path / "get-customer.json"
    event_file.write_text(json.dumps(event))
    try:
        # When the customers function is invoked with the sample, its customer id filled in
        done = invoke("customers", event_file, tmp_path)
    finally:
        lock.close()

    # Then stdout is the handler's result alone, and it read that platform's table
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["customer_id"] == customer_id


def test_invoke_without_a_running_platform_brings_its_own(tmp_path: Path) -> None:
    # A stale environment file (its runtime was killed) must not be used: nothing listens there.
    publish_environment(tmp_path, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "TABLE_NAME": "gone"})
    done = invoke("publisher", events.EVENTS_DIR / "table-stream-insert.json", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"batchItemFailures": []}


def test_invoke_names_the_functions_when_the_one_asked_for_does_not_exist(tmp_path: Path) -> None:
    done = invoke("nosuch", events.EVENTS_DIR / "scheduler.json", tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "customers" in done.stderr and "merger" in done.stderr
