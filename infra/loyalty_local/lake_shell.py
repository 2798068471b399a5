"""`make lake-shell`: DuckDB over the local lake, with the views the reports' SQL reads defined.

Against the running `make run` (its moto S3, found through the runtime's environment file), or a
folder in the lake's layout with `--dir` (the bench's generated lake, files copied down). One view
per kind (`transactions`, `customers`, ...: every change row) and `<kind>_current` (the latest image
per key). Type SQL ending in `;`; `.tables` lists the views; an empty line or Ctrl-D quits.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import boto3

from loyalty.adapters.report_queries import DuckDBQueries
from loyalty.resources import LAKE_BUCKET
from loyalty.services.lake import KINDS
from loyalty_local.emulators import REGION, REPO
from loyalty_local.runtime import running_environment


def queries(data_dir: Path, folder: Path | None) -> DuckDBQueries:
    if folder is not None:
        return DuckDBQueries.over_folder(folder)
    environment = running_environment(data_dir)
    if environment is None:
        raise SystemExit(f"no `make run` is serving {data_dir}: start it, or pass --dir <a lake folder>")
    os.environ.update(environment)
    session = boto3.session.Session(region_name=REGION)
    return DuckDBQueries.over_s3(
        session.client("s3"), environment[LAKE_BUCKET.env_var], session.get_credentials()
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="lake-shell", description=__doc__)
    parser.add_argument(
        "--data", type=Path, default=REPO / ".local" / "data", help="`make run`'s data folder"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="a lake folder instead of the running platform's"
    )
    parser.add_argument("-c", "--command", default=None, help="run this SQL and exit")
    args = parser.parse_args()
    connection = queries(args.data, args.dir).connection()
    if args.command:
        connection.sql(args.command).show()
        return 0
    names = ", ".join(k.name for k in KINDS)
    print(f"DuckDB over the lake. Views: {names} (every change), each as <kind>_current and <kind>_snapshot.")
    print("SQL ends with ';'. An empty line or Ctrl-D quits.")
    buffer: list[str] = []
    while True:
        try:
            line = input("lake> " if not buffer else "  ... ")
        except EOFError:
            return 0
        if not line.strip() and not buffer:
            return 0
        if line.strip() == ".tables":
            print("\n".join(sorted(r[0] for r in connection.execute("SHOW TABLES").fetchall())))
            continue
        buffer.append(line)
        if line.rstrip().endswith(";"):
            try:
                relation = connection.sql("\n".join(buffer))
                if relation is not None:
                    relation.show(max_rows=100)
            except Exception as error:  # a shell shows the error and goes on
                print(f"error: {error}", file=sys.stderr)
            buffer = []


if __name__ == "__main__":
    sys.exit(main())
