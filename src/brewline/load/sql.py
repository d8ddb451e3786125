"""The five primitives an SQL engine supplies, on which every role is written once.

An engine (:class:`~brewline.load.duckdb.DuckDBWarehouse`,
:class:`~brewline.load.postgres.PostgresWarehouse`) implements execute, fetch,
frame, stage-a-frame-as-a-table and transaction; the role classes
(:mod:`~brewline.load.loader`, :mod:`~brewline.load.ledger`,
:mod:`~brewline.load.reader`) build Brewline's semantics on them in portable SQL
with ``?`` placeholders, so both engines behave identically.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from brewline.load.roles import Params

if TYPE_CHECKING:
    import polars as pl

__all__ = ["SqlEngine", "utc_now"]


class SqlEngine(ABC):
    """Engine primitives; everything else is portable SQL over them."""

    display_name: str
    engine: str

    @abstractmethod
    def _execute(self, sql: str, params: Params = ()) -> None: ...

    @abstractmethod
    def _fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _frame(self, sql: str, params: Params = ()) -> pl.DataFrame: ...

    @abstractmethod
    def _stage(self, name: str, frame: pl.DataFrame) -> None:
        """Make ``frame`` queryable as table ``name`` until the transaction ends."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """Commit on success, roll back on error."""

    @abstractmethod
    def _lock_loader(self) -> None:
        """Inside a transaction: wait (bounded) until no other process is committing."""

    def _append(self, table: str, frame: pl.DataFrame) -> None:
        """Bulk-append ``frame`` (columns named as in ``table``) inside the transaction."""
        self._stage(f"append_{table}", frame)
        columns = ", ".join(frame.columns)
        self._execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM append_{table}")

    def _has_table(self, name: str) -> bool:
        return bool(
            self._fetch("SELECT 1 FROM information_schema.tables WHERE table_name = ?", (name,))
        )


def utc_now() -> dt.datetime:
    """Ledger times are UTC wall-clock, stored naive."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
