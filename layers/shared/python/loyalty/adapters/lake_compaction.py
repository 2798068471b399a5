"""The Parquet work of compaction and erasure, done by DuckDB on local copies of the lake's files
(loyalty.services.compaction decides what, when and in which order; this only rewrites files).

Every statement reads the files with `hive_partitioning = false` unless it wants `dt` from the path,
and names the kind's columns explicitly: a file written before a column existed gives NULL for it,
a column the kind no longer has is left behind.
"""

# Every statement here is built from the kind's own names and our temporary paths, never from input.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from loyalty.services.compaction import Rewrite
from loyalty.services.lake import SQL_TYPES, Kind

# Row groups of this many rows: Athena and DuckDB skip a group whose min/max statistics miss the
# predicate, so smaller groups prune finer; much smaller and the per-group overhead shows.
ROW_GROUP_ROWS = 100_000
REMOVALS = "('REMOVE', 'EXPIRE')"


def _files(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def _projection(connection: Any, source: str, kind: Kind, *, with_dt: bool) -> str:
    present = {row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    columns = []
    for c in kind.all_columns:
        value = c.name if c.name in present else "NULL"
        columns.append(f"CAST({value} AS {SQL_TYPES[c.type]}) AS {c.name}")
    if with_dt:
        columns.append(f"CAST({'dt' if 'dt' in present else 'NULL'} AS VARCHAR) AS dt")
    return ", ".join(columns)


def _keep(kind: Kind) -> str:
    """Rows not of an erased customer (the `erased` table): by customer_id or by a CUST# key."""
    if not kind.personal:
        return "true"
    return (
        "(customer_id IS NULL OR customer_id NOT IN (SELECT id FROM erased))"
        " AND split_part(change_key, '|', 1) NOT IN (SELECT 'CUST#' || id FROM erased)"
    )


def _order(kind: Kind) -> str:
    return ", ".join((*kind.cluster, "change_key", "change_seq"))


def _connect(database: Any, erased: Collection[str]) -> Any:
    # A cursor is a connection of its own (its temporary tables and views are its own) to one
    # in-memory database: opening a database each time costs more than the work on a small file.
    connection = database.cursor()
    connection.execute("CREATE TEMP TABLE erased (id VARCHAR)")
    if erased:
        connection.executemany("INSERT INTO erased VALUES (?)", [[i] for i in sorted(erased)])
    return connection


def _copy(connection: Any, select: str, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    connection.execute(
        f"COPY ({select}) TO '{output}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
    )


def _newest(value: Any) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class DuckDBParquetWork:
    def __init__(self) -> None:
        self._database = duckdb.connect()

    def merge_day(self, kind: Kind, inputs: Sequence[Path], output: Path, erased: Collection[str]) -> Rewrite:
        """One day's files as one: each change once (a retried batch wrote it twice at most),
        none of an erased customer, sorted by the kind's cluster columns."""
        connection = _connect(self._database, erased)
        try:
            source = f"read_parquet({_files(inputs)}, hive_partitioning = false, union_by_name = true)"
            projection = _projection(connection, source, kind, with_dt=False)
            connection.execute(f"CREATE TEMP VIEW day AS SELECT {projection} FROM {source}")
            (count, newest) = connection.execute("SELECT count(*), max(changed_at) FROM day").fetchone()
            _copy(
                connection,
                "SELECT * FROM day WHERE "
                f"{_keep(kind)} QUALIFY row_number() OVER (PARTITION BY change_key, change_seq) = 1 "
                f"ORDER BY {_order(kind)}",
                output,
            )
            return Rewrite(int(count), _newest(newest))
        finally:
            connection.close()

    def build_snapshot(
        self,
        kind: Kind,
        previous: Path | None,
        days: Sequence[Path],
        output: Path,
        erased: Collection[str],
    ) -> Rewrite:
        """The current state after `days` (files under `.../dt=<day>/`): the previous snapshot's
        rows whose key did not change since, and each changed key's latest image unless that
        removed it. An erased customer's rows are dropped from both."""
        connection = _connect(self._database, erased)
        try:
            empty = ", ".join(f"CAST(NULL AS {SQL_TYPES[c.type]}) AS {c.name}" for c in kind.all_columns)
            empty += ", CAST(NULL AS VARCHAR) AS dt"
            if days:
                source = (
                    f"read_parquet({_files(days)}, hive_partitioning = true, "
                    "hive_types = {'dt': VARCHAR}, union_by_name = true)"
                )
                projection = _projection(connection, source, kind, with_dt=True)
                connection.execute(f"CREATE TEMP VIEW changes AS SELECT {projection} FROM {source}")
            else:
                connection.execute(f"CREATE TEMP VIEW changes AS SELECT {empty} WHERE false")
            connection.execute(
                "CREATE TEMP TABLE latest AS SELECT * FROM changes "
                "QUALIFY row_number() OVER (PARTITION BY change_key ORDER BY change_seq DESC) = 1"
            )
            if previous is not None:
                source = f"read_parquet('{previous}', hive_partitioning = false)"
                projection = _projection(connection, source, kind, with_dt=True)
                connection.execute(f"CREATE TEMP VIEW previous AS SELECT {projection} FROM {source}")
            else:
                connection.execute(f"CREATE TEMP VIEW previous AS SELECT {empty} WHERE false")
            (count, newest) = connection.execute("SELECT count(*), max(changed_at) FROM changes").fetchone()
            _copy(
                connection,
                f"""SELECT * FROM (
                    SELECT * FROM previous WHERE change_key NOT IN (SELECT change_key FROM latest)
                    UNION ALL
                    SELECT * FROM latest WHERE op NOT IN {REMOVALS}
                ) AS current_rows WHERE {_keep(kind)} ORDER BY {_order(kind)}""",
                output,
            )
            del count
            return Rewrite(
                int(connection.execute(f"SELECT count(*) FROM read_parquet('{output}')").fetchone()[0]),
                _newest(newest),
            )
        finally:
            connection.close()

    def drop_customers(self, kind: Kind, source: Path, output: Path, erased: Collection[str]) -> int:
        """Write `source` without the erased customers' rows to `output`, in the same order and
        columns; answers how many rows went (0: nothing written, the file holds none of them)."""
        if not kind.personal:
            return 0
        connection = _connect(self._database, erased)
        try:
            relation = f"read_parquet('{source}', hive_partitioning = false)"
            (doomed,) = connection.execute(
                f"SELECT count(*) FROM {relation} WHERE NOT ({_keep(kind)})"
            ).fetchone()
            if doomed:
                _copy(connection, f"SELECT * FROM {relation} WHERE {_keep(kind)}", output)
            return int(doomed)
        finally:
            connection.close()
