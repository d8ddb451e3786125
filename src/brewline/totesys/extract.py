"""Incremental extract of the totesys tables into the lake's raw zone, exactly.

Each table is read in a window of ``last_updated``: from its watermark (kept in
the warehouse ledger as a cursor) up to a **bound** below which every row
version is already committed. The classic bug of watermark extractors is a
transaction that commits *after* an extract read, with a ``last_updated``
*earlier* than the watermark the extract then advanced to: its rows are
skipped forever. Here the bound makes that impossible:

1. read ``B = min(now, start of every other open transaction) - 1 ms`` from
   ``pg_stat_activity`` (outside any snapshot);
2. then open a ``REPEATABLE READ`` snapshot and read ``watermark <= last_updated < B``
   of every table from it (one consistent snapshot for all tables: the extract's
   connection exports it, and the connections that read the tables, two tables at
   a time, import it before reading anything; see :mod:`brewline.totesys.snapshot`).

A row version with ``last_updated < B`` was written by a transaction that
started before ``B`` (``last_updated`` is ``now()``, the writer's transaction
start, rounded to the millisecond — hence the 1 ms). That transaction was
not open at step 1 (else ``B`` would be at or before its start), so it had
committed, and the snapshot of step 2 sees it. Rows at or after ``B`` wait
for the next extract, whose window starts at ``B``: windows neither overlap
nor leave gaps, and the watermark only moves once the files are durable.

Requirements, checked: the extract role must see other sessions' transaction
start times (the ``pg_read_all_stats`` role, or be the writers' role), and
writers must set ``last_updated`` from the database clock (``now()``) at or
after their transaction began. A change that does not move ``last_updated``
is invisible to any watermark; ``full=True`` re-reads every row (the periodic
reconciliation) and the model keeps the newest content per version.

A killed extract leaves files without a manifest (never read) and the
watermark where it was; the next extract reads the same window again.
"""

from __future__ import annotations

import datetime as dt
import queue
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from brewline.errors import ConfigError, TransientError, first_line
from brewline.totesys import SOURCE_TABLES
from brewline.totesys.lake import MANIFESTS, Lake
from brewline.totesys.snapshot import SnapshotReader, export_snapshot, snapshot_readers

if TYPE_CHECKING:
    import polars as pl
    import psycopg
    from psycopg import sql

    from brewline.load.roles import Ledger

__all__ = ["NOT_EXTRACTED", "SOURCE", "TABLES", "Extract", "extract"]

SOURCE = "totesys"
"""The source name of the watermarks in the ledger (``etl_cursor``)."""

TABLES = SOURCE_TABLES
"""The source tables, in dependency order."""

NOT_EXTRACTED = {
    "payment": ("company_ac_number", "counterparty_ac_number"),
    "counterparty": ("commercial_contact", "delivery_contact"),
    "staff": ("email_address",),
}
"""Personal data no report needs: never selected, so it reaches neither lake nor warehouse.

Bank account numbers never leave the source; nor do counterparties' contact
people or staff e-mail addresses. Staff names stay (sales by staff are a
report), as do company names and business addresses (see README, Privacy).
"""

_MARGIN = dt.timedelta(milliseconds=1)
_OPEN_TRANSACTIONS = """
SELECT clock_timestamp()::timestamp,
       min(xact_start)::timestamp,
       count(*) FILTER (WHERE backend_type IS NULL)
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND datname = current_database()
  AND (backend_type = 'client backend' OR backend_type IS NULL)
"""
"""Now, the oldest other open transaction here, and sessions this role may not see into
(``pg_stat_activity`` hides other roles' sessions, ``backend_type`` included)."""


@dataclass
class Extract:
    """What one extract wrote: per table its key, rows and window."""

    extract_id: str
    bound: dt.datetime
    full: bool
    lag_seconds: float
    """How far the bound is behind the source's clock: a transaction left open shows here."""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(int(t["rows"]) for t in self.tables.values())

    def manifest(self) -> dict[str, Any]:
        return {
            "extract_id": self.extract_id,
            "bound": self.bound.isoformat(),
            "lag_seconds": round(self.lag_seconds, 3),
            "full": self.full,
            "tables": self.tables,
        }


def extract(source_url: str, lake: Lake, ledger: Ledger, *, full: bool = False) -> Extract:
    """Extract what changed since each table's watermark into ``lake``; advance the watermarks.

    Raises :class:`ConfigError` for a source Brewline cannot read safely, and
    :class:`TransientError` when the source goes away mid-extract (nothing is
    advanced; the next extract repeats the window).
    """
    import psycopg
    from psycopg.conninfo import make_conninfo

    started = time.perf_counter()
    with ledger.held():  # one open of a shared DuckDB file, not one per table
        cursors = {table: None if full else ledger.get_cursor(SOURCE, table) for table in TABLES}
    conninfo = make_conninfo(source_url, connect_timeout=10)

    def store(table: str, columns: list[tuple[str, str]], frame: pl.DataFrame) -> None:
        frame = _in_key_order(frame.select(_cast(name, kind) for name, kind in columns), table)
        key = f"raw/{table}/extracted={bound.date().isoformat()}/{result.extract_id}.parquet"
        if frame.height:
            lake.put_parquet(key, frame)
        result.tables[table] = {
            "key": key if frame.height else None,
            "rows": frame.height,
            "since": cursors[table],
            "until": bound.isoformat(),
        }

    try:
        with psycopg.connect(conninfo, autocommit=True) as con:
            now, bound = _bound(con)
            result = Extract(_extract_id(bound), bound, full, (now - bound).total_seconds())
            con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                snapshot = export_snapshot(con)  # valid while this transaction is open
                jobs: list[tuple[str, Callable[[pl.DataFrame], None]]] = []
                for table in _largest_first(con):
                    columns = _columns(con, table)
                    query = _query(table, columns, cursors[table], bound).as_string(con)
                    jobs.append((query, partial(store, table, columns)))
                _read_all(conninfo, snapshot, jobs)
            finally:
                # Closing ends the read-only transaction (and the snapshot's export):
                # no ROLLBACK to attempt, and to report as a second error, on a source
                # that went away while only the readers were talking to it.
                con.close()
    except psycopg.OperationalError as exc:
        raise TransientError(f"the totesys source went away: {first_line(exc)}") from None
    lake.put_json(f"{MANIFESTS}{result.extract_id}.json", result.manifest())  # last: now durable
    with ledger.held():
        for table in TABLES:
            ledger.set_cursor(SOURCE, table, bound.isoformat())
    result.seconds = time.perf_counter() - started
    return result


_READERS = 2
"""Connections reading at once: the source sends two tables while the client decodes
two, which keeps a small machine's cores busy (one reader leaves the source waiting
on the client). Each table read frees its connection, then is typed and written in
its own thread while the next tables are read."""


def _read_all(
    conninfo: str,
    snapshot: str,
    jobs: list[tuple[str, Callable[[pl.DataFrame], None]]],
) -> None:
    """Run each ``(query, store)`` on one of ``_READERS`` connections sharing
    ``snapshot``, then ``store`` its frame off the connection: at most ``_READERS + 1``
    tables in memory at once. Stops at the first error."""
    readers: queue.Queue[SnapshotReader] = queue.Queue()

    def run(query: str, store: Callable[[pl.DataFrame], None]) -> None:
        reader = readers.get()
        try:
            frame = reader.read(query)
        finally:
            readers.put(reader)
        store(frame)

    with ExitStack() as stack:
        for reader in stack.enter_context(snapshot_readers(conninfo, snapshot, _READERS)):
            readers.put(reader)
        workers = stack.enter_context(
            ThreadPoolExecutor(_READERS + 1, thread_name_prefix="brewline-extract")
        )
        done = [workers.submit(run, query, store) for query, store in jobs]
        try:
            for future in done:
                future.result()
        finally:  # on an error, tables not started yet are not read
            for future in done:
                future.cancel()


def _largest_first(con: psycopg.Connection[Any]) -> list[str]:
    """The tables by estimated size, largest first: the last table's typing and write
    (the one step nothing overlaps) is then a small one. Order does not matter to the
    snapshot, and the manifest lists tables by name."""
    sizes = dict(
        con.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = current_schema()::regnamespace"
        ).fetchall()
    )
    return sorted(TABLES, key=lambda t: -float(sizes.get(t) or 0))


def _bound(con: psycopg.Connection[Any]) -> tuple[dt.datetime, dt.datetime]:
    """The source's clock now, and the bound of this extract's window."""
    row = con.execute(_OPEN_TRANSACTIONS).fetchone()
    assert row is not None
    now, oldest, hidden = row
    if hidden:
        raise ConfigError(
            f"the totesys source hides {hidden} other session(s) from this role, so an extract "
            "cannot tell which transactions are still open: GRANT pg_read_all_stats TO the "
            "extract role"
        )
    bound = min(now, oldest) if oldest is not None else now
    return now, bound - _MARGIN


def _query(
    table: str, columns: list[tuple[str, str]], since: str | None, bound: dt.datetime
) -> sql.Composed:
    """One table's rows in the window, in no particular order (see ``_in_key_order``)."""
    from psycopg import sql

    where = sql.SQL("last_updated < {bound}").format(bound=sql.Literal(bound))
    if since is not None:
        where = (
            sql.SQL("{since} <= last_updated AND ").format(
                since=sql.Literal(dt.datetime.fromisoformat(since))
            )
            + where
        )
    return sql.SQL("SELECT {cols} FROM {table} WHERE {where}").format(
        cols=sql.SQL(", ").join(_selected(name, kind) for name, kind in columns),
        table=sql.Identifier(table),
        where=where,
    )


def _in_key_order(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """The rows by id, as the lake keeps them. Sorted here, not by an ``ORDER BY``: a
    table read whole comes in heap order, which is id order unless rows were updated,
    and a sequential scan costs the source a fifth less than walking the primary key."""
    key = f"{table}_id"
    return frame if frame[key].is_sorted() else frame.sort(key)


_SENT_AS_IS = frozenset(
    ("integer", "bigint", "smallint", "boolean", "date", "text", "character varying", "character")
)
"""Types the driver reads into exactly the values the lake keeps (``_dtype``)."""


def _selected(name: str, kind: str) -> sql.Composable:
    """A column as the source sends it: the types of ``_SENT_AS_IS`` as they are; a
    timestamp rounded by the source to the millisecond the lake keeps (a no-op for
    ``timestamp(3)``, which the planner drops); a numeric and any other type as its
    text, which keeps every digit (``_cast`` makes a numeric a Decimal; the rest stays
    text, as a ``COPY`` would write it)."""
    from psycopg import sql

    column = sql.Identifier(name)
    if kind == "timestamp with time zone":  # its UTC wall time: epoch milliseconds
        return sql.SQL("CAST({c} AT TIME ZONE 'UTC' AS timestamp(3)) AS {c}").format(c=column)
    if kind.startswith("timestamp"):
        return sql.SQL("CAST({c} AS timestamp(3)) AS {c}").format(c=column)
    if kind in _SENT_AS_IS:
        return column
    return sql.SQL("CAST({c} AS text) AS {c}").format(c=column)


def _columns(con: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    if not rows:
        raise ConfigError(f"the totesys source has no table {table!r}: is it the right database?")
    private = NOT_EXTRACTED.get(table, ())
    return [(str(name), str(kind)) for name, kind in rows if name not in private]


_NUMERIC = 38, 9  # numeric without a declared scale: exact, with room to spare


def _dtype(kind: str) -> pl.DataType:
    import polars as pl

    if kind in ("integer", "bigint", "smallint"):
        return pl.Int64()
    if kind == "numeric":
        return pl.Decimal(*_NUMERIC)
    if kind == "boolean":
        return pl.Boolean()
    if kind.startswith("timestamp"):
        return pl.Datetime("ms")
    if kind == "date":
        return pl.Date()
    return pl.String()


def _cast(name: str, kind: str) -> pl.Expr:
    """A column as the lake keeps it (strict: a value that does not fit fails the extract)."""
    import polars as pl

    dtype = _dtype(kind)
    if isinstance(dtype, pl.String):
        return pl.col(name)
    return pl.col(name).cast(dtype, strict=True).alias(name)


def _extract_id(bound: dt.datetime) -> str:
    return f"{bound:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
