"""The embedded default warehouse: a DuckDB file.

DuckDB lets one process at a time open a file for writing, and no other
process read it meanwhile. A loader therefore opens it with ``share=True``:
it holds the file only while a transaction runs (a commit of a batch, a
ledger update) and lets go between them, unless told to keep it
(:meth:`held`: a run keeps it across back-to-back commits for a second at
most), so dashboards, ``report`` and other runners get their turn while it
parses the next batch. A process waiting for the file says so with a marker
beside it; a run lets waiting readers in before its next commit, and a
reader lets a waiting run in first. Every open waits up to
``lock_timeout`` seconds for the file, then gives up with
:class:`~brewline.errors.WarehouseBusy`. Runners interleaving their commits
never load a file twice: the loader checks the ledger inside each
transaction, as on PostgreSQL.

Each run holds an exclusive ``flock`` on a small file beside the warehouse
(``<file>.run-<id>.lock``) for its lifetime; the kernel drops it when the
process dies, which is how ``status`` and the next runner tell a dead run
(``abandoned``) from a live one. Runners remove the lock files nobody holds.

    >>> with DuckDBWarehouse(":memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.query("SELECT count(*) AS n FROM fact_sale")["n"][0]
    3
    0
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import duckdb
import polars as pl

from brewline.errors import ConfigError, WarehouseBusy, WarehouseError, first_line, out_of_room
from brewline.load.locations import require_folder
from brewline.load.roles import Params
from brewline.load.warehouse import SqlWarehouse

__all__ = ["DuckDBWarehouse"]

_RETRY_EVERY = 0.05
_TURN_SECONDS = 2.0
_WAITING = ".waiting-"
"""Beside the warehouse, ``<file>.waiting-<pid>-<thread>`` says a process waits to open it."""
_WRITER_WAITING = f"{_WAITING}writer-"
"""``<file>.waiting-writer-<pid>-<thread>``: the one waiting wants to write."""
_NO_EXTENSION_DOWNLOADS: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""Brewline never lets DuckDB fetch or load extensions behind its back."""
_MEMORY = ":memory:"


class DuckDBWarehouse(SqlWarehouse):
    """A warehouse in one DuckDB file (or ``:memory:``)."""

    engine = "duckdb"

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        lock_timeout: float = 30.0,
        share: bool = False,
    ):
        self.display_name = str(path)
        self._path = str(path)
        self._read_only = read_only
        self._lock_timeout = lock_timeout
        self._share = share and self._path != _MEMORY
        self._staged: list[str] = []
        self._in_transaction = False
        self._held = 0
        self._waiters = _Waiters(self._path, _WAITING)
        self._run_lock: IO[str] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._connection()  # a missing file or a busy one fails now, not at first use

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        self._drop_run_lock()

    # -- the file, held only as long as needed -----------------------------------------

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = _connect(
                self._path, read_only=self._read_only, lock_timeout=self._lock_timeout
            )
        return self._con

    def _release(self) -> None:
        """Between transactions a shared connection lets go of the file."""
        busy = self._in_transaction or self._held
        if self._share and not busy and self._con is not None:
            self._con.close()
            self._con = None

    def wanted_elsewhere(self, *, for_seconds: float = 0.0) -> bool:
        if not self._share:  # an in-memory warehouse is never shared
            return False
        since = time.time_ns() - int(for_seconds * 1e9)  # a marker is made when its wait starts
        return any(mtime <= since for _, _, mtime in self._waiters.now())

    def make_way(self) -> None:
        """Wait until the processes waiting for the file, which this one has let go,
        have opened it: at most :data:`_TURN_SECONDS`, and not for later arrivals, so
        a stream of readers cannot stall a run. A waiter that did not open it in that
        time (stopped, frozen) is not waited for again."""
        if self._share:  # an in-memory warehouse is never shared
            self._waiters.wait_out(until=time.monotonic() + _TURN_SECONDS)

    @contextmanager
    def held(self) -> Iterator[None]:
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            self._release()

    @contextmanager
    def _using(self) -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            with _errors(self.display_name):
                yield self._connection()
        finally:
            self._release()

    # -- runs: alive while their process holds a lock --------------------------------------

    def begin_run(self, run_id: str, host: str, pid: int) -> None:
        self._run_lock = _hold_run_lock(self._path, run_id)
        super().begin_run(run_id, host, pid)

    def finish_run(self, run_id: str, status: str, totals: dict[str, Any]) -> None:
        super().finish_run(run_id, status, totals)
        self._drop_run_lock()

    def _drop_run_lock(self) -> None:
        if self._run_lock is not None:
            Path(self._run_lock.name).unlink(missing_ok=True)
            self._run_lock.close()
            self._run_lock = None

    def run_is_alive(self, run_id: str) -> bool:
        return self._path != _MEMORY and _lock_is_held(_run_lock_path(self._path, run_id))

    def _abandon_stale_runs(self) -> None:
        super()._abandon_stale_runs()
        if self._path != _MEMORY:
            _remove_free_run_locks(self._path)

    def _lock_loader(self) -> None:
        """Nothing to do: holding the file for writing already excludes other committers."""

    # -- engine primitives -------------------------------------------------------------------

    def _execute(self, sql: str, params: Params = ()) -> None:
        with self._using() as con:
            con.execute(sql, list(params))

    def _fetch(self, sql: str, params: Params = ()) -> list[tuple[object, ...]]:
        with self._using() as con:
            return con.execute(sql, list(params)).fetchall()

    def _frame(self, sql: str, params: Params = ()) -> pl.DataFrame:
        with self._using() as con:
            table = con.sql(sql, params=list(params)).to_arrow_table()
        return pl.from_arrow(table)  # type: ignore[return-value]

    def _append(self, table: str, frame: pl.DataFrame) -> None:
        """Append without preserving the frame's row order (rows have keys, not positions).

        Unordered, DuckDB writes a big append's row groups in parallel straight
        into the file; ordered, it rewrote them at the next checkpoint, which
        doubled the file and cost a second per million sales when the shared
        connection closed after each batch.
        """
        con = self._connection()
        con.execute("SET preserve_insertion_order = false")
        try:
            super()._append(table, frame)
        finally:
            con.execute("RESET preserve_insertion_order")

    def _stage(self, name: str, frame: pl.DataFrame) -> None:
        self._connection().register(name, frame.to_arrow())
        self._staged.append(name)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        con = self._connection()
        con.begin()
        self._in_transaction = True
        try:
            yield
        except BaseException:
            con.rollback()
            raise
        else:
            try:
                with _errors(self.display_name):  # a full disk fails here, not in the statements
                    con.commit()
            except WarehouseError:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                raise
        finally:
            for name in self._staged:
                con.unregister(name)
            self._staged.clear()
            self._in_transaction = False
            self._release()


def _run_lock_path(path: str, run_id: str) -> Path:
    return Path(f"{path}.run-{run_id}.lock")


def _hold_run_lock(path: str, run_id: str) -> IO[str] | None:
    """Take this run's lock, held until the run finishes or the process dies."""
    if path == _MEMORY:
        return None
    lock = _run_lock_path(path, run_id)
    while True:
        handle = lock.open("w")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # A runner clearing free locks may have removed the file between our open and
        # our flock; a lock on a removed file guards nothing, so make it anew.
        if _same_file(handle, lock):
            break
        handle.close()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _lock_is_held(lock: Path) -> bool:
    """A process holds ``lock`` (a run's lock file): only asks, never creates or removes it."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:  # gone: its run finished, or a runner cleared it after the run died
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove_free_run_locks(path: str) -> None:
    """Remove the lock files nobody holds: of runs that died, or that were killed after
    recording their end but before removing their lock (which would stay for good)."""
    for name in glob.glob(f"{glob.escape(path)}.run-*.lock"):
        try:
            fd = os.open(name, os.O_RDONLY)  # not created if another runner just removed it
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            Path(name).unlink(missing_ok=True)  # under the lock: see _hold_run_lock
        except BlockingIOError:
            pass  # a live run's
        finally:
            os.close(fd)


@contextmanager
def _errors(where: str) -> Iterator[None]:
    """DuckDB's own errors become Brewline's (terminal: DuckDB has no network to lose)."""
    try:
        yield
    except duckdb.Error as exc:
        full = out_of_room(str(exc), where)  # terminal at once, with what to do about it
        raise WarehouseError(full or f"DuckDB warehouse {where}: {first_line(exc)}") from None


def _connect(path: str, *, read_only: bool, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    if path != ":memory:" and read_only and not Path(path).exists():
        require_folder(path)  # a typo'd path: `run` would refuse it too
        raise WarehouseError(f"no warehouse at {path}; load one with `brewline run`")
    if path != ":memory:" and not read_only:
        if "?" in os.path.dirname(path):  # DuckDB puts ".wal" before the first "?" of a path
            raise ConfigError(
                f"DuckDB cannot keep a warehouse at {path}: its log file's path breaks at "
                "the '?' in the folder name; choose a folder without '?'"
            )
        if not Path(path).exists():
            _create(path)
    deadline = time.monotonic() + lock_timeout
    # A reader lets a waiting writer in first: readers share the file with each other, so
    # a stream of them, each coming in while another is still in, would keep a run out.
    writers = _WRITERS.setdefault(path, _Waiters(path, _WRITER_WAITING)) if read_only else None
    if writers is not None and not writers.now():
        writers = None  # no run waits: nothing to let in first
    connection = None if writers is not None else _try_open(path, read_only=read_only)
    if connection is not None:
        return connection
    with _waiting(path, writer=not read_only):  # tell the holder we are waiting
        if writers is not None:  # for a turn at most, and at most half of this open's patience
            writers.wait_out(until=time.monotonic() + min(_TURN_SECONDS, lock_timeout / 2))
            connection = _try_open(path, read_only=read_only)  # one try, even with no patience
        while connection is None:
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"DuckDB warehouse {path} is in use by another process "
                    f"(waited {lock_timeout:g}s); retry when it has finished"
                ) from None
            time.sleep(_RETRY_EVERY)
            connection = _try_open(path, read_only=read_only)
        return connection


def _create(path: str) -> None:
    """Make a new, empty DuckDB file at ``path``, which other processes see only whole.

    DuckDB writes a new file's headers after creating it, and a runner that opens
    it in between reads a half-written file ("Could not read enough bytes"). So the
    file is made under a name of this process's own and hard-linked into place,
    which fails if another process got there first (then that one's file is used).
    A typo'd path must not grow folders and an empty warehouse: the folder must exist.
    """
    require_folder(path)
    draft = Path(f"{path}.new-{os.getpid()}-{threading.get_ident()}")
    try:
        with _errors(path):
            duckdb.connect(str(draft), config=dict(_NO_EXTENSION_DOWNLOADS)).close()
        _link_into_place(draft, Path(path))
    finally:
        draft.unlink(missing_ok=True)
        Path(f"{draft}.wal").unlink(missing_ok=True)


def _link_into_place(draft: Path, path: Path) -> None:
    """Give ``draft`` the name ``path`` unless something has that name already."""
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another runner created the warehouse first: everyone uses that one
    except OSError:  # a file system without hard links: rename, which may replace a twin
        if not path.exists():
            draft.rename(path)


def _try_open(path: str, *, read_only: bool) -> duckdb.DuckDBPyConnection | None:
    """A connection, or None while another process holds the file's lock."""
    try:
        return duckdb.connect(path, read_only=read_only, config=dict(_NO_EXTENSION_DOWNLOADS))
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            full = out_of_room(str(exc), path)
            raise WarehouseError(full or f"cannot open DuckDB warehouse {path}: {exc}") from None
        return None


@contextmanager
def _waiting(path: str, *, writer: bool) -> Iterator[None]:
    """Say, for as long as this lasts, that this process waits to open ``path`` (to write,
    or to read).

    A marker file beside the warehouse, locked while its owner lives (a
    process that died leaves a stale one, which :func:`_others_waiting` clears).
    """
    me = f"{os.getpid()}-{threading.get_ident()}"
    kind = _WRITER_WAITING if writer else _WAITING
    marker, unready = Path(f"{path}{kind}{me}"), Path(f"{path}.unready-{me}")
    try:
        handle = unready.open("w")
    except OSError:  # a read-only folder: just wait without saying so
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        unready.rename(marker)  # seen only once locked, so never taken for a stale one
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)


_Marker = tuple[str, int, int]
"""A waiting marker: its name, inode and modification time (a new wait makes a new file)."""


class _Waiters:
    """The processes waiting for a file (all, or only writers), but those this process
    already gave a turn that they did not take (stopped, frozen): waiting for them again
    would cost every later turn the same wait."""

    def __init__(self, path: str, kind: str):
        self._path, self._kind = path, kind
        self._in_vain: set[_Marker] = set()

    def now(self) -> set[_Marker]:
        waiting = _others_waiting(self._path, self._kind)
        self._in_vain &= waiting  # forget the markers that are gone
        return waiting - self._in_vain

    def wait_out(self, *, until: float) -> None:
        """Wait until those waiting now got in (or gave up), not for later arrivals, or
        until ``until``."""
        waiting = self.now()
        while waiting and time.monotonic() < until:
            time.sleep(_RETRY_EVERY / 5)
            waiting &= _others_waiting(self._path, self._kind)
        self._in_vain |= waiting


_WRITERS: dict[str, _Waiters] = {}
"""Per warehouse path, the runs waiting for it, as this process's readers see them."""


def _others_waiting(path: str, kind: str = _WAITING) -> set[_Marker]:
    """The live processes waiting to open ``path`` (all, or only writers), by marker
    (see :func:`_waiting`)."""
    waiting = set()
    for name in glob.glob(glob.escape(path) + kind + "*"):
        try:
            with open(name, "rb") as handle:
                stat = os.fstat(handle.fileno())
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    waiting.add((name, stat.st_ino, stat.st_mtime_ns))
                    continue
                Path(name).unlink(missing_ok=True)  # stale: its owner is gone
        except OSError:
            continue
    return waiting
