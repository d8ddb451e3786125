"""The server warehouse: PostgreSQL through psycopg 3, bulk COPY, set-based SQL.

Frames are staged with binary ``COPY ... FROM STDIN`` (encoded from Arrow by
pgpq in one vectorised pass) into temporary tables dropped at commit, and facts
are copied straight into their tables; the loading SQL is the same as DuckDB's
(:class:`~brewline.load.warehouse.SqlWarehouse`).

Runners on the same server serialise their *commits* on an advisory lock
while parsing in parallel; a file another runner committed meanwhile is
reported as skipped, never loaded twice. Connection failures are transient
and retried with bounded backoff by the pipeline; the URL's password is never
printed (see :func:`brewline.load.open.redact`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl
import psycopg
from pgpq import ArrowToPostgresBinaryEncoder

from brewline.errors import TransientError, WarehouseBusy, WarehouseError, first_line
from brewline.keys import stable_key
from brewline.load.locations import redact
from brewline.load.roles import Params
from brewline.load.warehouse import SqlWarehouse
from brewline.schema import TYPES

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PostgresWarehouse", "binary_copy_chunks", "binary_copy_payload"]


class _WithoutCopyTeardownNoise(logging.Filter):
    """psycopg warns "error ignored terminating Copy" when a COPY dies with its connection.

    The error that ended the COPY is Brewline's to report (and retry); the
    teardown's own failure says nothing more, so it is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


logging.getLogger("psycopg").addFilter(_WithoutCopyTeardownNoise())

_COPY_CHUNK_ROWS = 65_536
"""Rows encoded per piece of a COPY: a few MB, enough to amortise each write."""
_LOADER_LOCK = 0x42726577  # "Brew": one committer at a time per server
_LOCK_POLL = 0.05


class PostgresWarehouse(SqlWarehouse):
    """A warehouse in a PostgreSQL database (``postgresql://user:pass@host:port/db``)."""

    engine = "postgres"

    def __init__(self, url: str, *, read_only: bool = False, lock_timeout: float = 30.0):
        self.display_name = redact(url)
        self._url = url
        self._read_only = read_only
        self._lock_timeout = lock_timeout
        self._run_lock: int | None = None
        self._con = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            con = psycopg.connect(
                self._url, autocommit=True, connect_timeout=10, application_name="brewline"
            )
        except psycopg.OperationalError as exc:
            raise TransientError(
                f"cannot reach PostgreSQL at {self.display_name}: {first_line(exc)}"
            ) from None
        con.read_only = self._read_only
        # Whatever the server's default: a transaction re-reads the ledger (or the schema
        # version) after waiting for the commit lock, and must see what was committed meanwhile.
        con.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        return con

    def close(self) -> None:
        self._con.close()

    def reconnect(self) -> None:
        self._con.close()
        self._con = self._connect()
        if self._run_lock is not None:
            self._execute("SELECT pg_advisory_lock(?)", (self._run_lock,))

    def begin_run(self, run_id: str, host: str, pid: int) -> None:
        """Hold a session lock for the run's lifetime: a dead runner's lock vanishes with it."""
        self._run_lock = stable_key("run", run_id)
        self._execute("SELECT pg_advisory_lock(?)", (self._run_lock,))
        super().begin_run(run_id, host, pid)

    def run_is_alive(self, run_id: str) -> bool:
        """A run is alive while its session holds its lock (a dead runner's vanishes)."""
        lock = stable_key("run", run_id)
        if lock == self._run_lock:
            return True
        if not self._fetch("SELECT pg_try_advisory_lock(?)", (lock,))[0][0]:
            return True
        self._execute("SELECT pg_advisory_unlock(?)", (lock,))
        return False

    def _execute(self, sql: str, params: Params = ()) -> None:
        with _errors(self.display_name):
            self._con.execute(_pg(sql), list(params) or None)

    def _fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with _errors(self.display_name):
            return self._con.execute(_pg(sql), list(params) or None).fetchall()

    def _frame(self, sql: str, params: Params = ()) -> pl.DataFrame:
        with _errors(self.display_name):
            cursor = self._con.execute(_pg(sql), list(params) or None)
            schema = {c.name: _polars_type(c) for c in cursor.description or []}
            return pl.DataFrame(cursor.fetchall(), schema=schema, orient="row")

    def _stage(self, name: str, frame: pl.DataFrame) -> None:
        columns = ", ".join(f"{c} {_pg_type(t)}" for c, t in frame.schema.items())
        with _errors(self.display_name):
            # Identifiers come from Brewline's own frames, never from input data.
            self._con.execute(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")
        self._copy(name, frame)

    def _append(self, table: str, frame: pl.DataFrame) -> None:
        """COPY straight into the fact table: no staging copy for the big frames."""
        self._copy(table, frame)

    def _copy(self, table: str, frame: pl.DataFrame) -> None:
        """One binary ``COPY ... FROM STDIN``, encoded from Arrow by pgpq in a vectorised pass.

        Binary COPY skips text parsing on the server: about 3x faster than CSV here.
        The payload is encoded and sent a slice at a time, so the server inserts
        one slice while the next is encoded (the whole payload first left the
        server idle for the 1.4 s it took to encode a million sales' facts).
        """
        if frame.is_empty():
            return
        columns = ", ".join(frame.columns)
        with (
            _errors(self.display_name),
            self._con.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)") as copy,
        ):
            for chunk in binary_copy_chunks(frame):
                copy.write(chunk)

    def _lock_loader(self) -> None:
        """Take the commit lock, waiting at most ``lock_timeout`` seconds for its holder.

        Polled with ``pg_try_advisory_xact_lock`` rather than a blocking wait, so
        a session that never lets go (a stuck runner, anyone's stray lock) makes
        the run fail clearly instead of hang.
        """
        deadline = time.monotonic() + self._lock_timeout
        while not self._fetch("SELECT pg_try_advisory_xact_lock(?)", (_LOADER_LOCK,))[0][0]:
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"PostgreSQL at {self.display_name}: another session has held Brewline's "
                    f"commit lock for over {self._lock_timeout:g}s (lock_timeout); "
                    "retry when that run has finished"
                )
            time.sleep(_LOCK_POLL)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with _errors(self.display_name), self._con.transaction():
            yield


def _microseconds(arrow: pa.Table) -> pa.Table:
    """Times at PostgreSQL's precision (Polars keeps them in nanoseconds)."""
    import pyarrow as pa

    fields = [
        pa.field(f.name, pa.time64("us"), f.nullable) if pa.types.is_time64(f.type) else f
        for f in arrow.schema
    ]
    return arrow.cast(pa.schema(fields)) if fields != list(arrow.schema) else arrow


def binary_copy_payload(frame: pl.DataFrame) -> bytearray:
    """``frame`` in PostgreSQL's binary COPY format (header, rows, trailer)."""
    payload = bytearray()
    for chunk in binary_copy_chunks(frame):
        payload += chunk
    return payload


def binary_copy_chunks(frame: pl.DataFrame, rows: int = _COPY_CHUNK_ROWS) -> Iterator[bytes]:
    """``frame`` in PostgreSQL's binary COPY format, in pieces of about ``rows`` rows."""
    arrow = _microseconds(frame.to_arrow())
    encoder = ArrowToPostgresBinaryEncoder(arrow.schema)
    yield encoder.write_header()
    for batch in arrow.to_batches(max_chunksize=rows):
        yield encoder.write_batch(batch)
    yield encoder.finish()


def _pg(sql: str) -> str:
    """Brewline's portable SQL uses ``?`` placeholders; psycopg wants ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


_POLARS_BY_OID: dict[int, pl.DataType] = {
    oid: kind.polars_type() for kind in TYPES for oid in kind.oids
} | {700: pl.Float32(), 1184: pl.Datetime("us", "UTC")}
"""Result column types by PostgreSQL type OID, so empty results keep their types."""


def _polars_type(column: Any) -> pl.DataType:
    """Result column type from PostgreSQL's description; exact money stays Decimal."""
    if column.type_code == 1700:  # numeric keeps the scale the query gave it
        return pl.Decimal(38, column.scale if column.scale is not None else 2)
    return _POLARS_BY_OID.get(column.type_code, pl.String())


_SQL_BY_POLARS: dict[pl.DataType, str] = {kind.polars_type(): kind.sql for kind in TYPES} | {
    pl.UInt32(): "BIGINT",
    pl.Null(): "TEXT",
}
"""Staged column types from the declared logical types (plus what Polars makes of empty data)."""


def _pg_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return f"NUMERIC({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP"
    try:
        return _SQL_BY_POLARS[dtype]
    except KeyError:
        raise WarehouseError(f"no PostgreSQL type for staged column type {dtype}") from None


@contextmanager
def _errors(where: str) -> Iterator[None]:
    """Map psycopg errors onto Brewline's tree: lost connections are transient."""
    try:
        yield
    except psycopg.errors.DiskFull as exc:  # an OperationalError, but waiting frees no space
        raise WarehouseError(
            f"disk full on the PostgreSQL server {where} ({first_line(exc)}): free space "
            "and run again"
        ) from None
    except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
        raise TransientError(f"PostgreSQL at {where}: {first_line(exc)}") from None
    except psycopg.Error as exc:
        raise WarehouseError(f"PostgreSQL at {where}: {first_line(exc)}") from None
