"""Incremental extract of the totesys tables into the lake's raw zone, exactly.

Each table is read from one ``REPEATABLE READ`` snapshot (shared by every
table: the extract's connection exports it, and the connections that read the
tables, two at a time, import it; see :mod:`brewline.totesys.snapshot`). What
is read is decided by transaction ids, not by ``last_updated``: each table's
cursor (kept in the warehouse ledger) says which transactions the previous
extract had seen, and this one takes the row versions every other transaction
wrote (:mod:`brewline.totesys.cursor`). Before opening its snapshot, it reads
the source's next transaction id and every id below it still in progress: the
new cursor. A transaction open then (even one that commits hours later with
timestamps from long before, a prepared one, or a subtransaction of either) is
in that list; one that had not written yet gets a later id. So a row version is
never skipped, whatever its ``last_updated``, its writer's clock or anyone's
time zone, and an update is seen even when it leaves ``last_updated`` as it
was. Deletes are not seen (no row is left to read).

Requirements, checked: ``SELECT`` on the tables (``pg_current_snapshot()`` and
``pg_xact_status()`` need no privilege; ``pg_read_all_stats`` is no longer
needed) and a primary, not a hot standby.

Every table is scanned (the predicate is on a system column, which no index
covers), except when no transaction id was assigned on the source since the
previous extract (nothing can have been written). ``full=True`` reads every row.

A killed extract leaves files without a manifest (never read) and the cursors
where they were; the next extract reads the same row versions again.
"""

from __future__ import annotations

import datetime as dt
import json
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
from brewline.totesys.cursor import XidCursor, is_usable, parse, since
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


@dataclass
class Extract:
    """What one extract wrote: per table its key, rows and the cursors it read between."""

    extract_id: str
    cursor: XidCursor
    """Where the tables' cursors move to once the files are durable."""
    full: bool
    lag_seconds: float
    """How long the oldest transaction still writing on the source has been open (0 when
    none is; only sessions this role may see into, and prepared transactions)."""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(int(t["rows"]) for t in self.tables.values())

    def manifest(self) -> dict[str, Any]:
        return {
            "extract_id": self.extract_id,
            "cursor": json.loads(self.cursor.dump()),
            "lag_seconds": round(self.lag_seconds, 3),
            "full": self.full,
            "tables": self.tables,
        }


def extract(source_url: str, lake: Lake, ledger: Ledger, *, full: bool = False) -> Extract:
    """Extract the row versions each table's cursor has not seen into ``lake``; advance them.

    Raises :class:`ConfigError` for a source Brewline cannot read safely, and
    :class:`TransientError` when the source goes away mid-extract (nothing is
    advanced; the next extract reads the same row versions again).
    """
    import psycopg
    from psycopg.conninfo import make_conninfo

    started = time.perf_counter()
    with ledger.held():  # one open of a shared DuckDB file, not one per table
        stored = {table: None if full else ledger.get_cursor(SOURCE, table) for table in TABLES}
    cursors = {table: parse(value) for table, value in stored.items()}
    conninfo = make_conninfo(source_url, connect_timeout=10)

    def store(table: str, columns: list[tuple[str, str]], frame: pl.DataFrame) -> None:
        frame = _in_key_order(frame.select(_cast(name, kind) for name, kind in columns), table)
        day = result.cursor.watermark.date().isoformat()
        key = f"raw/{table}/extracted={day}/{result.extract_id}.parquet"
        if frame.height:
            lake.put_parquet(key, frame)
        newest = frame["last_updated"].max() if frame.height else None
        result.tables[table] = {
            "key": key if frame.height else None,
            "rows": frame.height,
            "since": stored[table],
            "newest_last_updated": newest.isoformat() if newest else None,  # type: ignore[union-attr]
        }

    try:
        with _connected(conninfo) as con:
            seen, lag = _transactions(con)  # before the snapshot: see the function
            result = Extract(_extract_id(seen.watermark), seen, full, lag)
            con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                snapshot, source_next = _snapshot(con)  # valid while this transaction is open
                jobs: list[tuple[str, Callable[[pl.DataFrame], None]]] = []
                for table in _largest_first(con):
                    columns = _columns(con, table)
                    cursor = cursors[table]
                    if cursor is not None and cursor.is_idle_at(source_next):
                        store(table, columns, _empty(columns))
                        continue
                    if cursor is not None and not is_usable(cursor, source_next):
                        cursor = None  # read whole once: see brewline.totesys.cursor
                    query = _query(table, columns, cursor).as_string(con)
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
            ledger.set_cursor(SOURCE, table, seen.dump())
    result.seconds = time.perf_counter() - started
    return result


def _connected(conninfo: str) -> psycopg.Connection[Any]:
    """The extract's connection to the source; refused in one line naming the source
    when there is none (a source that answered, then went away, is told apart)."""
    import psycopg

    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise TransientError(f"cannot connect to the totesys source: {first_line(exc)}") from None


_TRANSACTIONS = """
WITH now AS (SELECT pg_current_snapshot() AS s, clock_timestamp() AS at)
SELECT pg_snapshot_xmax(s)::text::bigint,
       CASE WHEN pg_snapshot_xmax(s)::text::bigint - pg_snapshot_xmin(s)::text::bigint
                 <= %(most)s
            THEN ARRAY(SELECT x FROM generate_series(pg_snapshot_xmin(s)::text::bigint,
                                                     pg_snapshot_xmax(s)::text::bigint - 1) x
                       WHERE pg_xact_status(x::text::xid8) = 'in progress') END,
       pg_snapshot_xmin(s)::text::bigint,
       at AT TIME ZONE 'UTC',
       pg_is_in_recovery(),
       extract(epoch FROM at - least(
           (SELECT min(xact_start) FROM pg_stat_activity
            WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()),
           (SELECT min(prepared) FROM pg_prepared_xacts)))
FROM now
"""
"""The next transaction id; every id below it still in progress (subtransactions and
prepared transactions included: ``pg_xact_status`` knows them, a snapshot's list and
``pg_locks`` do not); the oldest of them; the source's clock in UTC (whatever the
session's time zone); whether it is a standby; how long its oldest writing transaction
has been open."""

_MOST_ASKED = 1_000_000
"""At most this many ids are asked about (about a second of the source's time); beyond
(a transaction left open on a busy source) the cursor starts at the oldest open id
instead, which reads again, exactly, what was written since it began."""


def _transactions(con: psycopg.Connection[Any]) -> tuple[XidCursor, float]:
    """The cursor this extract will leave, and the lag (:attr:`Extract.lag_seconds`).

    One statement, before the extract's snapshot: an id still in progress when that
    snapshot is taken either was assigned later (at or after the next id) or was in
    progress here already (and was listed): both are read by the next extract.
    """
    row = con.execute(_TRANSACTIONS, {"most": _MOST_ASKED}).fetchone()
    assert row is not None
    next_xid, in_progress, oldest, now, standby, lag = row
    if standby:
        raise ConfigError(
            "the totesys source is a hot standby, which cannot tell which of the primary's "
            "transactions are still open: extract from the primary"
        )
    lag = max(float(lag or 0), 0.0)
    if in_progress is None:
        return XidCursor(int(oldest), (), now), lag
    return XidCursor(int(next_xid), tuple(int(x) for x in in_progress), now), lag


def _snapshot(con: psycopg.Connection[Any]) -> tuple[str, int]:
    """The exported snapshot of ``con``'s open transaction and the next id it sees."""
    snapshot = export_snapshot(con)  # the transaction's first statement: its snapshot
    row = con.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()
    assert row is not None
    return snapshot, int(row[0])


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


def _query(table: str, columns: list[tuple[str, str]], cursor: XidCursor | None) -> sql.Composed:
    """The table's row versions ``cursor`` has not seen (all of them without one), in no
    particular order (see ``_in_key_order``)."""
    from psycopg import sql

    query = sql.SQL("SELECT {cols} FROM {table}").format(
        cols=sql.SQL(", ").join(_selected(name, kind) for name, kind in columns),
        table=sql.Identifier(table),
    )
    return query if cursor is None else query + sql.SQL(" WHERE ") + since(cursor)


def _empty(columns: list[tuple[str, str]]) -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(schema={name: _dtype(kind) for name, kind in columns})


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


_READABLE = """
SELECT has_table_privilege(c.oid, 'SELECT'), current_user FROM pg_class c
WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
"""


def _columns(con: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    """The table's columns but the private ones; refused, in words a DBA can act on, when
    the table is missing or this role may not read it (``information_schema`` lists no
    column of a table a role may not read, which looked like a missing table)."""
    readable = con.execute(_READABLE, (table,)).fetchone()
    if readable is None:
        raise ConfigError(f"the totesys source has no table {table!r}: is it the right database?")
    if not readable[0]:
        raise ConfigError(
            f"the role {readable[1]} may not read the totesys table {table!r}: "
            f'GRANT SELECT ON "{table}" TO {readable[1]} (or ON ALL TABLES IN SCHEMA)'
        )
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
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


def _extract_id(moment: dt.datetime) -> str:
    return f"{moment:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
