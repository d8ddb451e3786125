"""The ledger role in portable SQL: runs, deliveries, warehouse facts, source cursors."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from brewline.load.roles import Ledger
from brewline.load.sql import SqlEngine, utc_now
from brewline.vocabulary import RunState

if TYPE_CHECKING:
    import polars as pl

__all__ = ["COMMITTED_BY_RUN", "COMMITTED_COLUMNS", "SqlLedger"]

COMMITTED_COLUMNS = (
    "files_loaded",
    "files_skipped",
    "files_rejected",
    "rows_read",
    "rows_loaded",
    "rows_rejected",
)

COMMITTED_BY_RUN = """
    SELECT COUNT(*) FILTER (WHERE state IN ('loaded', 'replaced')) AS files_loaded,
           COUNT(*) FILTER (WHERE state = 'skipped') AS files_skipped,
           COUNT(*) FILTER (WHERE state = 'rejected') AS files_rejected,
           CAST(COALESCE(SUM(rows_read), 0) AS BIGINT) AS rows_read,
           CAST(COALESCE(SUM(rows_loaded), 0) AS BIGINT) AS rows_loaded,
           CAST(COALESCE(SUM(rows_rejected), 0) AS BIGINT) AS rows_rejected
    FROM etl_file WHERE run_id = ?
"""
"""What the ledger holds of one run's deliveries: the totals of a run that could not
record its own (it died). A file it loaded that a later one replaced still counts as
loaded by it."""


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

    def _abandon_stale_runs(self) -> None:
        """Mark as abandoned the runs still 'running' whose process died, with what they
        committed according to the ledger."""
        running = self._fetch("SELECT run_id FROM etl_run WHERE status = ?", (RunState.RUNNING,))
        for (run_id,) in running:
            if not self.run_is_alive(str(run_id)):
                self._abandon(str(run_id))

    @abstractmethod
    def run_is_alive(self, run_id: str) -> bool:
        """See :meth:`brewline.load.roles.Reader.run_is_alive` (each engine has its lock)."""

    def _abandon(self, run_id: str) -> None:
        totals = self._fetch(COMMITTED_BY_RUN, (run_id,))[0]
        columns = ", ".join(f"{name} = ?" for name in COMMITTED_COLUMNS)
        self._execute(
            f"UPDATE etl_run SET status = ?, {columns} WHERE run_id = ?",
            (RunState.ABANDONED, *totals, run_id),
        )

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
