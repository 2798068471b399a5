"""The lake's files: change rows written as Parquet by DuckDB, stored in S3 (or a folder).

DuckDB writes each file to a temporary path and boto3 puts it: no httpfs extension is loaded where
the lake is written (on Lambda that would mean shipping and loading an extension in the stream
job), and the put goes through the platform's own boto3 session, its retries and its IAM role.
Reading the lake with DuckDB (reports locally, `make lake-shell`) uses httpfs against moto's S3.

Compaction and erasure (loyalty.services.compaction) work on whole objects: list, download, upload,
delete. Uploads can be conditional (S3's If-Match / If-None-Match): the manifest is swapped only
if nobody swapped it since it was read, and an erasure's rewrite lands only on the object it read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
from botocore.exceptions import ClientError

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


_PRECONDITION = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404", "412")


class S3Lake:
    def __init__(self, *, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            found.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(found)

    def download(self, key: str, target: Path) -> str | None:
        """The object into `target`, answering its ETag (None when there is no such object)."""
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for chunk in response["Body"].iter_chunks(1024 * 1024):
                out.write(chunk)
        return str(response["ETag"])

    def upload(self, key: str, source: Path, *, if_match: str | None = None, if_absent: bool = False) -> bool:
        """Put the file; with a condition, False (and nothing written) when it does not hold."""
        kwargs: dict[str, Any] = {}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        try:
            with source.open("rb") as body:
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, **kwargs)
        except ClientError as exc:
            if kwargs and exc.response["Error"]["Code"] in _PRECONDITION:
                return False
            raise
        return True

    def read_text(self, key: str) -> tuple[str, str] | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return response["Body"].read().decode(), str(response["ETag"])

    def write_text(
        self, key: str, text: str, *, if_match: str | None = None, if_absent: bool = False
    ) -> bool:
        kwargs: dict[str, Any] = {}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=text.encode(), **kwargs)
        except ClientError as exc:
            if kwargs and exc.response["Error"]["Code"] in _PRECONDITION:
                return False
            raise
        return True

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )

    def purge_history(self, key: str) -> None:
        """Delete the key's earlier versions (the bucket is versioned): after an erasure's rewrite
        the rows it removed must not survive in a noncurrent version."""
        doomed: list[dict[str, str]] = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=key):
            for version in (*page.get("Versions", []), *page.get("DeleteMarkers", [])):
                if version["Key"] == key and not version.get("IsLatest"):
                    doomed.append({"Key": key, "VersionId": version["VersionId"]})
        for start in range(0, len(doomed), 1000):
            self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
            )

    def write(self, kind: Kind, dt: str, batch_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with tempfile.TemporaryDirectory(prefix="lake-") as tmp:
            target = Path(tmp) / "batch.parquet"
            write_parquet(kind, rows, target)
            self._s3.put_object(
                Bucket=self._bucket, Key=object_key(kind, dt, batch_id), Body=target.read_bytes()
            )


def _tag(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FolderLake:
    """The same layout in a folder (tests, the bench's generated lake). Conditions hold within the
    process (one lock); every write is a rename, so a reader never sees half a file."""

    _lock = threading.Lock()

    def __init__(self, *, root: Path) -> None:
        self._root = root

    def keys(self, prefix: str) -> list[str]:
        found = []
        for path in self._root.rglob("*"):
            key = path.relative_to(self._root).as_posix()
            if path.is_file() and key.startswith(prefix) and ".tmp-" not in path.name:
                found.append(key)
        return sorted(found)

    def download(self, key: str, target: Path) -> str | None:
        source = self._root / key
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    def _put(self, key: str, data: bytes, if_match: str | None, if_absent: bool) -> bool:
        target = self._root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if if_absent and target.exists():
                return False
            if if_match is not None and (not target.exists() or _tag(target) != if_match):
                return False
            partial = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
            partial.write_bytes(data)
            partial.replace(target)
        return True

    def upload(self, key: str, source: Path, *, if_match: str | None = None, if_absent: bool = False) -> bool:
        return self._put(key, source.read_bytes(), if_match, if_absent)

    def read_text(self, key: str) -> tuple[str, str] | None:
        try:
            data = (self._root / key).read_bytes()
        except FileNotFoundError:
            return None
        return data.decode(), hashlib.sha256(data).hexdigest()

    def write_text(
        self, key: str, text: str, *, if_match: str | None = None, if_absent: bool = False
    ) -> bool:
        return self._put(key, text.encode(), if_match, if_absent)

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            (self._root / key).unlink(missing_ok=True)

    def purge_history(self, key: str) -> None:
        """A folder keeps no earlier versions."""

    def write(self, kind: Kind, dt: str, batch_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        target = self._root / object_key(kind, dt, batch_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        write_parquet(kind, rows, partial)
        partial.replace(target)
