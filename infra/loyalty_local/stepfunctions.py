"""Step Functions locally: the very state machines the CDK app synthesises, executed by moto.

moto's interpreter (LocalStack's, copied into moto) runs ASL once `execute_state_machine` is on.
Three things make it run ours (design.md, "Step Functions, EventBridge targets and Scheduler
locally"):

1. The template: `synthesised_template()` synthesises the CDK app (in a subprocess, cached under
   .local/cdk by a fingerprint of the infra code and resource definitions) and `resolve()` turns a
   state machine's `Fn::Join` definition into concrete ASL, with the local ARNs of its functions and
   the local names of its buckets. So the ASL that runs here is the ASL CDK deploys.
2. The functions: `provision_state_machines()` creates in moto each function the definition names,
   with the template's Handler, Runtime, Timeout and MemorySize, and the state machine itself.
3. The invocation: moto would run a Lambda in Docker. `install_in_process_lambda()` replaces the one
   private method every invoke goes through, `moto.awslambda.models.LambdaFunction._invoke_lambda`,
   by a call of the function's real handler in this process (bound to the platform's container),
   answering in Lambda's error envelope on an exception: its `errorType` becomes the Step
   Functions error name, so Retry and Catch behave as on AWS. Functions not registered here keep
   moto's own behaviour. tests/integration/test_campaign_runs.py holds a canary test per moto
   internal relied on, so a moto upgrade that moves one fails loudly.

The interpreter calls Lambda back through moto's server at `localhost:$MOTO_PORT`: `enable()` sets
the variable to the running server's port.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from loyalty.bootstrap import Container, bound_container
from loyalty.resources import (
    AUTHORIZER,
    FUNCTIONS,
    JOBS,
    STATE_MACHINES,
    BucketDef,
    CampaignRunMachineDef,
    construct_name,
)
from loyalty_local.emulators import REPO
from loyalty_local.gateway import FUNCTIONS_DIR, Handler, LambdaContext, load_handler

TEMPLATE_CACHE = REPO / ".local" / "cdk"
# What the synthesised state machines depend on: a change to any of these synthesises again.
_TEMPLATE_INPUTS = (
    REPO / "cdk.json",
    REPO / "infra" / "app.py",
    REPO / "infra" / "loyalty_infra",
    REPO / "layers" / "shared" / "python" / "loyalty" / "resources.py",
)
# The moto internal replaced here (a canary test pins its signature and its callers).
PATCHED = "moto.awslambda.models.LambdaFunction._invoke_lambda"
PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


# ---- 1. the template -------------------------------------------------------------------------------


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for root in _TEMPLATE_INPUTS:
        paths = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in paths:
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    # The functions that exist (their code does not change the state machines, their names do).
    digest.update(",".join(sorted(p.name for p in FUNCTIONS_DIR.iterdir() if p.is_dir())).encode())
    return digest.hexdigest()[:20]


def synthesised_template(*, cache_dir: Path = TEMPLATE_CACHE) -> dict[str, Any]:
    """The stack's CloudFormation template as `make synth` writes it (cached by fingerprint; test
    workers starting together synthesise once, the others wait for it under a file lock)."""
    cached = cache_dir / f"template-{_fingerprint()}.json"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "synth.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.exists():
            _synthesise_into(cached)
            for stale in cache_dir.glob("template-*.json"):
                if stale != cached:
                    stale.unlink(missing_ok=True)
    loaded: dict[str, Any] = json.loads(cached.read_text())
    return loaded


def _synthesise_into(cached: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="cdk-out-") as out:
        env = {
            **os.environ,
            "CDK_OUTDIR": out,
            "PYTHONPATH": os.pathsep.join(
                [
                    str(REPO / "layers" / "shared" / "python"),
                    str(REPO / "infra"),
                    os.environ.get("PYTHONPATH", ""),
                ]
            ),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        }
        done = subprocess.run(
            [sys.executable, str(REPO / "infra" / "app.py")],
            cwd=REPO / "infra",
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"synthesising the CDK app failed (make deps-layer first?):\n{done.stderr[-3000:]}"
            )
        # The app writes several templates (the stage stack, its nested stacks, the console's):
        # the state machines and their task functions are the stage stack's.
        (template_path,) = [
            path
            for path in Path(out).glob("*.template.json")
            if '"AWS::StepFunctions::StateMachine"' in path.read_text()
        ]
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(template_path, partial)
        partial.replace(cached)  # whole or not at all


class UnresolvedReference(KeyError):
    """The definition names a resource the local runtime does not make."""


def resolve(value: Any, refs: Mapping[str, str]) -> Any:
    """CloudFormation's intrinsic functions as the state machines use them, over `refs` (logical id
    -> name for Ref, `<logical id>.<attribute>` -> value for Fn::GetAtt, pseudo parameters)."""
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((function, argument),) = value.items()
        if function in _INTRINSICS:
            return _INTRINSICS[function](argument, refs)
    return {k: resolve(v, refs) for k, v in value.items()}


def _ref(name: str, refs: Mapping[str, str]) -> str:
    if name not in refs:
        raise UnresolvedReference(name)
    return refs[name]


_INTRINSICS: dict[str, Callable[[Any, Mapping[str, str]], Any]] = {
    "Ref": lambda argument, refs: _ref(str(argument), refs),
    "Fn::GetAtt": lambda argument, refs: _ref(f"{argument[0]}.{argument[1]}", refs),
    "Fn::Join": lambda argument, refs: argument[0].join(str(resolve(p, refs)) for p in argument[1]),
    "Fn::Select": lambda argument, refs: resolve(argument[1], refs)[int(argument[0])],
    "Fn::Split": lambda argument, refs: str(resolve(argument[1], refs)).split(argument[0]),
}


def references(value: Any) -> Iterator[tuple[str, str | None]]:
    """(logical id, attribute or None for a Ref) of every reference in a template value."""
    if isinstance(value, list):
        for v in value:
            yield from references(v)
    elif isinstance(value, dict):
        if len(value) == 1 and "Ref" in value:
            yield str(value["Ref"]), None
        elif len(value) == 1 and "Fn::GetAtt" in value:
            yield str(value["Fn::GetAtt"][0]), str(value["Fn::GetAtt"][1])
        else:
            for v in value.values():
                yield from references(v)


def _path(resource: Mapping[str, Any]) -> str:
    return str((resource.get("Metadata") or {}).get("aws:cdk:path", ""))


def find_resource(template: Mapping[str, Any], type_: str, path_suffix: str) -> tuple[str, dict[str, Any]]:
    """The one resource of this type whose construct path ends with `path_suffix`."""
    found = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_ and _path(resource).endswith(path_suffix)
    ]
    if len(found) != 1:
        raise LookupError(f"{len(found)} {type_} resources at */{path_suffix} in the template")
    return found[0]


# ---- 3. the invocation (installed before anything is invoked) ---------------------------------


@dataclass(frozen=True)
class _Route:
    function: str  # functions/<function>/handler.py
    handler: Handler
    container: Container | None


_ROUTES: dict[str, _Route] = {}  # by the moto function's name
_ROUTES_LOCK = threading.Lock()
_HANDLERS: dict[str, Handler] = {}


def _handler_for(function: str) -> Handler:
    with _ROUTES_LOCK:
        if function not in _HANDLERS:
            _HANDLERS[function] = load_handler(function)
        return _HANDLERS[function]


def register_function(moto_name: str, function: str, container: Container | None) -> None:
    """Invokes of moto's function `moto_name` run `functions/<function>`'s handler, bound to
    `container` (None: the process's)."""
    route = _Route(function, _handler_for(function), container)
    with _ROUTES_LOCK:
        _ROUTES[moto_name] = route


def unregister_functions(moto_names: Iterator[str] | list[str]) -> None:
    with _ROUTES_LOCK:
        for name in moto_names:
            _ROUTES.pop(name, None)


def invoke_in_process(function_name: str, event: Any) -> tuple[str, bool, str]:
    """(payload, errored, logs) as moto's `_invoke_lambda` answers, from our handler."""
    route = _ROUTES[function_name]
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    context = LambdaContext(route.function, aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + 900)
    try:
        with bound_container(route.container):
            result = route.handler(event, context)
    except Exception as exc:
        envelope = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-5:],
        }
        return json.dumps(envelope), True, ""
    return json.dumps(result), False, ""


def install_in_process_lambda() -> None:
    """Replace moto's Docker invocation by `invoke_in_process` for registered functions. Idempotent."""
    from moto.awslambda.models import LambdaFunction

    current = LambdaFunction._invoke_lambda
    if getattr(current, "loyalty_in_process", False):
        return
    docker_invoke = current

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if self.function_name in _ROUTES:
            return invoke_in_process(self.function_name, event)
        return docker_invoke(self, event)

    _invoke_lambda.loyalty_in_process = True  # type: ignore[attr-defined]
    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    # moto's `/moto-api/data.json` reads every public attribute of every model and skips only
    # TypeError, AttributeError and ValueError; `docker_client` connects to Docker (there is none)
    # and raises DockerException, so one created function made the endpoint answer 500 (the
    # messaging tests read SES's sent mail there). Without Docker there is no client: say so.
    LambdaFunction.docker_client = property(_no_docker)  # type: ignore[assignment,method-assign]


def _no_docker(self: Any) -> Any:
    raise AttributeError("no Docker here: functions run in-process (loyalty_local.stepfunctions)")


def enable(moto_endpoint: str) -> None:
    """Turn moto's interpreter on (its public config API) and point its Lambda calls at the server."""
    request = urllib.request.Request(  # noqa: S310 - the local moto server
        f"{moto_endpoint}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()
    port = urlsplit(moto_endpoint).port
    if port is not None:
        os.environ["MOTO_PORT"] = str(port)
    install_in_process_lambda()


# ---- 2. the functions and state machines ---------------------------------------------------------


@dataclass
class LocalStateMachines:
    arns: dict[str, str] = field(default_factory=dict)  # by the definition's logical_id
    functions: dict[str, str] = field(default_factory=dict)  # moto function name by ours

    def arn(self, definition: CampaignRunMachineDef) -> str:
        return self.arns[definition.logical_id]


_KNOWN_FUNCTIONS: set[str] = {*(f.name for f in FUNCTIONS), AUTHORIZER.name, *(j.name for j in JOBS)}


def _function_of(path: str) -> str:
    """Our function's name from its construct path (`<stack>/Functions/<ConstructName>/Resource`)."""
    by_construct = {construct_name(name): name for name in _KNOWN_FUNCTIONS}
    parts = path.split("/")
    if len(parts) >= 3 and parts[-1] == "Resource" and parts[-2] in by_construct:
        return by_construct[parts[-2]]
    raise LookupError(f"no function of the platform is defined at {path}")


def _code_zip(function: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(FUNCTIONS_DIR / function / "handler.py", "handler.py")
    return buffer.getvalue()


def _role(session: Any, name: str) -> str:
    iam = session.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])


def _create_function(session: Any, name: str, function: str, properties: Mapping[str, Any], role: str) -> str:
    client = session.client("lambda")
    try:
        created = client.create_function(
            FunctionName=name,
            Runtime=properties["Runtime"],
            Handler=properties["Handler"],
            Role=role,
            Code={"ZipFile": _code_zip(function)},
            Timeout=int(properties.get("Timeout", 3)),
            MemorySize=int(properties.get("MemorySize", 128)),
            Description=str(properties.get("Description", ""))[:256],
        )
        return str(created["FunctionArn"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceConflictException":
            raise
        return str(client.get_function(FunctionName=name)["Configuration"]["FunctionArn"])


def provision_job_function(session: Any, moto_name: str, function: str, container: Container | None) -> str:
    """A job no state machine names (one a schedule made at run time invokes: campaign-schedule)
    as a function in moto, routed in-process to our handler bound to `container`; its ARN."""
    role = _role(session, f"{moto_name}-role"[-64:])
    properties = {"Runtime": "python3.13", "Handler": "handler.handler", "Timeout": 30, "MemorySize": 256}
    arn = _create_function(session, moto_name, function, properties, role)
    register_function(moto_name, function, container)
    return arn


def provision_state_machines(
    session: Any,
    template: Mapping[str, Any],
    *,
    buckets: Mapping[str, str],
    prefix: str = "",
    container: Container | None = None,
    definitions: tuple[CampaignRunMachineDef, ...] = STATE_MACHINES,
    bucket_defs: Mapping[str, BucketDef] | None = None,
) -> LocalStateMachines:
    """Create every state machine of `definitions` from the template, with the functions its ASL
    names (routed to our handlers, bound to `container`) and the buckets it names mapped to
    `buckets` (BucketDef.logical_id -> local name). Idempotent: a second call updates."""
    resources = template["Resources"]
    region = session.region_name
    account = session.client("sts").get_caller_identity()["Account"]
    role = _role(session, f"{prefix}loyalty-state-machines"[-64:])
    made = LocalStateMachines()
    for definition in definitions:
        _, machine = find_resource(
            template, "AWS::StepFunctions::StateMachine", f"/{definition.logical_id}/StateMachine/Resource"
        )
        refs: dict[str, str] = {**PSEUDO, "AWS::Region": region, "AWS::AccountId": account}
        body = machine["Properties"]["DefinitionString"]
        for logical_id, attribute in set(references(body)):
            if logical_id in refs or logical_id.startswith("AWS::"):
                continue
            resource = resources[logical_id]
            if resource["Type"] == "AWS::Lambda::Function":
                function = _function_of(_path(resource))
                moto_name = f"{prefix}{function}"
                arn = _create_function(session, moto_name, function, resource["Properties"], role)
                register_function(moto_name, function, container)
                made.functions[function] = moto_name
                refs[f"{logical_id}.Arn"] = arn
                refs[logical_id] = moto_name
            elif resource["Type"] == "AWS::S3::Bucket":
                bucket_id = _path(resource).split("/")[-2]
                if bucket_id not in buckets:
                    raise UnresolvedReference(f"bucket {bucket_id} ({logical_id}) is not provisioned locally")
                refs[logical_id] = buckets[bucket_id]
                refs[f"{logical_id}.Arn"] = f"arn:aws:s3:::{buckets[bucket_id]}"
            else:
                raise UnresolvedReference(
                    f"{logical_id}: {resource['Type']} has no local stand-in ({attribute})"
                )
        asl = resolve(body, refs)
        made.arns[definition.logical_id] = _create_state_machine(
            session, f"{prefix}{definition.local_name}", asl, role
        )
    return made


def _create_state_machine(session: Any, name: str, asl: str, role: str) -> str:
    sfn = session.client("stepfunctions")
    try:
        return str(
            sfn.create_state_machine(name=name, definition=asl, roleArn=role, type="STANDARD")[
                "stateMachineArn"
            ]
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "StateMachineAlreadyExists":
            raise
    arn = next(
        m["stateMachineArn"]
        for page in sfn.get_paginator("list_state_machines").paginate()
        for m in page["stateMachines"]
        if m["name"] == name
    )
    sfn.update_state_machine(stateMachineArn=arn, definition=asl, roleArn=role)
    return str(arn)


# ---- helpers for runs ---------------------------------------------------------------------------


TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def wait_for_execution(
    sfn: Any, execution_arn: str, timeout: float = 60.0, until: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """describe_execution once the execution ended (or `until` holds); TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL or (until is not None and until(described)):
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still {described['status']} after {timeout:.0f} s")
        time.sleep(0.05)
