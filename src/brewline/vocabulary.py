"""Brewline's shared words, defined once: delivery states, run states, day keys,
how a menu item and a count are written.

Imports nothing heavy (Polars is imported inside the expression helpers), so
the CLI, the dashboard and the loaders can all use it at no start-up cost.

    >>> FileState.LOADED == "loaded"
    True
    >>> date_key(dt.date(2024, 12, 18)), key_date(20241218)
    (20241218, datetime.date(2024, 12, 18))
    >>> item_label("Flavoured latte", "Large", "Hazelnut")
    'Large Flavoured latte - Hazelnut'
    >>> counted(1, "file"), counted(1200, "branch", "branches")
    ('1 file', '1,200 branches')
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "BRANCH_TIMEZONE",
    "DELIVERY_REASONS",
    "LEDGER_STATES",
    "FileState",
    "RunState",
    "branch_local",
    "counted",
    "date_key",
    "date_key_expr",
    "due_day",
    "item_label",
    "key_date",
    "key_date_expr",
    "local_now",
]

BRANCH_TIMEZONE = ZoneInfo("Europe/London")
"""Tills write local wall-clock time; sale times stay naive local times in the warehouse."""


def local_now() -> dt.datetime:
    """The branches' wall-clock time now, naive (comparable with ``sold_at``)."""
    return dt.datetime.now(BRANCH_TIMEZONE).replace(tzinfo=None)


def branch_local(moment: dt.datetime) -> dt.datetime:
    """Branch local wall-clock time; a naive datetime already is."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(BRANCH_TIMEZONE).replace(tzinfo=None)


def due_day(as_of: dt.date | dt.datetime, cutoff_hour: int = 0) -> dt.date:
    """The latest trading day every branch must have sent by ``as_of``.

    A date means "after the cut-off on that day"; a datetime is branch local time
    (an aware one is converted): before ``cutoff_hour`` yesterday's export may
    still be on its way, so the due day is the day before yesterday. The data
    checks and the dashboard both ask this, so they never disagree.

    >>> due_day(dt.date(2024, 11, 11)), due_day(dt.datetime(2024, 11, 11, 9, 30), 10)
    (datetime.date(2024, 11, 10), datetime.date(2024, 11, 9))
    """
    if not isinstance(as_of, dt.datetime):
        return as_of - dt.timedelta(days=1)
    local = branch_local(as_of)
    late = 1 if local.hour >= cutoff_hour else 2
    return local.date() - dt.timedelta(days=late)


class FileState(StrEnum):
    """Where one delivery (a file version) ended in one run.

    Every delivery the ledger records ends in one of the first four; ``FAILED``
    is never recorded: the delivery hit an error and stays pending for the next run.
    """

    LOADED = "loaded"
    SKIPPED = "skipped"
    REPLACED = "replaced"
    REJECTED = "rejected"
    FAILED = "failed"


LEDGER_STATES = (FileState.LOADED, FileState.SKIPPED, FileState.REPLACED, FileState.REJECTED)
"""The states a delivery can have in ``etl_file``, in the order people read them."""


DELIVERY_REASONS: dict[str, tuple[FileState, str]] = {
    # the reader refuses the file (brewline.extract.layouts)
    "empty_file": (FileState.REJECTED, "the file is empty or holds only blank lines"),
    "excel_workbook": (FileState.REJECTED, "an Excel workbook (.xlsx/.xls) renamed .csv"),
    "binary_content": (FileState.REJECTED, "NUL bytes: a binary or corrupted file, not text"),
    "not_utf8": (
        FileState.REJECTED,
        "bytes that are not UTF-8 in a kept column (branch, basket, ...), or in a file that "
        "reads as no export",
    ),
    "unrecognised_layout": (FileState.REJECTED, "no export layout matches its rows"),
    # the pipeline refuses the file (brewline.pipeline, brewline.load)
    "no_valid_rows": (FileState.REJECTED, "every row was rejected by the row rules"),
    "too_many_lines": (FileState.REJECTED, "more lines than a sale key can number"),
    "branch_day_owned": (
        FileState.REJECTED,
        "another delivery already owns its branch-days (redelivery = 'reject')",
    ),
    # nothing to do
    "unchanged": (FileState.SKIPPED, "this version was processed before"),
    "duplicate_content": (FileState.SKIPPED, "another file with the same bytes is loaded"),
    "partly_replaced": (
        FileState.LOADED,
        "a later delivery took over some of its branch-days; the rest stay loaded",
    ),
    # cannot be read now: not recorded, tried again next run
    "symlink_loop": (FileState.FAILED, "a symlink that leads back to itself"),
    "dangling_symlink": (FileState.FAILED, "a symlink to a file that is not there"),
    "unreadable_file": (FileState.FAILED, "the file cannot be read (permissions, I/O, S3)"),
}
"""Every reason a delivery's report or ledger row carries, with the state it comes with.

The row rules' reasons (rows, and whole files they refuse) are
``brewline.validate.rules.REASONS`` and ``FILE_REASONS``. docs/landing.md lists
them all; tests/test_docs_landing.py finds the reasons the code writes and
requires each here and on that page.
"""


class RunState(StrEnum):
    """The ``status`` of an ``etl_run`` row."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_REJECTS = "completed_with_rejects"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """A run stopped by a signal (Ctrl+C, SIGTERM) between two commits; its totals are
    what it committed, and the rest is pending for the next run."""
    ABANDONED = "abandoned"
    """A run whose process died (killed, crashed): ``status`` shows it as soon as the
    run's lock is free, and the next runner records it, with what the ledger holds of it."""


def date_key(day: dt.date) -> int:
    """The warehouse's ``yyyymmdd`` day key: readable, sortable, deterministic."""
    return day.year * 10_000 + day.month * 100 + day.day


def key_date(key: int) -> dt.date:
    """The day a ``yyyymmdd`` key stands for."""
    return dt.date(key // 10_000, key // 100 % 100, key % 100)


def date_key_expr(day: pl.Expr) -> pl.Expr:
    """:func:`date_key` as a Polars expression over a date column."""
    import polars as pl

    year, month, date = (
        part.cast(pl.Int32) for part in (day.dt.year(), day.dt.month(), day.dt.day())
    )
    return year * 10_000 + month * 100 + date


def key_date_expr(key: pl.Expr) -> pl.Expr:
    """:func:`key_date` as a Polars expression over a ``date_key`` column."""
    import polars as pl

    return pl.date(key // 10_000, key // 100 % 100, key % 100)


def item_label(product: str, size: str | None, variant: str | None) -> str:
    """A menu item as the till names it, without the price: ``Large Latte - Vanilla``."""
    name = f"{size} {product}" if size else product
    return f"{name} - {variant}" if variant else name


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``, ``3 branches``: a count with its noun agreeing."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
