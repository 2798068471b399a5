"""`python -m loyalty_local run [--port 3000]`: the whole platform on this machine.

`python -m loyalty_local invoke FUNCTION EVENT_FILE`: one handler called with one event (`make invoke`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from loyalty_local.emulators import REPO
from loyalty_local.runtime import DataDirInUse, LocalRuntime

BANNER = """
Loyalty platform running locally
  API        http://127.0.0.1:{port}
  Swagger UI http://127.0.0.1:{port}/docs     OpenAPI http://127.0.0.1:{port}/openapi.json
  DynamoDB   {ddb} (DynamoDB Local, data in {data})
  moto       {moto} (SQS, EventBridge, Scheduler, Step Functions, SES, S3, Secrets Manager)
  workflows  {machines} (as the CDK app synthesises them; tasks run in-process)
             schedules in moto's Scheduler fire when due

Demo keys
  local-admin-key     admin
  local-pos-key       pos, store ams-01 (flagship, coffee corner, Amsterdam)
  local-web-key       web, store web-nl (online)
  local-marketer-key  marketer (offers, segments, campaigns, templates, reports; reads customers)

Console    http://127.0.0.1:{port}/console/  (sign in with local-admin-key or local-marketer-key)

Try
  curl -s http://127.0.0.1:{port}/v1/health
  # enrol Jane (run it again: 409 identity-conflict, the address is taken; change it to try again)
  curl -s -X POST http://127.0.0.1:{port}/v1/customers -H 'x-api-key: local-pos-key' \\
       -H 'content-type: application/json' \\
       -d '{{"links":[{{"type":"email","value":"Jane@Example.com"}}],"profile":{{"first_name":"Jane"}}}}'
  curl -s 'http://127.0.0.1:{port}/v1/customers?link_type=email&link_value=jane@example.com' \\
       -H 'x-api-key: local-web-key'
  curl -s http://127.0.0.1:{port}/v1/admin/stores -H 'x-api-key: local-admin-key'

Ctrl-C stops everything.
"""


def main() -> None:
    parser = argparse.ArgumentParser(prog="loyalty_local")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the emulators, provision, seed and serve the API")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    run.add_argument("--data", type=Path, default=REPO / ".local" / "data")
    call = sub.add_parser("invoke", help="call one function's handler with an event file, print the result")
    call.add_argument("function", help="a function or job name, e.g. customers, publisher, merger")
    call.add_argument("event", type=Path, help="an event file, e.g. events/api-gateway-rest.json")
    call.add_argument("--data", type=Path, default=REPO / ".local" / "data", help="`make run`'s data folder")
    args = parser.parse_args()
    if args.command == "invoke":
        from loyalty_local.invoke import main as invoke

        sys.exit(invoke(args.function, args.event, args.data))

    runtime = LocalRuntime(data_dir=args.data, workflows=True, demo_campaigns=True)
    stop = threading.Event()
    # Explicit handlers: a process started in the background by a script inherits an ignored
    # SIGINT, and Ctrl-C must stop everything however `make run` was started.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # moto's server logs every request through werkzeug; the functions' own JSON logs suffice.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        runtime.start(port=args.port)
    except DataDirInUse as busy:
        sys.exit(f"loyalty_local: {busy}")  # on stderr, exit status 1; nothing was started
    except BaseException:
        runtime.stop()
        raise
    try:
        print(
            BANNER.format(
                port=args.port,
                ddb=runtime.ddb.endpoint,
                moto=runtime.moto.endpoint,
                data=args.data,
                machines=", ".join(sorted(runtime.state_machines.arns.values()))
                if runtime.state_machines
                else "-",
            ),
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping ...", flush=True)
        runtime.stop()


if __name__ == "__main__":
    main()
