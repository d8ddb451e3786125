"""The ledger role in portable SQL: runs, deliveries, warehouse facts, source cursors."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from brewline.load.roles import Ledger
from brewline.load.sql import SqlEngine, utc_now
from brewline.vocabulary import RunState

if TYPE_CHECKING:
    import polars as pl

__all__ = ["SqlLedger"]


class SqlLedger(SqlEngine, Ledger):
    def deliveries(self) -> pl.DataFrame:
        return self._frame(
            "SELECT e.file_id, e.source_name, e.sha256, e.state, r.source_name AS replaced_by_name "
            "FROM etl_file e LEFT JOIN etl_file r ON r.file_id = e.replaced_by"
        )

    def begin_run(self, run_id: str, host: str, pid: int) -> None:
        with self._transaction():
            self._abandon_stale_runs()
            self._execute(
                "INSERT INTO etl_run (run_id, started_at, status, host, pid) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, utc_now(), RunState.RUNNING, host, pid),
            )

    @abstractmethod
    def _abandon_stale_runs(self) -> None:
        """Mark as abandoned the runs still 'running' whose process died."""

    def finish_run(self, run_id: str, status: str, totals: dict[str, Any]) -> None:
        columns = ", ".join(f"{name} = ?" for name in totals)
        with self._transaction():
            self._execute(
                f"UPDATE etl_run SET finished_at = ?, status = ?, {columns} WHERE run_id = ?",
                (utc_now(), status, *totals.values(), run_id),
            )
            self._abandon_stale_runs()  # runs that died while this one ran, not only before

    def get_meta(self, name: str) -> str | None:
        rows = self._fetch("SELECT value FROM etl_meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: str) -> None:
        with self._transaction():
            self._execute("DELETE FROM etl_meta WHERE name = ?", (name,))
            self._execute("INSERT INTO etl_meta VALUES (?, ?)", (name, value))

    def get_cursor(self, source: str, name: str) -> str | None:
        rows = self._fetch(
            "SELECT value FROM etl_cursor WHERE source = ? AND name = ?", (source, name)
        )
        return str(rows[0][0]) if rows else None

    def set_cursor(self, source: str, name: str, value: str) -> None:
        with self._transaction():
            self._execute("DELETE FROM etl_cursor WHERE source = ? AND name = ?", (source, name))
            self._execute(
                "INSERT INTO etl_cursor VALUES (?, ?, ?, ?)", (source, name, value, utc_now())
            )
