"""Cold imports: each function's import time in fresh subprocesses against the floor, and the check
that importing a handler does no I/O."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from loyalty.resources import AUTHORIZER, FUNCTIONS
from loyalty_local.emulators import REGION
from loyalty_local.gateway import FUNCTIONS_DIR, REPO
from tools.bench.config import IMPORT_LIMIT, IMPORT_RUNS, LAYER_DIR
from tools.bench.report import mark

# Every script does the same set-up (the layer on sys.path, as /opt/python is on Lambda) and times
# only the imports, so interpreter start-up, identical for all, does not dilute the ratio.
FLOOR_IMPORTS = (
    "import boto3, pydantic\nfrom aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
)
TIMED_SCRIPT = """
import importlib.util, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
{body}
print(time.perf_counter() - start)
"""
FLOOR_SCRIPT = TIMED_SCRIPT.format(body=FLOOR_IMPORTS)
# `import pydantic` is lazy: BaseModel's machinery loads on first use. Any function with a
# pydantic model, and powertools' validating resolver, pays this on top of the floor.
REFERENCE_SCRIPT = TIMED_SCRIPT.format(
    body=FLOOR_IMPORTS + "from pydantic import BaseModel\nAPIGatewayRestResolver(enable_validation=True)\n"
)
FUNCTION_SCRIPT = TIMED_SCRIPT.format(
    body='spec = importlib.util.spec_from_file_location("handler", sys.argv[2])\n'
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
)

# Imports the handler with the network cut off and AWS client creation recorded: a handler that
# touches the network, builds a client or the container, or imports the X-Ray SDK at import time
# is reported. It also counts the modules the handler adds on top of the floor's.
CHECK_SCRIPT = (
    """
import importlib.util, json, socket, sys
sys.path.insert(0, sys.argv[1])
seen = []
def refuse(*args, **kwargs):
    seen.append("network: " + repr(args[1:2] or args[:1])[:80])
    raise OSError("network I/O during import")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
import botocore.session
create_client = botocore.session.Session.create_client
def recording(self, service_name, *args, **kwargs):
    seen.append("client: " + service_name)
    return create_client(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = recording
"""
    + FLOOR_IMPORTS
    + """
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("handler", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import loyalty.bootstrap
if loyalty.bootstrap._container is not None:
    seen.append("the container was built at import")
added = set(sys.modules) - before
packages = {}
for name in added:
    packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0) + 1
print(json.dumps({
    "seen": seen,
    "xray": any(m.startswith("aws_xray_sdk") for m in sys.modules),
    "modules": len(added),
    "packages": sorted(packages.items(), key=lambda kv: -kv[1]),
}))
"""
)


def import_environment() -> dict[str, str]:
    """What a fresh Lambda process has before its first request: no table, no endpoints, no keys."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": REGION})
    return env


def run_script(script: str, *args: str, write_bytecode: bool = False) -> str:
    env = import_environment()
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE")
    done = subprocess.run(
        [sys.executable, "-c", script, str(LAYER_DIR), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import subprocess failed: {done.stderr.strip()[-800:]}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class ImportFigures:
    floor_ms: float
    reference_ms: float
    functions_ms: dict[str, float]
    checks: dict[str, dict[str, Any]]


def measure_imports() -> ImportFigures:
    names = [f.name for f in (*FUNCTIONS, AUTHORIZER)]
    paths = {name: str(FUNCTIONS_DIR / name / "handler.py") for name in names}
    # One untimed run each first, writing bytecode, so every timed run reads the same cached .pyc
    # files (as a deployed package with compiled files would) and the file cache is warm.
    for name in names:
        run_script(FUNCTION_SCRIPT, paths[name], write_bytecode=True)
    run_script(REFERENCE_SCRIPT, write_bytecode=True)
    floor: list[float] = []
    reference: list[float] = []
    timings: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(IMPORT_RUNS):  # interleaved, so drift in machine load hits all alike
        floor.append(float(run_script(FLOOR_SCRIPT)) * 1000)
        reference.append(float(run_script(REFERENCE_SCRIPT)) * 1000)
        for name in names:
            timings[name].append(float(run_script(FUNCTION_SCRIPT, paths[name])) * 1000)
    checks = {name: json.loads(run_script(CHECK_SCRIPT, paths[name])) for name in names}
    return ImportFigures(
        statistics.median(floor),
        statistics.median(reference),
        {n: statistics.median(t) for n, t in timings.items()},
        checks,
    )


# ---- printing -------------------------------------------------------------------------------------


def print_imports(figures: ImportFigures) -> None:
    floor = figures.floor_ms
    print(f"Cold import, median of {IMPORT_RUNS} fresh processes each (imports only, no interpreter start)")
    print(f"  {'floor: boto3 + pydantic + APIGatewayRestResolver':<52} {floor:>6.0f} ms  1.00x")
    for name, ms in figures.functions_ms.items():
        ratio = ms / floor
        check = figures.checks[name]
        flags = []
        if check["seen"]:
            flags.append("I/O at import: " + ", ".join(check["seen"]))
        if check["xray"]:
            flags.append("imports the X-Ray SDK")
        flag_text = ("  ! " + "; ".join(flags)) if flags else ""
        heavy = ", ".join(f"{pkg} {n}" for pkg, n in check["packages"][:4])
        print(
            f"  {'functions/' + name + '/handler.py':<52} {ms:>6.0f} ms  {ratio:.2f}x  "
            f"{mark(ratio <= IMPORT_LIMIT)} <= {IMPORT_LIMIT}x  "
            f"+{check['modules']} modules ({heavy}){flag_text}"
        )
    reference = figures.reference_ms
    print(
        f"  {'reference: floor + BaseModel + validating resolver':<52} {reference:>6.0f} ms  "
        f"{reference / floor:.2f}x  (not a target: what any function here pays before its own code)"
    )
    clean = all(not c["seen"] and not c["xray"] for c in figures.checks.values())
    if clean:
        print("  No handler touched the network, built an AWS client or the container, or imported the")
        print("  X-Ray SDK while importing (checked with sockets refused and no AWS settings in the env).")
