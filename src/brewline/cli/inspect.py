"""``brewline status`` and ``brewline report``: read-only views of the ledger and the sales,
a thin layer over :func:`brewline.queries.status_report` and
:func:`brewline.queries.sales_report`, printed as tables or ``--json``::

    $ brewline status --warehouse sales.duckdb
    $ brewline report --json | jq .best_sellers[0]
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from brewline.cli.output import (
    JsonOption,
    WarehouseOption,
    exit_on_error,
    folded,
    money,
    open_existing,
    print_json,
    table,
    text,
)

if TYPE_CHECKING:
    import polars as pl
    from rich.console import RenderableType
    from rich.table import Table

    from brewline.load import Warehouse

__all__ = ["report", "status"]


def status(
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
    limit: Annotated[
        int, typer.Option(min=1, help="How many recent runs and rejected files to show.")
    ] = 10,
) -> None:
    """Show the ledger: recent runs, files by state, rejects by reason.

    Also lists the latest whole-file rejections with their reasons, and the
    watermark of each table of an incremental source (totesys) with when a
    sync last moved it.

    Read-only. Exits 1 when the warehouse does not exist or cannot be read.
    """
    import polars as pl

    from brewline import queries

    read = _read(warehouse, as_json, lambda wh: queries.status_report(wh, limit=limit))
    if read is None:
        return
    heading, views = read
    runs = views["recent_runs"].select(
        pl.col("started_at").dt.strftime("%d %b %H:%M").alias("started"),
        "status",
        pl.col("files_loaded").alias("loaded"),
        pl.col("files_skipped").alias("skipped"),
        pl.col("files_rejected").alias("rejected"),
        pl.col("rows_loaded").alias("rows"),
        "seconds",
    )
    _print_frames(
        heading,
        {
            "Recent runs (UTC; files loaded, skipped, rejected; rows loaded)": runs,
            "Files by state": views["files_by_state"],
            "Rejects by reason": views["rejects_by_reason"],
            "Rejected files": views["rejected_files"].drop("recorded_at"),
            "Incremental sources (watermark per table, UTC)": views["source_watermarks"].select(
                "source_table",
                pl.col("watermark").str.slice(0, 19).str.replace("T", " "),
                pl.col("synced_at").dt.strftime("%d %b %H:%M"),
            ),
        },
    )


def report(
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option(min=1, help="How many best sellers to show.")] = 10,
    days: Annotated[
        int, typer.Option(min=1, help="How many of the latest trading days to show revenue for.")
    ] = 14,
) -> None:
    """Show sales: best sellers, revenue, busiest hours, payments, baskets.

    Revenue is shown by branch and by day (the latest DAYS trading days); new vs
    returning customers appear when sales carry customer tokens.

    Read-only. Exits 1 when the warehouse does not exist or cannot be read.
    """
    from brewline import queries

    read = _read(warehouse, as_json, lambda wh: queries.sales_report(wh, limit=limit, days=days))
    if read is None:
        return
    heading, views = read
    titles = {
        "best_sellers": f"Best sellers (top {limit} by units sold; ties by revenue)",
        "revenue_by_branch": "Revenue by branch",
        "revenue_by_day": f"Revenue by day (latest {days} trading days)",
        "busiest_hours": "Busiest hours (branch local time)",
        "payment_mix": "Payment mix",
        "customer_mix": "New vs returning customers (card sales with a token)",
        "basket": "Average basket",
    }
    shown = {titles[k]: v for k, v in views.items() if not (k == "customer_mix" and v.is_empty())}
    _print_frames(heading, shown)


def _read(
    warehouse: str | None, as_json: bool, ask: Callable[[Warehouse], dict[str, pl.DataFrame]]
) -> tuple[str, dict[str, pl.DataFrame]] | None:
    """Answer ``ask`` on the warehouse, read-only: a heading naming it and the frames.

    Under ``--json`` the answer is printed here and None returned.
    """
    from brewline.config import load_settings
    from brewline.load.locations import redact

    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse)
        with open_existing(settings) as wh:
            views = ask(wh)
    where = redact(settings.warehouse)
    if as_json:
        print_json({"warehouse": where, **_records(views)})
        return None
    return f"Warehouse {where}", views


def _print_frames(heading: str, frames: dict[str, pl.DataFrame]) -> None:
    from rich.console import Console

    console = Console()
    console.print(text(heading, style="bold"))
    for title, frame in frames.items():
        console.print()
        console.print(text(title, style="bold"))
        console.print(_frame_table(frame))


def _frame_table(frame: pl.DataFrame) -> Table:
    numeric = tuple(i for i, dtype in enumerate(frame.dtypes) if dtype.is_numeric())
    shown = table(None, frame.columns, numeric=numeric)
    for row in frame.iter_rows():
        shown.add_row(*(_cell(value, name) for value, name in zip(row, frame.columns, strict=True)))
    if frame.is_empty():
        shown.caption = "(none)"
    return shown


_FORMATS: dict[str, Callable[[Any], str]] = {
    "share": lambda v: f"{v:.1%}",
    "hour": lambda v: f"{v:02d}:00",
}


def _cell(value: object, column: str) -> RenderableType:
    """Format one value as printable text (not markup), so names print as they are.

    A file name folds only at its separators, never mid-word.
    """
    if value is None:
        return text("-", style="dim")
    if column == "source_name":
        return folded(str(value), max(24, shutil.get_terminal_size().columns // 3))
    if column in _FORMATS:
        return text(_FORMATS[column](value))
    if isinstance(value, Decimal):  # money: the warehouse's only decimal type
        return text(money(value))
    if isinstance(value, float):
        return text(f"{value:,.2f}")
    if isinstance(value, int) and not isinstance(value, bool):
        return text(f"{value:,}")
    if isinstance(value, dt.datetime):
        return text(value.isoformat(sep=" ", timespec="seconds"))
    return text(str(value))


def _records(frames: dict[str, pl.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    return {name: frame.to_dicts() for name, frame in frames.items()}
