"""The two engines behind `ReportQueries`: DuckDB over the lake's Parquet (locally, in moto's S3 or a
folder) and Athena over the Glue tables of the same files (on AWS). Both read compaction's manifest
(`_lake/manifest.json`, one small object) before each report: it names the snapshot generation the
report's SQL reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb

from loyalty.services.lake import (
    KINDS,
    MANIFEST_KEY,
    SNAPSHOT_PREFIX,
    SQL_TYPES,
    Kind,
    LakeManifest,
    snapshot_table,
)

ManifestReader = Callable[[], LakeManifest | None]


def no_manifest() -> LakeManifest | None:
    return None


def folder_manifest(root: Path) -> ManifestReader:
    def read() -> LakeManifest | None:
        try:
            return LakeManifest.from_json((root / MANIFEST_KEY).read_text())
        except FileNotFoundError:
            return None

    return read


def s3_manifest(s3: Any, bucket: str) -> ManifestReader:
    def read() -> LakeManifest | None:
        try:
            body = s3.get_object(Bucket=bucket, Key=MANIFEST_KEY)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return LakeManifest.from_json(body.decode())

    return read


def httpfs_path() -> Path:
    """DuckDB's signed httpfs build, shipped by the `duckdb-extension-httpfs` wheel (DuckDB cannot
    download extensions here, and a Lambda has nowhere to install them)."""
    import duckdb_extension_httpfs

    return next(Path(duckdb_extension_httpfs.__file__).parent.glob("extensions/*/httpfs.duckdb_extension"))


def _empty_view(kind: Kind, extra: str = "") -> str:
    columns = ", ".join(f"CAST(NULL AS {SQL_TYPES[c.type]}) AS {c.name}" for c in kind.all_columns)
    return f"SELECT {columns}, CAST(NULL AS VARCHAR) AS dt{extra} WHERE false"


def define_views(
    connection: Any, root: str, present: Callable[[str], bool], manifest: LakeManifest | None = None
) -> None:
    """One view per kind, named as the Glue table is: every file of the kind, `dt` a string as in
    Glue; a kind with no file yet is an empty view of the same columns. `<kind>_snapshot`: the
    compacted snapshots, by `generation` (empty before the first compaction). And
    `<kind>_current`: the latest image per key (what the reports derive inline, from the current
    snapshot and the newer change rows once there is one), for people querying by hand."""
    from loyalty.services.report_sql import current

    for kind in KINDS:
        if manifest is not None and present(f"{SNAPSHOT_PREFIX}/{kind.name}"):
            snapshots = (
                f"SELECT * FROM read_parquet('{root}/{SNAPSHOT_PREFIX}/{kind.name}/*/*.parquet', "
                "hive_partitioning = true, hive_types = {'generation': VARCHAR}, union_by_name = true)"
            )
        else:
            snapshots = _empty_view(kind, ", CAST(NULL AS VARCHAR) AS generation")
        connection.execute(f"CREATE OR REPLACE VIEW {snapshot_table(kind.name)} AS {snapshots}")
        if present(kind.name):
            source = (
                f"SELECT * FROM read_parquet('{root}/{kind.name}/*/*.parquet', hive_partitioning = true, "
                "hive_types = {'dt': VARCHAR}, union_by_name = true)"
            )
        else:
            source = _empty_view(kind)
        connection.execute(f"CREATE OR REPLACE VIEW {kind.name} AS {source}")
        connection.execute(
            f"CREATE OR REPLACE VIEW {kind.name}_current AS {current(kind.name, manifest=manifest)}"
        )


class DuckDBQueries:
    """Reads the lake with DuckDB. One connection, used by one query at a time (DuckDB connections
    are not for concurrent use); views are redefined when a kind gets its first file."""

    dialect = "duckdb"  # what sqlglot renders statements written in Trino's dialect into for it

    def __init__(
        self,
        *,
        root: str,
        present: Callable[[str], bool],
        setup: Callable[[Any], None] | None = None,
        read_manifest: ManifestReader = no_manifest,
    ):
        self._root = root.rstrip("/")
        self._present = present
        self._setup = setup
        self._read_manifest = read_manifest
        self._lock = threading.Lock()
        self._connection: Any = None
        self._defined: dict[str, Any] = {}

    @classmethod
    def over_folder(cls, root: Path) -> DuckDBQueries:
        return cls(
            root=str(root),
            present=lambda kind: any((root / kind).glob("*/*.parquet")),
            read_manifest=folder_manifest(root),
        )

    def manifest(self) -> LakeManifest | None:
        return self._read_manifest()

    @classmethod
    def over_s3(cls, s3: Any, bucket: str, credentials: Any) -> DuckDBQueries:
        """Through httpfs, with the endpoint and credentials the boto3 client uses (moto's locally)."""

        def present(kind: str) -> bool:
            return bool(s3.list_objects_v2(Bucket=bucket, Prefix=f"{kind}/", MaxKeys=1).get("KeyCount"))

        def setup(connection: Any) -> None:
            connection.execute(f"LOAD '{httpfs_path()}'")
            frozen = credentials.get_frozen_credentials()
            endpoint = urlparse(s3.meta.endpoint_url)
            options = {
                "TYPE": "s3",
                "KEY_ID": frozen.access_key,
                "SECRET": frozen.secret_key,
                "REGION": s3.meta.region_name,
            }
            if frozen.token:
                options["SESSION_TOKEN"] = frozen.token
            if endpoint.hostname and not endpoint.hostname.endswith("amazonaws.com"):
                options |= {"ENDPOINT": endpoint.netloc, "URL_STYLE": "path", "USE_SSL": "false"}
            rendered = ", ".join(f"{k} '{v}'" if k != "TYPE" else f"{k} {v}" for k, v in options.items())
            rendered = rendered.replace("USE_SSL 'false'", "USE_SSL false")
            connection.execute(f"CREATE OR REPLACE SECRET lake ({rendered})")

        return cls(root=f"s3://{bucket}", present=present, setup=setup, read_manifest=s3_manifest(s3, bucket))

    def connection(self) -> Any:
        """The connection with the views defined (also what `make lake-shell` queries)."""
        if self._connection is None:
            self._connection = duckdb.connect()
            if self._setup is not None:
                self._setup(self._connection)
        # Once a kind (or its snapshots) has a file it keeps one: only absent ones are looked for.
        manifest = self._read_manifest()
        names = [k.name for k in KINDS]
        if manifest is not None:
            names += [f"{SNAPSHOT_PREFIX}/{k.name}" for k in KINDS]
        state: dict[str, Any] = {name: self._defined.get(name) or self._present(name) for name in names}
        state["manifest"] = manifest
        if state != self._defined:
            define_views(self._connection, self._root, lambda name: state[name], manifest)
            self._defined = state
        return self._connection

    def run(self, sql: str) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self.connection().execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class AthenaQueryFailed(RuntimeError):
    pass


class AthenaQueries:
    """Runs a statement in the workgroup (which holds the result location, its encryption and the
    bytes-scanned cutoff) against the Glue database, waits for it and reads every result page."""

    dialect = "trino"  # Athena engine version 3

    def __init__(self, *, athena: Any, workgroup: str, database: str, poll_seconds: float = 0.25,
                 timeout_seconds: float = 25.0,
                 read_manifest: ManifestReader = no_manifest) -> None:  # fmt: skip
        self._athena = athena
        self._read_manifest = read_manifest
        self._workgroup = workgroup
        self._database = database
        self._poll = poll_seconds
        self._timeout = timeout_seconds

    def manifest(self) -> LakeManifest | None:
        return self._read_manifest()

    def run(self, sql: str) -> list[dict[str, Any]]:
        execution_id = self._athena.start_query_execution(
            QueryString=sql,
            WorkGroup=self._workgroup,
            QueryExecutionContext={"Database": self._database},
        )["QueryExecutionId"]
        deadline = time.monotonic() + self._timeout
        while True:
            status = self._athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"][
                "Status"
            ]
            state = status["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                raise AthenaQueryFailed(
                    f"query {execution_id} {state}: {status.get('StateChangeReason', '')}"
                )
            if time.monotonic() > deadline:
                self._athena.stop_query_execution(QueryExecutionId=execution_id)
                raise AthenaQueryFailed(f"query {execution_id} still running after {self._timeout} s")
            time.sleep(self._poll)
        return self._rows(execution_id)

    def _rows(self, execution_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        names: list[str] = []
        types: list[str] = []
        token: str | None = None
        first_page = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": execution_id}
            if token:
                kwargs["NextToken"] = token
            page = self._athena.get_query_results(**kwargs)
            result = page["ResultSet"]
            if not names:
                info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                names = [c["Name"] for c in info]
                types = [c.get("Type", "varchar") for c in info]
            data = result.get("Rows", [])
            if first_page and data:  # the first row of the first page repeats the column names
                data = data[1:]
            first_page = False
            for row in data:
                values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
                rows.append({n: _athena_value(t, v) for n, t, v in zip(names, types, values, strict=False)})
            token = page.get("NextToken")
            if not token:
                return rows


def _athena_value(type_: str, value: str | None) -> Any:
    """Athena answers text; the types its metadata names decide what the service gets."""
    if value is None:
        return None
    if type_ in ("integer", "bigint", "smallint", "tinyint"):
        return int(value)
    if type_ == "decimal":
        return Decimal(value)
    if type_ == "boolean":
        return value == "true"
    return value
