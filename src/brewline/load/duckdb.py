"""The embedded default warehouse: a DuckDB file.

DuckDB allows one writing process per file; a second runner waits up to
``lock_timeout`` seconds for the first to finish, then gives up with
:class:`~brewline.errors.WarehouseBusy`, so two runners never load a file twice.

    >>> with DuckDBWarehouse(":memory:") as wh:
    ...     wh.ensure_schema()
    ...     wh.query("SELECT count(*) AS n FROM fact_sale")["n"][0]
    0
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from brewline.errors import WarehouseBusy, WarehouseError
from brewline.load.roles import Params
from brewline.load.warehouse import SqlWarehouse
from brewline.vocabulary import RunState

__all__ = ["DuckDBWarehouse"]

_RETRY_EVERY = 0.2
_NO_EXTENSION_DOWNLOADS: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""Brewline never lets DuckDB fetch or load extensions behind its back."""


class DuckDBWarehouse(SqlWarehouse):
    """A warehouse in one DuckDB file (or ``:memory:``)."""

    engine = "duckdb"

    def __init__(self, path: str | Path, *, read_only: bool = False, lock_timeout: float = 30.0):
        self.display_name = str(path)
        self._staged: list[str] = []
        self._con = _connect(str(path), read_only=read_only, lock_timeout=lock_timeout)

    def close(self) -> None:
        self._con.close()

    def _abandon_stale_runs(self) -> None:
        """Runs still 'running' were killed: a DuckDB file has one writing process at a time."""
        self._execute(
            "UPDATE etl_run SET status = ? WHERE status = ?", (RunState.ABANDONED, RunState.RUNNING)
        )

    def _lock_loader(self) -> None:
        """Nothing to do: DuckDB's file lock already admits one writing process."""

    def _execute(self, sql: str, params: Params = ()) -> None:
        with _errors(self.display_name):
            self._con.execute(sql, list(params))

    def _fetch(self, sql: str, params: Params = ()) -> list[tuple[object, ...]]:
        with _errors(self.display_name):
            return self._con.execute(sql, list(params)).fetchall()

    def _frame(self, sql: str, params: Params = ()) -> pl.DataFrame:
        with _errors(self.display_name):
            table = self._con.sql(sql, params=list(params)).to_arrow_table()
        return pl.from_arrow(table)  # type: ignore[return-value]

    def _stage(self, name: str, frame: pl.DataFrame) -> None:
        self._con.register(name, frame.to_arrow())
        self._staged.append(name)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._con.begin()
        try:
            yield
        except BaseException:
            self._con.rollback()
            raise
        else:
            try:
                with _errors(self.display_name):  # a full disk fails here, not in the statements
                    self._con.commit()
            except WarehouseError:
                with contextlib.suppress(duckdb.Error):
                    self._con.rollback()
                raise
        finally:
            for name in self._staged:
                self._con.unregister(name)
            self._staged.clear()


@contextmanager
def _errors(where: str) -> Iterator[None]:
    """DuckDB's own errors become Brewline's (terminal: DuckDB has no network to lose)."""
    try:
        yield
    except duckdb.Error as exc:
        raise WarehouseError(f"DuckDB warehouse {where}: {str(exc).splitlines()[0]}") from None


def _connect(path: str, *, read_only: bool, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    if path != ":memory:" and read_only and not Path(path).exists():
        raise WarehouseError(f"no warehouse at {path}; load one with `brewline run`")
    if path != ":memory:" and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=dict(_NO_EXTENSION_DOWNLOADS))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise WarehouseError(f"cannot open DuckDB warehouse {path}: {exc}") from None
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"DuckDB warehouse {path} is in use by another process "
                    f"(waited {lock_timeout:.0f}s); retry when that run has finished"
                ) from None
            time.sleep(_RETRY_EVERY)
