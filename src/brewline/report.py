"""Run reports: what a run did, per file and in total.

The pipeline returns a :class:`RunReport`; the CLI prints it, the ledger
stores it, metrics read it. It never holds row content.
"""

from __future__ import annotations

import datetime as dt
import signal
from dataclasses import asdict, dataclass, field
from typing import Any

from brewline.sources import Location
from brewline.vocabulary import FileState, RunState, counted

__all__ = ["IGNORED_SHOWN", "FileReport", "RunReport", "StopRequest", "is_unchanged"]

IGNORED_SHOWN = 5
"""Ignored files named in the one line that reports them (``--json`` lists them all)."""


@dataclass(frozen=True)
class FileReport:
    """The outcome for one landing file in one run."""

    source_name: str
    state: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    reason: str | None = None
    message: str | None = None
    layout: str | None = None
    replaced: tuple[str, ...] = ()
    partly_replaced: tuple[str, ...] = ()
    quarantine: Location | None = None


class StopRequest:
    """Asks a run to stop before its next commit, e.g. from a signal handler.

    Setting it is all a handler may do: the run notices it between commits, so a
    delivery is committed whole or not at all, and records itself ``interrupted``.

        >>> stop = StopRequest()
        >>> stop.ask(signal.SIGTERM)
        >>> stop.signum == signal.SIGTERM
        True
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        """The signal that asked first (another asking changes nothing), or None."""

    def ask(self, signum: int = signal.SIGINT) -> None:
        if self.signum is None:
            self.signum = signum


@dataclass
class RunReport:
    """The outcome of one run; ``exit_code`` is 0 unless a file was rejected or failed."""

    run_id: str
    warehouse: str
    started_at: dt.datetime
    customer_tokens: bool
    files: list[FileReport] = field(default_factory=list)
    finished_at: dt.datetime | None = None
    error: str | None = None
    ignored: list[str] = field(default_factory=list)
    """Files in the landing area that are not exports (not ``.csv``), by name: never loaded."""
    interrupted_by: int | None = None
    """The signal that stopped the run before it had committed every delivery, or None."""
    pending: int = 0
    """Deliveries a stopped run (signal or error) left for the next run: unreached or failed."""

    @property
    def no_exports(self) -> bool:
        """The landing area held not a single export (not even an unchanged one): most often
        the wrong path, or exports saved in another format (see ``ignored``)."""
        return not self.files and self.error is None and not self.pending

    def ignored_line(self) -> str | None:
        """``2 files ignored (only CSV files are loaded): report.pdf, sales.xlsx``, or None."""
        if not self.ignored:
            return None
        shown = ", ".join(self.ignored[:IGNORED_SHOWN])
        more = len(self.ignored) - IGNORED_SHOWN
        if more > 0:
            shown += f" and {more:,} more"
        return f"{counted(len(self.ignored), 'file')} ignored (only CSV files are loaded): {shown}"

    def count(self, state: str) -> int:
        return sum(1 for f in self.files if f.state == state)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def seconds(self) -> float:
        end = self.finished_at or dt.datetime.now(dt.UTC)
        return (end - self.started_at).total_seconds()

    @property
    def status(self) -> str:
        if self.error:
            return RunState.FAILED
        if self.interrupted_by is not None:
            return RunState.INTERRUPTED
        return RunState.SUCCEEDED if self.exit_code == 0 else RunState.COMPLETED_WITH_REJECTS

    @property
    def exit_code(self) -> int:
        """0, or 1 when a file was rejected or failed or an error stopped the run; a run
        a signal stopped exits as the shell reports a process that signal killed:
        128 + its number (130 for Ctrl+C, 143 for SIGTERM)."""
        if self.interrupted_by is not None and not self.error:
            return 128 + self.interrupted_by
        bad = self.error or self.count(FileState.REJECTED) or self.count(FileState.FAILED)
        return 1 if bad else 0

    def committed(self) -> int:
        """Deliveries this run recorded in the ledger (not unchanged, not failed)."""
        return sum(1 for f in self.files if f.state != FileState.FAILED and not is_unchanged(f))

    def interrupted_line(self) -> str:
        """``interrupted: 1,380 files committed, 620 pending; run again``."""
        return (
            f"interrupted: {counted(self.committed(), 'file')} committed, "
            f"{self.pending:,} pending; run again"
        )

    def totals(self) -> dict[str, Any]:
        """The figures the ledger's ``etl_run`` row keeps."""
        return {
            "files_loaded": self.count(FileState.LOADED),
            "files_skipped": self.count(FileState.SKIPPED),
            "files_replaced": len({name for f in self.files for name in f.replaced}),
            "files_rejected": self.count(FileState.REJECTED),
            "files_failed": self.count(FileState.FAILED),
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``--json``."""
        files = [
            {
                **asdict(f),
                "replaced": list(f.replaced),
                "partly_replaced": list(f.partly_replaced),
                "quarantine": _str(f.quarantine),
            }
            for f in self.files
        ]
        return {
            "run_id": self.run_id,
            "warehouse": self.warehouse,
            "status": self.status,
            "exit_code": self.exit_code,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "customer_tokens": self.customer_tokens,
            **self.totals(),
            "files_ignored": len(self.ignored),
            "files_pending": self.pending,
            "no_exports": self.no_exports,
            "files": files,
            "ignored": self.ignored,
        }


def _str(path: Location | None) -> str | None:
    return None if path is None else str(path)


def is_unchanged(f: FileReport) -> bool:
    """Skipped because the ledger already had it: this run recorded nothing for it."""
    return f.state == FileState.SKIPPED and f.reason == "unchanged"
