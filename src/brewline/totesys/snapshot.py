"""Read queries as Arrow from one exported PostgreSQL snapshot, on connections of their own.

An extract reads every table from one ``REPEATABLE READ`` snapshot (see
:mod:`brewline.totesys.extract`). Its own connection exports that snapshot
(``pg_export_snapshot()``) and keeps its transaction open; each
:class:`SnapshotReader` opens an ADBC connection and imports it before reading
anything (``SET TRANSACTION SNAPSHOT``), so all of them see exactly what the
exporting transaction sees, and two readers may read two tables at once.

ADBC's PostgreSQL driver reads ``COPY ... (FORMAT binary)`` into Arrow in C++:
no Python per row (psycopg hands a ``COPY`` to Python one row at a time) and
no text to parse. Frames come straight from its Arrow stream, without pyarrow.

    >>> with snapshot_readers(conninfo, snapshot, 2) as (first, second):  # doctest: +SKIP
    ...     frame = first.read("SELECT * FROM sales_order")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any

from brewline.errors import TransientError, first_line

if TYPE_CHECKING:
    import polars as pl

__all__ = ["SnapshotReader", "export_snapshot", "snapshot_readers"]


def export_snapshot(con: Any) -> str:
    """The id of the snapshot of ``con``'s open ``REPEATABLE READ`` transaction (a
    psycopg connection), for readers to import while that transaction stays open."""
    row = con.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


@contextmanager
def snapshot_readers(conninfo: str, snapshot: str, count: int) -> Iterator[list[SnapshotReader]]:
    """``count`` readers of ``snapshot``, each on its own connection, all opened from one
    driver database: it loads the source's type catalog once (~40 ms), not per reader.

    Raises :class:`TransientError` when the source cannot be reached.
    """
    import adbc_driver_postgresql

    with _errors():
        database = adbc_driver_postgresql.connect(conninfo)
    with _closing(database), ExitStack() as readers:
        yield [readers.enter_context(SnapshotReader(database, snapshot)) for _ in range(count)]


class SnapshotReader:
    """One ADBC connection reading from an exported snapshot (read only).

    Raises :class:`TransientError` when the source goes away (connecting or reading);
    other driver errors (bad SQL, a snapshot no longer exported) propagate as they are.
    """

    def __init__(self, database: Any, snapshot: str) -> None:
        """``database``: an ``AdbcDatabase`` of the source (see :func:`snapshot_readers`)."""
        self._database, self._snapshot = database, snapshot

    def __enter__(self) -> SnapshotReader:
        import adbc_driver_manager

        with ExitStack() as opened, _errors():
            self._connection = adbc_driver_manager.AdbcConnection(self._database)
            opened.enter_context(_closing(self._connection))
            self._statement = adbc_driver_manager.AdbcStatement(self._connection)
            opened.enter_context(_closing(self._statement))
            # The connection is in autocommit, so the driver sends no BEGIN of its own:
            # this transaction is ours, and its first statement imports the snapshot.
            self._update("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._update(f"SET TRANSACTION SNAPSHOT '{_quoted(self._snapshot)}'")
            self._opened = opened.pop_all()  # open: closed by __exit__
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._opened.__exit__(kind, error, trace)  # which ends the read-only transaction

    def read(self, query: str) -> pl.DataFrame:
        """The rows of ``query``, typed as the driver maps the source's types."""
        import polars as pl

        with _errors():
            self._statement.set_sql_query(query)
            stream, _ = self._statement.execute_query()
            try:
                return pl.DataFrame(stream)
            except pl.exceptions.ComputeError as exc:
                # A driver error while streaming reaches us as Polars' error, its kind
                # lost: ask the connection, so that a source gone away is transient.
                if not self._connected():
                    raise TransientError(
                        f"the totesys source went away: {first_line(exc)}"
                    ) from None
                raise

    def _connected(self) -> bool:
        import adbc_driver_manager

        try:
            self._update("SELECT 1")
        except adbc_driver_manager.OperationalError:
            return False
        except adbc_driver_manager.Error:  # it answered (a failed transaction refuses)
            return True
        return True

    def _update(self, statement: str) -> None:
        self._statement.set_sql_query(statement)
        self._statement.execute_update()


@contextmanager
def _errors() -> Iterator[None]:
    """The driver's "the server went away" errors as :class:`TransientError`."""
    import adbc_driver_manager

    try:
        yield
    except adbc_driver_manager.OperationalError as exc:
        raise TransientError(f"the totesys source went away: {first_line(exc)}") from None


@contextmanager
def _closing(handle: Any) -> Iterator[None]:
    """Close a driver handle on the way out. A connection the source already dropped
    cannot close cleanly and has nothing to lose: on an error, that is not raised."""
    import adbc_driver_manager

    try:
        yield
    except BaseException:
        with suppress(adbc_driver_manager.Error):
            handle.close()
        raise
    handle.close()


def _quoted(text: str) -> str:
    return text.replace("'", "''")
