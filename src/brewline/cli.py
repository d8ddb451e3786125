"""The ``brewline`` command line: a thin layer over the library.

Each command parses its options into :class:`~brewline.config.Settings`, calls
one library function (:func:`brewline.pipeline.run`, :mod:`brewline.queries`,
:func:`brewline.synth.generate_landing`) and renders the result with Rich. Brewline
errors become one line on stderr and exit code 1; usage errors exit 2.

    $ brewline run landing/ --warehouse sales.duckdb
    $ brewline report --json | jq .best_sellers[0]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import polars as pl
import typer
from rich import box
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from brewline import __version__, queries
from brewline import demo as demo_lib
from brewline.check_cli import check
from brewline.config import Settings, load_settings
from brewline.console import (
    WarehouseOption,
    check_warehouse,
    exit_on_error,
    open_existing,
    print_json,
)
from brewline.demo import DEMO_PII_KEY, SynthSpec
from brewline.load import admin, open_warehouse
from brewline.load.admin import readonly_sql
from brewline.load.open import redact
from brewline.ops.alerts import DeliveryFailure, alert_error
from brewline.pipeline import run as run_pipeline
from brewline.report import FileReport, RunReport
from brewline.serve.command import serve

__all__ = ["DEMO_PII_KEY", "app"]

APP_HELP = """\
Brewline: branch till exports -> a private, query-ready sales warehouse.

Settings come from (highest first) command-line options, BREWLINE_* environment
variables, ./brewline.toml (or the file BREWLINE_CONFIG names), then defaults.
The customer-token secret is only ever read from BREWLINE_PII_KEY or the TOML.

Exit codes: 0 = every file loaded, skipped or replaced; 1 = a file was rejected
or failed, or an error (bad setting, warehouse busy or unreadable) stopped the
command; 2 = usage error (unknown option, bad option value).
"""

MAX_FILE_ROWS = 40
"""Above this many files, ``run`` summarises by state instead of listing every file."""

_BAD_STATES = ("rejected", "failed")
_STATE_STYLE = {
    "loaded": "green",
    "skipped": "dim",
    "replaced": "cyan",
    "rejected": "red",
    "failed": "bold red",
}

app = typer.Typer(
    name="brewline",
    help=APP_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    # Locals in a traceback could hold row content or the PII key: never show them.
    pretty_exceptions_show_locals=False,
)


class Redelivery(StrEnum):
    """What to do with a second file covering an already loaded (branch, trading day)."""

    REPLACE = "replace"
    REJECT = "reject"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"brewline {__version__}")
        raise typer.Exit()


JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print JSON on stdout instead of tables (money as strings)."),
]


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Brewline: branch till exports -> a private, query-ready sales warehouse."""


# -- run -------------------------------------------------------------------------------


@app.command()
def run(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files or folders to process [default: the landing folder].",
            metavar="PATH",
            exists=True,
            show_default=False,
        ),
    ] = None,
    *,
    warehouse: WarehouseOption = None,
    landing: Annotated[
        Path | None,
        typer.Option(
            help="Landing folder read when no PATHS are given [default: ./landing].",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Folder for raw rejected lines (may hold personal data) "
            "[default: <landing>/_quarantine].",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    redelivery: Annotated[
        Redelivery | None,
        typer.Option(
            help="A second file for an already loaded branch-day: 'replace' lets the "
            "later delivery win, 'reject' keeps the first [default: replace].",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    alert: Annotated[
        bool,
        typer.Option(
            "--alert/--no-alert",
            help="Send one alert summarising rejected files or a failed run to the configured "
            "webhook and/or e-mail (nothing is sent when none is configured).",
        ),
    ] = True,
) -> None:
    """Load new and changed branch exports into the warehouse.

    Files already loaded with the same content are skipped, a corrected file
    replaces its earlier version, and a file that cannot be understood is
    rejected with a reason. Exits 0 when every file ended loaded, skipped or
    replaced, 1 when any was rejected or failed or an error stopped the run.
    """
    with exit_on_error(as_json):
        settings = load_settings(
            warehouse=warehouse,
            landing=landing,
            quarantine=quarantine,
            redelivery=redelivery.value if redelivery else None,
        )
    on_error = partial(_alert_run_error, settings) if alert else None
    undelivered: list[DeliveryFailure] = []
    with exit_on_error(as_json, on_error):
        report = _run_with_progress(
            settings, paths, alert=alert, on_alert_failure=undelivered.append
        )
    for failure in undelivered:
        typer.echo(f"brewline: warning: {failure}", err=True)
    if as_json:
        print_json(report.to_dict())
    else:
        _render_run(report, Console())
    raise typer.Exit(report.exit_code)


def _alert_run_error(settings: Settings, error: BaseException) -> None:
    for failure in alert_error(settings, "run", error):
        typer.echo(f"brewline: warning: {failure}", err=True)


def _run_with_progress(
    settings: Settings, paths: Sequence[Path] | None, **alerting: Any
) -> RunReport:
    """Run the pipeline with a progress bar on stderr (shown only on a terminal)."""
    with _progress() as (on_start, on_file):
        return run_pipeline(
            settings,
            list(paths) if paths else None,
            on_start=on_start,
            on_file=on_file,
            **alerting,
        )


@contextmanager
def _progress() -> Iterator[tuple[Callable[[int], None], Callable[[FileReport], None]]]:
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        task = progress.add_task("Loading files", total=None)
        yield (lambda n: progress.update(task, total=n), lambda _: progress.advance(task))


def _render_run(report: RunReport, console: Console) -> None:
    if not report.files:
        console.print("No files to process.")
    elif len(report.files) <= MAX_FILE_ROWS:
        _print_files(report.files, "Files", console)
    else:
        console.print(_states_table(report))
        bad = [f for f in report.files if f.state in _BAD_STATES]
        if bad:
            _print_files(bad, "Rejected or failed files", console)
    console.print(_totals_line(report))


def _print_files(files: Sequence[FileReport], title: str, console: Console) -> None:
    """A table of files, then one line per file that has more to say than its reason."""
    table = _table(
        title, ["file", "state", "read", "loaded", "rejected", "reason"], numeric=(2, 3, 4)
    )
    for f in files:
        state = Text(f.state, style=_STATE_STYLE.get(f.state, ""))
        counts = (f"{f.rows_read:,}", f"{f.rows_loaded:,}", f"{f.rows_rejected:,}")
        table.add_row(Text(f.source_name), state, *counts, Text(f.reason or ""))
    console.print(table)
    for f in files:
        note = _note(f)
        if note:
            console.print(Text(f"{f.source_name}: {note}"))


def _note(f: FileReport) -> str:
    """What a person may need to act on: the message, replaced files, the quarantine file."""
    notes = []
    if f.message and f.reason != "unchanged":
        notes.append(f.message)
    if f.replaced:
        notes.append("replaced " + ", ".join(f.replaced))
    if f.partly_replaced:
        notes.append("took branch-days over from " + ", ".join(f.partly_replaced))
    if f.quarantine is not None:
        notes.append(f"{_count(f.rows_rejected, 'rejected line')} kept in {f.quarantine}")
    return "; ".join(notes)


def _states_table(report: RunReport) -> Table:
    table = _table(
        "Files by state", ["state", "files", "read", "loaded", "rejected"], numeric=(1, 2, 3, 4)
    )
    for state in sorted({f.state for f in report.files}):
        files = [f for f in report.files if f.state == state]
        sums = [
            sum(getattr(f, n) for f in files) for n in ("rows_read", "rows_loaded", "rows_rejected")
        ]
        table.add_row(
            Text(state, style=_STATE_STYLE.get(state, "")),
            f"{len(files):,}",
            *(f"{n:,}" for n in sums),
        )
    return table


def _totals_line(report: RunReport) -> Text:
    t = report.totals()
    tokens = "on" if report.customer_tokens else "off (no PII key set)"
    replaced = _count(t["files_replaced"], "earlier version")
    return Text(
        f"{len(report.files):,} files: {t['files_loaded']:,} loaded, {t['files_skipped']:,} "
        f"skipped, {t['files_rejected']:,} rejected; {replaced} replaced.\n"
        f"Rows: {t['rows_read']:,} read, {t['rows_loaded']:,} loaded, "
        f"{t['rows_rejected']:,} rejected in {t['seconds']:.2f}s.\n"
        f"Warehouse {report.warehouse}, run {report.run_id}, customer tokens {tokens}.",
        style="bold red" if report.exit_code else "bold",
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# -- init ------------------------------------------------------------------------------


@app.command()
def init(warehouse: WarehouseOption = None) -> None:
    """Create the warehouse schema, or upgrade an older one to this Brewline's.

    `run` creates the schema of a new warehouse by itself but never upgrades an
    existing one behind an administrator's back; this command does. Exits 1 when
    the warehouse is newer than this Brewline or cannot be opened.
    """
    with exit_on_error():
        settings = load_settings(warehouse=warehouse)
        with open_warehouse(settings.warehouse, lock_timeout=settings.lock_timeout) as wh:
            version = wh.ensure_schema(upgrade=True)
    typer.echo(f"Warehouse {redact(settings.warehouse)} is at schema version {version}.")


@app.command("grant-readonly")
def grant_readonly(
    role: Annotated[str, typer.Argument(help="Role for dashboards and analysts, e.g. analyst.")],
    warehouse: WarehouseOption = None,
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Print the SQL instead of running it.")
    ] = False,
) -> None:
    """Create a read-only PostgreSQL role (LOGIN, SELECT only) for dashboards and analysts.

    Idempotent. Give the role a password yourself (ALTER ROLE ... PASSWORD);
    Brewline never handles it. Exits 1 for a DuckDB warehouse or a bad role name.
    """
    with exit_on_error():
        settings = load_settings(warehouse=warehouse)
        if show_sql:
            database = urlsplit(settings.warehouse).path.lstrip("/") or "postgres"
            typer.echo(";\n".join(readonly_sql(role, database)) + ";")
            return
        with open_warehouse(settings.warehouse, lock_timeout=settings.lock_timeout) as wh:
            admin.grant_readonly(wh, role)
    typer.echo(f"Role {role} can now read {redact(settings.warehouse)} (and nothing else).")


# -- status and report -----------------------------------------------------------------


@app.command()
def status(
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
    limit: Annotated[
        int, typer.Option(min=1, help="How many recent runs and rejected files to show.")
    ] = 10,
) -> None:
    """Show the ledger: recent runs, files by state, rejects by reason.

    Also lists the latest whole-file rejections with their reasons.

    Read-only. Exits 1 when the warehouse does not exist or cannot be read.
    """
    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse)
        with open_existing(settings) as wh:
            views = queries.status_report(wh, limit=limit)
    if as_json:
        print_json({"warehouse": redact(settings.warehouse), **_records(views)})
        return
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
        f"Warehouse {redact(settings.warehouse)}",
        {
            "Recent runs (UTC; files loaded, skipped, rejected; rows loaded)": runs,
            "Files by state": views["files_by_state"],
            "Rejects by reason": views["rejects_by_reason"],
            "Rejected files": views["rejected_files"].drop("recorded_at"),
        },
    )


@app.command()
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
    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse)
        with open_existing(settings) as wh:
            views = queries.sales_report(wh, limit=limit, days=days)
    if as_json:
        print_json({"warehouse": redact(settings.warehouse), **_records(views)})
        return
    titles = {
        "best_sellers": f"Best sellers (top {limit})",
        "revenue_by_branch": "Revenue by branch",
        "revenue_by_day": f"Revenue by day (latest {days} trading days)",
        "busiest_hours": "Busiest hours (branch local time)",
        "payment_mix": "Payment mix",
        "customer_mix": "New vs returning customers (card sales with a token)",
        "basket": "Average basket",
    }
    shown = {titles[k]: v for k, v in views.items() if not (k == "customer_mix" and v.is_empty())}
    _print_frames(f"Warehouse {redact(settings.warehouse)}", shown)


def _print_frames(heading: str, frames: dict[str, pl.DataFrame]) -> None:
    console = Console()
    console.print(Text(heading, style="bold"))
    for title, frame in frames.items():
        console.print()
        console.print(Text(title, style="bold"))
        console.print(_frame_table(frame))


def _frame_table(frame: pl.DataFrame) -> Table:
    numeric = tuple(i for i, dtype in enumerate(frame.dtypes) if dtype.is_numeric())
    table = _table(None, frame.columns, numeric=numeric)
    for row in frame.iter_rows():
        table.add_row(*(_cell(value, name) for value, name in zip(row, frame.columns, strict=True)))
    if frame.is_empty():
        table.caption = "(none)"
    return table


def _table(title: str | None, columns: Sequence[str], *, numeric: Sequence[int] = ()) -> Table:
    """A plain table; text folds rather than being cut, so file names stay whole."""
    table = Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for i, name in enumerate(columns):
        right = i in numeric
        table.add_column(
            name.replace("_", " "),
            justify="right" if right else "left",
            no_wrap=right,
            overflow="fold",
        )
    return table


_FORMATS: dict[str, Callable[[Any], str]] = {
    "share": lambda v: f"{v:.1%}",
    "hour": lambda v: f"{v:02d}:00",
}


def _cell(value: object, column: str) -> RenderableType:
    """Format one value; Text (not markup) so file names and messages print as they are."""
    if value is None:
        return Text("-", style="dim")
    if column in _FORMATS:
        return Text(_FORMATS[column](value))
    if isinstance(value, Decimal | float):
        return Text(f"{value:,.2f}")
    if isinstance(value, int) and not isinstance(value, bool):
        return Text(f"{value:,}")
    if isinstance(value, dt.datetime):
        return Text(value.isoformat(sep=" ", timespec="seconds"))
    return Text(str(value))


def _records(frames: dict[str, pl.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    return {name: frame.to_dicts() for name, frame in frames.items()}


app.command()(check)
app.command()(serve)


# -- demo ------------------------------------------------------------------------------


@app.command()
def demo(
    folder: Annotated[
        Path,
        typer.Option(help="Where the demo's landing and quarantine folders go.", file_okay=False),
    ] = Path("demo"),
    warehouse: Annotated[
        str,
        typer.Option(
            "--warehouse",
            "-w",
            callback=check_warehouse,
            metavar="LOCATION",
            help="Warehouse to load. Not read from BREWLINE_WAREHOUSE or the TOML, "
            "so the demo never writes into your real warehouse by accident.",
        ),
    ] = "brewline.duckdb",
    branches: Annotated[int, typer.Option(min=1, max=40, help="Number of branches.")] = 12,
    days: Annotated[int, typer.Option(min=1, max=366, help="Trading days from 1 Nov 2024.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
) -> None:
    """Generate a realistic month of exports, load it, show headlines.

    Writes synthetic exports (fake names and cards) into FOLDER/landing, loads
    them into the warehouse with quarantine in FOLDER/quarantine and prints a
    headline report. Without BREWLINE_PII_KEY, a fixed demo-only key makes
    customer tokens so returning customers show, but only in a warehouse the
    demo made itself. Running it again skips the files already loaded.
    """
    with exit_on_error():
        spec = SynthSpec(branches=branches, days=days, seed=seed)
        with Console(stderr=True).status("Generating till exports..."):
            demo_lib.write_landing(folder, spec)
        with _progress() as (on_start, on_file):
            loaded = demo_lib.load(folder, warehouse, on_start=on_start, on_file=on_file)
    _render_demo(spec, loaded.report, loaded.figures, loaded.key_note)
    raise typer.Exit(loaded.report.exit_code)


def _render_demo(
    spec: SynthSpec, result: RunReport, figures: dict[str, Any], key_note: str
) -> None:
    console = Console()
    console.print(
        Text(
            f"Brewline demo: {spec.branches} branches x {spec.days} days from "
            f"{spec.start:%d %b %Y} (seed {spec.seed}), synthetic data",
            style="bold",
        )
    )
    console.print(_totals_line(result))
    console.print(_headline_table(figures))
    console.print(Text(key_note, style="dim"))
    console.print(f"Next: brewline report --warehouse {redact(result.warehouse)}")


def _headline_table(f: dict[str, Any]) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2))
    rows = {
        "Sales": f"{f['sales']:,}",
        "Revenue": _money(f["revenue"]),
        "Average basket": _money(f["avg_basket"]),
        "Best seller": _item(f["best_seller"]),
        "Busiest hour": "-"
        if f["busiest_hour"] is None
        else f"{f['busiest_hour']:02d}:00-{f['busiest_hour'] + 1:02d}:00",
        "Top branch (revenue)": f["top_branch"] or "-",
        "Card share of sales": _share(f["card_share"]),
        "Returning customers": "- (no customer tokens)"
        if f["returning_share"] is None
        else f"{_share(f['returning_share'])} of card sales with a customer token",
    }
    for label, value in rows.items():
        table.add_row(Text(label, style="bold"), Text(value))
    return table


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"£{value:,.2f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _item(best: tuple[str, str | None, str | None] | None) -> str:
    if best is None:
        return "-"
    product, size, variant = best
    name = f"{size} {product}" if size else product
    return f"{name} - {variant}" if variant else name
