"""What every ``brewline`` command shares: the ``--warehouse`` and ``--json`` options,
errors as one line and an exit code, warnings, JSON output, tables, the progress
bar, and opening an existing warehouse read-only.

Errors go through one helper, :func:`exit_on_error`: a Brewline or OS error
becomes ``brewline: error: <message>`` on stderr and exit code 1 (usage errors
are Typer's: exit code 2). Rich and the warehouse engines are imported inside
the functions that use them, so ``brewline --help`` does not pay for them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from brewline.errors import BrewlineError, ConfigError
from brewline.vocabulary import RunState

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from brewline.config import Settings
    from brewline.load import Warehouse
    from brewline.ops.settings import AlertSettings
    from brewline.report import FileReport

__all__ = [
    "FileProgress",
    "JsonOption",
    "WarehouseOption",
    "alert_on_error",
    "exit_on_error",
    "file_progress",
    "open_existing",
    "print_json",
    "table",
    "validate_warehouse_option",
    "warn",
]


def validate_warehouse_option(value: str | None) -> str | None:
    """Reject warehouse locations no engine can open (exit 2), without echoing a password."""
    from brewline.load.locations import engine_of

    if value is None:
        return None
    if not value.strip():
        raise typer.BadParameter("must not be empty")
    try:
        engine = engine_of(value)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message) from None
    if engine == "duckdb" and Path(value).is_dir():
        raise typer.BadParameter(f"{value} is a folder; give a DuckDB file path")
    return value


WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        "-w",
        metavar="LOCATION",
        help="DuckDB file path or postgresql:// URL [default: BREWLINE_WAREHOUSE, "
        "brewline.toml, else ./brewline.duckdb].",
        callback=validate_warehouse_option,
        show_default=False,
    ),
]
"""The ``--warehouse`` option every command shares."""

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print JSON on stdout instead of tables (money as strings)."),
]
"""The ``--json`` option of ``run``, ``status`` and ``report``."""


# -- errors and warnings -----------------------------------------------------------------


@contextmanager
def exit_on_error(
    as_json: bool = False, on_error: Callable[[BaseException], object] | None = None
) -> Iterator[None]:
    """Turn a Brewline or OS error into one line on stderr (and JSON on stdout) and exit 1.

    ``on_error`` runs first, e.g. to send an alert (see :func:`alert_on_error`).
    """
    try:
        yield
    except (BrewlineError, OSError) as exc:
        if on_error is not None:
            on_error(exc)
        if as_json:
            print_json({"status": RunState.FAILED, "exit_code": 1, "error": str(exc)})
        typer.echo(f"brewline: error: {exc}", err=True)
        raise typer.Exit(1) from None


def warn(message: object) -> None:
    """One warning line on stderr, e.g. an alert that was not delivered."""
    typer.echo(f"brewline: warning: {message}", err=True)


def alert_on_error(settings: AlertSettings, command: str) -> Callable[[BaseException], None]:
    """An ``on_error`` for :func:`exit_on_error`: send the "``command`` could not run" alert."""

    def send(error: BaseException) -> None:
        from brewline.ops.alerts import alert_error

        for failure in alert_error(settings, command, error):
            warn(failure)

    return send


# -- warehouse ---------------------------------------------------------------------------


@contextmanager
def open_existing(settings: Settings) -> Iterator[Warehouse]:
    """Open a warehouse read-only; a missing DuckDB file is an error, not a new warehouse."""
    from brewline.load import open_warehouse

    location = settings.warehouse
    with open_warehouse(location, read_only=True, lock_timeout=settings.lock_timeout) as wh:
        yield wh


# -- output ------------------------------------------------------------------------------


def print_json(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, indent=2, default=_json_value))


def _json_value(value: object) -> str:
    """Money stays exact as a string; dates and times are ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")


def table(title: str | None, columns: Sequence[str], *, numeric: Sequence[int] = ()) -> Table:
    """A plain Rich table; text folds rather than being cut, so file names stay whole."""
    from rich import box
    from rich.table import Table

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


@dataclass(frozen=True)
class FileProgress:
    """The progress hooks of :func:`brewline.pipeline.run`, driving one progress bar."""

    progress: Progress
    task: TaskID

    def on_start(self, files: int) -> None:
        self.progress.update(self.task, total=files)

    def on_file(self, _: FileReport) -> None:
        self.progress.advance(self.task)


@contextmanager
def file_progress() -> Iterator[FileProgress]:
    """A "Loading files" progress bar on stderr, shown only on a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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
        yield FileProgress(progress, progress.add_task("Loading files", total=None))
