"""``brewline watch``: load what lands, as it lands, until stopped.

A thin layer over :func:`brewline.watch.watch`: one line per run (or a JSON
Lines record per run with ``--json``), the run alerts of ``brewline run``, and a
clean stop on SIGTERM or Ctrl+C (the run in hand finishes; a second signal
abandons it, and its uncommitted files stay pending for next time)::

    $ brewline watch landing/
    $ brewline watch s3://cafe-landing/landing/ --queue https://sqs.../brewline-landing
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from brewline.cli.output import (
    AlertOption,
    JsonOption,
    QuarantineOption,
    WarehouseOption,
    exit_on_error,
    file_problem,
    print_json,
    printable,
    settle_imports,
    validate_location,
)
from brewline.vocabulary import FileState, counted

if TYPE_CHECKING:
    from brewline.report import RunReport

__all__ = ["problem_lines", "summary_line", "watch"]


def watch(
    location: Annotated[
        str | None,
        typer.Argument(
            help="Landing folder or s3://bucket/prefix/ [default: the landing setting].",
            metavar="[PATH | s3://BUCKET/PREFIX/]",
            callback=validate_location,
            show_default=False,
        ),
    ] = None,
    *,
    warehouse: WarehouseOption = None,
    queue: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="SQS queue receiving the bucket's S3 event notifications (s3:ObjectCreated:*); "
            "without it an S3 prefix is polled.",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(min=1, metavar="SECONDS", help="How often an S3 prefix is polled."),
    ] = 30.0,
    quarantine: QuarantineOption = None,
    as_json: JsonOption = False,
    alert: AlertOption = True,
) -> None:
    """Load new and changed branch exports as they land, until stopped.

    A folder is watched through filesystem events: files that land together
    are loaded in one run. An S3 prefix is fed by its event notifications on an
    SQS queue (--queue) or polled (--interval). A folder or polled prefix is
    first caught up with one full run. Each run is the same as `brewline run`
    (ledger, replacements, quarantine, alerts), and with DuckDB it holds the
    file only while committing, so `brewline serve` keeps answering. Stop with
    Ctrl+C or SIGTERM: the run in hand finishes first. Exits 0 when stopped,
    1 when it cannot start (bad settings, unreachable warehouse or store).
    """
    from brewline.config import load_settings
    from brewline.watch import watch as watch_loop

    settle_imports()
    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse, quarantine=quarantine)
        where = location if location is not None else str(settings.landing)
        stop = threading.Event()
        _stop_on_signals(stop)
        if not as_json:
            typer.echo(f"Watching {printable(where)} (Ctrl+C to stop)", err=True)

        def show(report: RunReport) -> None:
            if as_json:
                print_json(report.to_dict(), one_line=True)
            else:
                typer.echo(summary_line(report))
                for line in problem_lines(report):
                    typer.echo(line)

        watch_loop(
            settings,
            where,
            stop=stop,
            on_report=show,
            queue=queue,
            interval=interval,
            alert=alert,
        )
    if not as_json:
        typer.echo("Stopped.", err=True)


def summary_line(report: RunReport) -> str:
    """One line a run: when, what happened to its files and rows (fits 80 columns)."""
    t = report.totals()
    parts = [
        f"{t['files_loaded']} loaded" if t["files_loaded"] else "",
        f"{t['files_skipped']} skipped" if t["files_skipped"] else "",
        f"{t['files_rejected']} rejected" if t["files_rejected"] else "",
        f"{report.count(FileState.FAILED)} failed" if report.count(FileState.FAILED) else "",
    ]
    said = ", ".join(p for p in parts if p) or "nothing to do"
    line = (
        f"{time.strftime('%H:%M:%S')} {counted(len(report.files), 'file')}: {said}; "
        f"{t['rows_loaded']:,} rows loaded"
    )
    if report.error:
        line += f"; stopped: {printable(report.error)}"
    return line


def problem_lines(report: RunReport) -> list[str]:
    """A line for each rejected or failed file of the run, naming it and why (as ``run``
    notes it), so the summary's "2 rejected" can be acted on."""
    return [line for line in map(file_problem, report.files) if line is not None]


def _stop_on_signals(stop: threading.Event) -> None:
    """The first SIGTERM/SIGINT asks the loop to stop; a second one interrupts at once."""

    def asked(signum: int, _: FrameType | None) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, asked)
    signal.signal(signal.SIGINT, asked)
