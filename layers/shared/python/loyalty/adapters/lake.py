"""The lake's files: change rows written as Parquet by DuckDB, stored in S3 (or a folder).

DuckDB writes each file to a temporary path and boto3 puts it: no httpfs extension is loaded where
the lake is written (on Lambda that would mean shipping and loading an extension in the stream
job), and the put goes through the platform's own boto3 session, its retries and its IAM role.
Reading the lake with DuckDB (reports locally, `make lake-shell`) uses httpfs against moto's S3.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from loyalty.services.lake import SQL_TYPES, Kind


def object_key(kind: Kind, dt: str, batch_id: str) -> str:
    return f"{kind.name}/dt={dt}/{batch_id}.parquet"


def _select(kind: Kind) -> str:
    """Cast the JSON rows to the lake's types: decimals from text, timestamps from epoch ms."""
    casts = []
    for c in kind.all_columns:
        if c.type == "ts":
            casts.append(f"CAST(epoch_ms(CAST({c.name} AS BIGINT)) AS TIMESTAMP_MS) AS {c.name}")
        elif c.type == "strs":  # JSON text of a list of strings
            casts.append(f"CAST(CAST({c.name} AS JSON) AS VARCHAR[]) AS {c.name}")
        else:
            casts.append(f"CAST({c.name} AS {SQL_TYPES[c.type]}) AS {c.name}")
    return ", ".join(casts)


def write_parquet(kind: Kind, rows: Sequence[Mapping[str, Any]], target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="lake-") as tmp:
        source = Path(tmp) / "rows.json"
        with source.open("w") as out:
            for row in rows:
                out.write(json.dumps(row))
                out.write("\n")
        # Every column read as text first: the casts decide the types, not the reader's guesses.
        columns = "{" + ", ".join(f"'{c.name}': 'VARCHAR'" for c in kind.all_columns) + "}"
        connection = duckdb.connect()
        try:
            connection.execute(
                f"COPY (SELECT {_select(kind)} FROM read_json('{source}', format='newline_delimited', "  # noqa: S608 - names from the kind, paths ours
                f"columns={columns})) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            connection.close()


class S3Lake:
    def __init__(self, *, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def write(self, kind: Kind, dt: str, batch_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with tempfile.TemporaryDirectory(prefix="lake-") as tmp:
            target = Path(tmp) / "batch.parquet"
            write_parquet(kind, rows, target)
            self._s3.put_object(
                Bucket=self._bucket, Key=object_key(kind, dt, batch_id), Body=target.read_bytes()
            )


class FolderLake:
    """The same layout in a folder (tests, the bench's generated lake)."""

    def __init__(self, *, root: Path) -> None:
        self._root = root

    def write(self, kind: Kind, dt: str, batch_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        target = self._root / object_key(kind, dt, batch_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(kind, rows, target)
