"""`make invoke FN=<function> EVENT=events/<file>.json`: one handler, one event, locally, as
`sam local invoke` would: the result on stdout as JSON, the function's own logs on stderr.

Against the running `make run` when there is one (it publishes its endpoints and the functions'
environment in its data folder while it holds the folder's lock), so the call sees and changes that
platform's data; otherwise against a platform of its own for the one call (in-memory DynamoDB
Local and moto, provisioned and seeded like `make run`, stopped afterwards).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from loyalty.resources import AUTHORIZER, FUNCTIONS, JOBS
from loyalty_local.events import load_file
from loyalty_local.gateway import LambdaContext, load_handler
from loyalty_local.runtime import LocalRuntime, running_environment

# name -> (memory MB, timeout s), as deployed
DEFINITIONS = {f.name: (f.memory_mb, f.timeout_s) for f in (*FUNCTIONS, AUTHORIZER)}
DEFINITIONS.update({j.name: (j.memory_mb, j.timeout_s) for j in JOBS})


class UnknownFunction(ValueError):
    pass


def call(function: str, event: dict[str, Any]) -> Any:
    """Load the function's handler cold and call it once with `event`, in this process's environment."""
    if function not in DEFINITIONS:
        raise UnknownFunction(f"no function {function!r}; one of: {', '.join(sorted(DEFINITIONS))}")
    memory_mb, timeout_s = DEFINITIONS[function]
    context = LambdaContext(
        function,
        memory_limit_in_mb=memory_mb,
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + timeout_s,
    )
    return load_handler(function)(event, context)


def invoke(function: str, event_file: Path, data_dir: Path) -> Any:
    if function not in DEFINITIONS:
        raise UnknownFunction(f"no function {function!r}; one of: {', '.join(sorted(DEFINITIONS))}")
    event = load_file(event_file)
    environment = running_environment(data_dir)
    if environment is not None:
        print(f"invoking {function} against the running platform ({data_dir})", file=sys.stderr)
        os.environ.update(environment)
        return call(function, event)
    print(f"invoking {function} against a platform of its own (no `make run` on {data_dir})", file=sys.stderr)
    runtime = LocalRuntime(background_jobs=False)
    try:
        runtime.start(with_gateway=False)
        return call(function, event)
    finally:
        runtime.stop()


def main(function: str, event_file: Path, data_dir: Path) -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request otherwise
    # The result alone goes to stdout, as sam does it: the functions' logs (powertools writes to
    # stdout, through handlers made at import) and ours go to stderr from here on.
    sys.stdout.flush()
    result_out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        result = invoke(function, event_file, data_dir)
    except UnknownFunction as unknown:
        print(f"loyalty_local invoke: {unknown}", file=sys.stderr)
        return 2
    except Exception as failed:  # the invocation failed: Lambda's error document, exit status 1
        traceback.print_exc()
        error = {
            "errorMessage": str(failed),
            "errorType": type(failed).__name__,
            "stackTrace": traceback.format_tb(failed.__traceback__),
        }
        print(json.dumps(error, indent=2), file=result_out, flush=True)
        return 1
    print(json.dumps(result, indent=2, default=str), file=result_out, flush=True)
    return 0
