"""``brewline status`` and ``brewline report``: read-only views of the ledger and the sales,
a thin layer over :func:`brewline.queries.status_report`,
:func:`brewline.queries.sales_report` and (``--source totesys``)
:func:`brewline.totesys.queries.totesys_report`, printed as tables or ``--json``::

    $ brewline status --warehouse sales.duckdb
    $ brewline report --json | jq .best_sellers[0]
    $ brewline report --source totesys --as-of 2026-11-30
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from brewline.cli.output import (
    JsonOption,
    WarehouseOption,
    exit_on_error,
    folded,
    money,
    open_existing,
    print_json,
    printable,
    table,
    text,
)

if TYPE_CHECKING:
    import polars as pl
    from rich.console import RenderableType
    from rich.table import Table

    from brewline.load import Warehouse
    from brewline.totesys.queries import TotesysReport

__all__ = ["Source", "report", "status"]

_T = TypeVar("_T")


class Source(StrEnum):
    """Which source's sales a report shows."""

    CAFE = "cafe"
    TOTESYS = "totesys"


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

    read = _read(warehouse, as_json, lambda wh: queries.status_report(wh, limit=limit), _records)
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


def _validate_day(value: str | None) -> str | None:
    if value is not None:
        try:
            dt.date.fromisoformat(value.strip())
        except ValueError:
            raise typer.BadParameter("use YYYY-MM-DD, like 2026-11-30") from None
    return value


def report(
    *,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
    source: Annotated[
        Source,
        typer.Option(
            help="Whose sales: the cafe branches' till exports, or the totesys star "
            "(loaded by `brewline sync`)."
        ),
    ] = Source.CAFE,
    limit: Annotated[
        int,
        typer.Option(
            min=1,
            help="How many best sellers (cafe), or top designs, counterparties, staff and "
            "delivery locations (totesys) to show.",
        ),
    ] = 10,
    days: Annotated[
        int,
        typer.Option(min=1, help="How many of the latest trading days to show revenue for (cafe)."),
    ] = 14,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="YYYY-MM-DD",
            callback=_validate_day,
            help="The day unpaid totesys payments are aged from [default: today, UTC].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show sales: best sellers, revenue, busiest hours, payments, baskets.

    Revenue is shown by branch and by day (the latest DAYS trading days); new vs
    returning customers appear when sales carry customer tokens.

    With --source totesys: units and revenue of the current version of each
    sales order by currency, month, design, counterparty, staff, department
    and delivery location, and unpaid payments by days overdue. Money is never
    summed across currencies: every amount carries its currency code.

    Read-only. Exits 1 when the warehouse does not exist or cannot be read.
    """
    if source == Source.TOTESYS:
        _totesys(warehouse, as_json, limit, None if as_of is None else dt.date.fromisoformat(as_of))
        return
    from brewline import queries

    read = _read(
        warehouse,
        as_json,
        lambda wh: queries.sales_report(wh, limit=limit, days=days),
        _records,
    )
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
    warehouse: str | None,
    as_json: bool,
    ask: Callable[[Warehouse], _T],
    records: Callable[[_T], dict[str, Any]],
) -> tuple[str, _T] | None:
    """Answer ``ask`` on the warehouse, read-only: a heading naming it and the answer.

    Under ``--json`` the answer is printed here (as ``records`` of it) and None returned.
    """
    from brewline.config import load_settings
    from brewline.load.locations import redact

    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse)
        with open_existing(settings) as wh:
            views = ask(wh)
    where = redact(settings.warehouse)
    if as_json:
        print_json({"warehouse": where, **records(views)})
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


# -- totesys -------------------------------------------------------------------------------------


def _totesys(warehouse: str | None, as_json: bool, limit: int, as_of: dt.date | None) -> None:
    """``report --source totesys``: the totesys star's sales and unpaid payments."""
    from rich.console import Console

    from brewline.totesys.queries import sync_hint, totesys_report

    read = _read(
        warehouse,
        as_json,
        lambda wh: totesys_report(wh, as_of=as_of, limit=limit),
        lambda view: {"source": Source.TOTESYS.value, **view.to_dict()},
    )
    if read is None:
        return
    heading, view = read
    if view.empty:  # one line, never wrapped: the command is for copying
        where = heading.removeprefix("Warehouse ")
        typer.echo(printable(heading))
        typer.echo(printable(f"No totesys data in this warehouse yet: run `{sync_hint(where)}`."))
        return
    console = Console()
    console.print(text(heading, style="bold"))
    for title, shown in _totesys_tables(view, limit):
        console.print()
        console.print(text(title, style="bold"))
        console.print(shown)


def _totesys_tables(view: TotesysReport, limit: int) -> list[tuple[str, Table]]:
    """The report's tables, titled; money cells carry their currency code."""
    import polars as pl

    figures = ("orders", "units", "revenue")
    month = view.by_month.with_columns(pl.col("month").dt.strftime("%Y-%m"))
    ranked = ("units", "revenue")
    designs = _named(view.by_design, "design")
    counterparties = _named(view.by_counterparty, "counterparty")
    staff = _named(_head(view.by_staff, limit), "staff")
    cities = _named(_head(view.by_location, limit), "city", "location_id")
    ageing = view.ageing.with_columns(pl.col("payment_type").str.replace_all("_", " "))
    return [
        (
            "Sales by currency (current version of each order)",
            _grouped(view.by_currency, ("currency",), figures),
        ),
        ("Revenue by month (order created)", _grouped(month, ("month",), figures)),
        (f"Top {limit} designs by units sold", _grouped(designs, ("rank", "design"), ranked)),
        (
            f"Top {limit} counterparties by units sold",
            _grouped(counterparties, ("rank", "counterparty"), ranked),
        ),
        (
            _top("staff", limit, view.by_staff),
            _grouped(staff, ("rank", "staff", "department"), ranked),
        ),
        (
            "Sales by department (of the seller)",
            _grouped(view.by_department, ("department",), figures),
        ),
        (
            _top("delivery locations", limit, view.by_location),
            _grouped(cities, ("rank", "city", "country"), ranked),
        ),
        ("Sales by delivery country", _grouped(view.by_country, ("country",), figures)),
        (
            f"Unpaid payments by days overdue as of {view.as_of.isoformat()}",
            _grouped(ageing, ("payment_type",), ("bucket", "payments", "amount")),
        ),
    ]


def _named(frame: pl.DataFrame, column: str, key: str | None = None) -> pl.DataFrame:
    """``column`` made unique for display (see :func:`brewline.totesys.queries.labels`)."""
    import polars as pl

    from brewline.totesys.queries import labels

    shown = labels(frame, column, key or f"{column}_id")
    return frame.with_columns(pl.Series(column, shown, dtype=pl.String))


def _top(what: str, limit: int, frame: pl.DataFrame) -> str:
    """``Top 10 staff by units sold (of 20)``: of those with sales."""
    ranked = frame["rank"].max() if frame.height else 0
    count = ranked if isinstance(ranked, int) else 0
    return f"Top {limit} {what} by units sold (of {count:,})"


def _head(frame: pl.DataFrame, limit: int) -> pl.DataFrame:
    import polars as pl

    return frame.filter(pl.col("rank") <= limit)


_NUMERIC = frozenset({"rank", "orders", "units", "revenue", "payments", "amount"})


def _grouped(frame: pl.DataFrame, keys: tuple[str, ...], values: tuple[str, ...]) -> Table:
    """A table of ``keys`` then ``values``; a key repeated from the row above prints blank.

    Frames are per currency: each money cell (``revenue``, ``amount``) says its currency.
    """
    columns = [*keys, *values]
    numeric = tuple(i for i, c in enumerate(columns) if c in _NUMERIC)
    shown = table(None, ["#" if c == "rank" else c for c in columns], numeric=numeric)
    previous: list[Any] = []
    for row in frame.iter_rows(named=True):
        group = [row[k] for k in keys]
        same = 0  # how many leading keys repeat the row above
        while same < len(keys) and same < len(previous) and group[same] == previous[same]:
            same += 1
        shown.add_row(*("" if i < same else _totesys_cell(row, c) for i, c in enumerate(columns)))
        previous = group
    if frame.is_empty():
        shown.caption = "(none)"
    return shown


def _totesys_cell(row: dict[str, Any], column: str) -> RenderableType:
    value = row[column]
    if column in ("revenue", "amount"):
        return text(money(value, row["currency"]))
    return _cell(value, column)
