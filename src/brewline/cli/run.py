"""``brewline run``: load new and changed branch exports, a thin layer over
:func:`brewline.pipeline.run`.

The pipeline sends the run's alert itself; this command turns ``--no-alert``
into ``alert=False``, prints any alert that was not delivered as a warning,
and prints the report (a table, or ``--json``)::

    $ brewline run landing/ --warehouse sales.duckdb
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from brewline.cli.output import (
    AlertOption,
    JsonOption,
    QuarantineOption,
    WarehouseOption,
    alert_on_error,
    exit_on_error,
    file_note,
    file_progress,
    folded,
    print_json,
    printable,
    settle_imports,
    table,
    text,
    validate_location,
    validate_locations,
    warn,
)
from brewline.report import StopRequest, is_unchanged
from brewline.vocabulary import FileState, counted

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from brewline.ops.alerts import DeliveryFailure
    from brewline.report import FileReport, RunReport

__all__ = ["MAX_FILE_ROWS", "MIN_NAME_WIDTH", "Redelivery", "run", "totals_line"]

MAX_FILE_ROWS = 40
"""Above this many changed files, ``run`` summarises by state and lists only the
rejected, failed and replaced ones; unchanged files are always one line."""

_STATE_STYLE: dict[str, str] = {
    FileState.LOADED: "green",
    FileState.SKIPPED: "dim",
    FileState.REPLACED: "cyan",
    FileState.REJECTED: "red",
    FileState.FAILED: "bold red",
}
_LISTED_STATES = (FileState.REJECTED, FileState.FAILED, FileState.REPLACED)

MIN_NAME_WIDTH = 20
"""The file column is never made narrower than this, however narrow the terminal."""


class Redelivery(StrEnum):
    """What to do with a second file covering an already loaded (branch, trading day)."""

    REPLACE = "replace"
    REJECT = "reject"


def run(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files or folders to process, or one s3://bucket/prefix/ "
            "[default: the landing area].",
            metavar="PATH",
            callback=validate_locations,
            show_default=False,
        ),
    ] = None,
    *,
    warehouse: WarehouseOption = None,
    landing: Annotated[
        str | None,
        typer.Option(
            metavar="LOCATION",
            help="Landing folder or s3://bucket/prefix/ read when no PATHS are given "
            "[default: ./landing].",
            callback=validate_location,
            show_default=False,
        ),
    ] = None,
    quarantine: QuarantineOption = None,
    redelivery: Annotated[
        Redelivery | None,
        typer.Option(
            help="A second file for an already loaded branch-day: 'replace' lets the "
            "later delivery win, 'reject' keeps the first [default: replace].",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    alert: AlertOption = True,
) -> None:
    """Load new and changed branch exports into the warehouse.

    Files already loaded with the same content are skipped, a corrected file
    replaces its earlier version, and a file that cannot be understood is
    rejected with a reason. A warehouse made by `brewline demo` keeps using the
    demo's customer-token key when BREWLINE_PII_KEY is not set. Exits 0 when
    every file ended loaded, skipped or replaced, 1 when any was rejected or
    failed or an error stopped the run. Ctrl+C or SIGTERM stops the run before
    its next commit: what it committed stays, the rest is pending for the next
    run; it exits 130 (SIGINT) or 143 (SIGTERM). A run that had nothing left
    to commit when the signal came ends as usual.
    """
    with _stopping_on_signals() as stop:
        _run(
            stop,
            paths,
            overrides={
                "warehouse": warehouse,
                "landing": landing,
                "quarantine": quarantine,
                "redelivery": redelivery.value if redelivery else None,
            },
            as_json=as_json,
            alert=alert,
        )


@contextmanager
def _stopping_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM ask the run to stop before its next commit, rather than raise
    wherever they land (inside a warehouse statement, a traceback and a half-done
    rollback). A second signal changes nothing: the run is already stopping."""
    stop = StopRequest()
    signals = (signal.SIGINT, signal.SIGTERM)
    try:
        before = {s: signal.signal(s, lambda signum, _: stop.ask(signum)) for s in signals}
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        before = {}
    try:
        yield stop
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _run(
    stop: StopRequest,
    paths: list[str] | None,
    *,
    overrides: dict[str, str | None],
    as_json: bool,
    alert: bool,
) -> None:
    """The command itself, once signals only ask it to stop."""
    from rich.console import Console

    from brewline.config import load_settings
    from brewline.demo import with_demo_key
    from brewline.pipeline import run as run_pipeline

    settle_imports()
    with exit_on_error(as_json):
        settings, demo_note = with_demo_key(load_settings(**overrides))
    undelivered: list[DeliveryFailure] = []
    on_error = alert_on_error(settings, "run") if alert else None
    with exit_on_error(as_json, on_error), file_progress() as progress:
        report = run_pipeline(
            settings,
            list(paths) if paths else None,
            on_start=progress.on_start,
            on_file=progress.on_file,
            alert=alert,
            on_alert_failure=undelivered.append,
            stop=stop,
        )
    for failure in undelivered:
        warn(failure)
    if report.no_exports:  # on stderr, so a script sees it beside --json's "no_exports"
        where = ", ".join(paths) if paths else str(settings.landing)
        warn(f"no export to process in {where}" + _ignored_note(report))
    if as_json:
        print_json(report.to_dict())
    else:
        console = Console()
        _render_run(report, console)
        if demo_note:
            console.print(text(demo_note, style="dim"))
    if report.interrupted_by is not None:
        typer.echo(report.interrupted_line(), err=True)
    raise typer.Exit(report.exit_code)


def _render_run(report: RunReport, console: Console) -> None:
    """Files worth reading one by one, unchanged ones as one line, then the totals.

    Long lines are soft-wrapped (left to the terminal), so a file name or a path
    is never broken by a newline in the middle; table cells fold names only at
    separators (see :func:`~brewline.cli.output.folded`).
    """
    unchanged = [f for f in report.files if is_unchanged(f)]
    listed = [f for f in report.files if not is_unchanged(f)]
    if not report.files:
        stopped = report.interrupted_by is not None  # before its first commit: files remain
        console.print("Nothing committed before the stop." if stopped else "No files to process.")
    elif len(listed) <= MAX_FILE_ROWS:
        if listed:
            _print_files(listed, "Files", console)
        if unchanged:
            console.print(text(f"{counted(len(unchanged), 'file')} unchanged, skipped."))
    else:
        console.print(_states_table(report))
        notable = [f for f in listed if _notable(f)]
        if notable:
            _print_files(notable, "Rejected, failed or replaced files", console)
    ignored = report.ignored_line()
    if ignored:
        console.print(text(ignored + "."))  # wrapped at the spaces between names
    console.print(totals_line(report), soft_wrap=True)


def _ignored_note(report: RunReport) -> str:
    ignored = report.ignored_line()
    return f" ({ignored})" if ignored else ""


def _notable(f: FileReport) -> bool:
    """Worth listing even among many files: it failed, or it replaced or was replaced."""
    return f.state in _LISTED_STATES or bool(f.replaced or f.partly_replaced)


def _print_files(files: Sequence[FileReport], title: str, console: Console) -> None:
    """A table of files, then one line per file that has more to say than its reason."""
    others = console.measure(_files_table(files, title, [""] * len(files))).maximum
    width = max(console.width - (others - len("file")), MIN_NAME_WIDTH)
    console.print(_files_table(files, title, [folded(f.source_name, width) for f in files]))
    for f in files:
        note = file_note(f)
        if note:
            console.print(text(f"{f.source_name}: {note}"), soft_wrap=True)


def _files_table(files: Sequence[FileReport], title: str, names: Sequence[RenderableType]) -> Table:
    files_table = table(
        title,
        ["file", "state", "read", "loaded", "rejected", "reason"],
        numeric=(2, 3, 4),
        whole=(1, 5),
    )
    for f, name in zip(files, names, strict=True):
        counts = (f"{f.rows_read:,}", f"{f.rows_loaded:,}", f"{f.rows_rejected:,}")
        files_table.add_row(name, _state(f.state), *counts, f.reason or "")
    return files_table


def _states_table(report: RunReport) -> Table:
    states = table(
        "Files by state", ["state", "files", "read", "loaded", "rejected"], numeric=(1, 2, 3, 4)
    )
    for state in sorted({f.state for f in report.files}):
        files = [f for f in report.files if f.state == state]
        sums = [
            sum(getattr(f, n) for f in files) for n in ("rows_read", "rows_loaded", "rows_rejected")
        ]
        states.add_row(_state(state), f"{len(files):,}", *(f"{n:,}" for n in sums))
    return states


def _state(state: str) -> Text:
    return text(state, style=_STATE_STYLE.get(state, ""))


def totals_line(report: RunReport) -> Text:
    """The run in four lines: files by outcome, rows, the warehouse, and the run."""
    from rich.text import Text

    t = report.totals()
    tokens = "on" if report.customer_tokens else "off (no PII key set)"
    replaced = counted(t["files_replaced"], "earlier version")
    failed = f", {t['files_failed']:,} failed" if t["files_failed"] else ""
    return Text(
        f"{counted(len(report.files), 'file')}: {t['files_loaded']:,} loaded, "
        f"{t['files_skipped']:,} skipped, {t['files_rejected']:,} rejected{failed}; "
        f"{replaced} replaced.\n"
        f"Rows: {t['rows_read']:,} read, {t['rows_loaded']:,} loaded, "
        f"{t['rows_rejected']:,} rejected in {t['seconds']:.2f}s.\n"
        f"Warehouse {printable(report.warehouse)}\n"  # a path alone on its line: 80 columns
        f"Run {report.run_id}, customer tokens {tokens}." + _stopped_line(report),
        style="bold red" if report.exit_code else "bold",
    )


def _stopped_line(report: RunReport) -> str:
    """When an error stopped the run: what was committed, and that the rest waits."""
    if report.error is None:
        return ""
    committed = counted(report.committed(), "file")
    return (
        f"\nStopped early: {committed} committed, {report.pending:,} pending (the next run "
        f"loads them): {printable(report.error)}"
    )
