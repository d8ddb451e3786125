"""What every ``brewline`` command shares: the ``--warehouse`` and ``--json`` options,
errors as one line and an exit code, warnings, JSON output, tables, the progress
bar, and opening an existing warehouse read-only.

Values from the data (branch, product and file names, reasons, messages) reach
the terminal only through :func:`printable` (via :func:`text` and the cells of
:func:`table`), which writes control characters as ``\\x1b`` text, so an export
cannot clear the screen or retitle the terminal. JSON output stays exact.

Errors go through one helper, :func:`exit_on_error`: a Brewline or OS error
becomes ``brewline: error: <message>`` on stderr and exit code 1 (usage errors
are Typer's: exit code 2). Rich and the warehouse engines are imported inside
the functions that use them, so ``brewline --help`` does not pay for them.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from brewline.errors import BrewlineError, ConfigError
from brewline.vocabulary import FileState, RunState, counted

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.progress import Progress, TaskID
    from rich.table import Table
    from rich.text import Text

    from brewline.config import Settings
    from brewline.load import Warehouse
    from brewline.ops.settings import AlertSettings
    from brewline.report import FileReport

__all__ = [
    "AlertOption",
    "FileProgress",
    "JsonOption",
    "QuarantineOption",
    "WarehouseOption",
    "alert_on_error",
    "exit_on_error",
    "file_note",
    "file_problem",
    "file_progress",
    "folded",
    "money",
    "open_existing",
    "print_json",
    "printable",
    "table",
    "text",
    "validate_location",
    "validate_locations",
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
    if engine == "duckdb" and value != ":memory:" and not Path(value).parent.is_dir():
        # A typo'd path must not silently grow folders and a new, empty warehouse.
        raise typer.BadParameter(f"{value}: folder {Path(value).parent} does not exist")
    return value


def validate_locations(values: list[str] | None) -> list[str] | None:
    """Landing locations: folders and files that exist, or ``s3://bucket/prefix/`` (exit 2)."""
    if values and len(values) > 1 and any(v.startswith("s3://") for v in values):
        raise typer.BadParameter("give one s3:// location per run, without local paths beside it")
    for value in values or ():
        if value.startswith("s3://"):
            from brewline.sources.s3 import S3Prefix

            try:
                S3Prefix.parse(value)
            except ConfigError as exc:
                raise typer.BadParameter(exc.message) from None
        elif "://" in value:
            raise typer.BadParameter(f"{value!r}: give a local path or an s3:// location")
        elif not Path(value).exists():
            raise typer.BadParameter(f"{value} does not exist")
    return values


def validate_location(value: str | None) -> str | None:
    """One landing or quarantine location (see :func:`validate_locations`)."""
    return None if value is None else validate_locations([value])[0]  # type: ignore[index]


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

QuarantineOption = Annotated[
    str | None,
    typer.Option(
        "--quarantine",
        metavar="LOCATION",
        help="Where raw rejected lines go (they may hold personal data): a folder, or an "
        "s3:// prefix for an S3 landing area "
        "[default: <landing>/_quarantine, s3://<bucket>/_quarantine/].",
        show_default=False,
    ),
]
"""The ``--quarantine`` option of ``run`` and ``watch``."""

AlertOption = Annotated[
    bool,
    typer.Option(
        "--alert/--no-alert",
        help="Send one alert per run with rejected or failed files, or that failed, to the "
        "configured webhook, e-mail and/or SNS topic (nothing is sent when none is configured).",
    ),
]
"""The ``--alert/--no-alert`` option of ``run`` and ``watch``."""

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print JSON on stdout instead of tables (money as strings)."),
]
"""The ``--json`` option of ``run``, ``status`` and ``report``."""


# -- errors and warnings -----------------------------------------------------------------


def settle_imports() -> None:
    """Call once a loading command has imported what it needs (Polars, DuckDB, the pipeline).

    Those objects live as long as the process; freezing them out of the cyclic
    collector's generations measured 4-5% off the wall and CPU time of a
    million-sale ``brewline run`` on 2 cores (``benchmarks/bench_load.py``).
    """
    gc.freeze()


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
        typer.echo(f"brewline: error: {printable(exc)}", err=True)
        raise typer.Exit(1) from None


def warn(message: object) -> None:
    """One warning line on stderr, e.g. an alert that was not delivered."""
    typer.echo(f"brewline: warning: {printable(message)}", err=True)


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

_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))} | {
    code: f"\\u{code:04x}"
    for code in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}
"""C0, DEL, C1, and the bidirectional controls that make a terminal show text reversed."""


def printable(value: object) -> str:
    """``value`` as text a terminal shows as is: C0, DEL and C1 controls become ``\\xNN``,
    bidirectional controls ``\\uNNNN``.

    >>> printable("\\x1b[2JLeeds\\tWest End"), printable("\\u202eLeeds")
    ('\\\\x1b[2JLeeds\\\\x09West End', '\\\\u202eLeeds')
    """
    return str(value).translate(_CONTROLS)


def file_note(f: FileReport) -> str:
    """What a person may need to act on: the message, replaced files, the quarantine file."""
    notes = []
    if f.message and f.reason != "unchanged":
        notes.append(f.message)
    if f.replaced:
        notes.append("replaced " + ", ".join(f.replaced))
    if f.partly_replaced:
        notes.append("took branch-days over from " + ", ".join(f.partly_replaced))
    if f.quarantine is not None:
        notes.append(f"{counted(f.rows_rejected, 'rejected line')} kept in {f.quarantine}")
    return "; ".join(notes)


def file_problem(f: FileReport) -> str | None:
    """A rejected or failed file as one :func:`printable` line: name, state, reason and
    :func:`file_note`, e.g. ``york.csv: rejected (empty_file: the file is empty)``; None
    for a file that ended well."""
    if f.state not in (FileState.REJECTED, FileState.FAILED):
        return None
    why = ": ".join(part for part in (f.reason, file_note(f)) if part)
    return printable(f"{f.source_name}: {f.state}" + (f" ({why})" if why else ""))


def text(value: object, style: str = "") -> Text:
    """A Rich ``Text`` of :func:`printable` ``value``: never markup, never a control sequence."""
    from rich.text import Text

    return Text(printable(value), style=style)


def money(value: Decimal | None, currency: str | None = None) -> str:
    """Pounds as people read them: ``£1,234.50``, ``-£2.10``; ``-`` for no value.

    With a ``currency`` code, the amount follows it: ``USD 1,234.50``, ``EUR -2.10``.

    >>> money(Decimal("1234.5")), money(Decimal("-2.1")), money(None)
    ('£1,234.50', '-£2.10', '-')
    >>> money(Decimal("1234.5"), "USD"), money(Decimal("-2.1"), "EUR")
    ('USD 1,234.50', 'EUR -2.10')
    """
    if value is None:
        return "-"
    if currency is not None:
        return f"{currency} {value:,.2f}"
    return f"{'-' if value < 0 else ''}£{abs(value):,.2f}"


def print_json(payload: dict[str, Any], *, one_line: bool = False) -> None:
    """Pretty JSON, or with ``one_line`` a JSON Lines record (a stream of them, e.g. ``watch``)."""
    typer.echo(json.dumps(payload, indent=None if one_line else 2, default=_json_value))


def _json_value(value: object) -> str:
    """Money stays exact as a string; dates and times are ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")


def table(
    title: str | None,
    columns: Sequence[str],
    *,
    numeric: Sequence[int] = (),
    whole: Sequence[int] = (),
) -> Table:
    """A plain Rich table whose cells are :func:`printable`; text folds rather than being cut.

    ``numeric`` columns are right-aligned and never wrapped, nor are ``whole``
    ones (short codes such as states and reasons). Add rows with
    :meth:`~rich.table.Table.add_row` as usual: strings and ``Text`` cells are made
    printable on the way in (a ``Text`` keeps its style).
    """
    from rich import box

    table = _printable_table()(
        title=None if title is None else text(title),
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for i, name in enumerate(columns):
        right = i in numeric
        table.add_column(
            name.replace("_", " "),
            justify="right" if right else "left",
            no_wrap=right or i in whole,
            overflow="fold",
        )
    return table


_FOLDERS = re.compile(r"(?<=[/\\])")
_WORDS = re.compile(r"(?<=[_.\-\s])")


def folded(name: str, width: int) -> RenderableType:
    """:func:`printable` ``name`` on lines of at most ``width``, broken only at separators.

    For a table cell, where Rich would otherwise fold a long name anywhere. A
    name breaks after its folders first (``/``), and a part still too long after
    ``_``, ``.``, ``-`` or a space; a piece with none of those stays whole.

    >>> [line.plain for line in folded("coffeetl-2024/leeds_09-05-2023.csv", 24).renderables]
    ['coffeetl-2024/', 'leeds_09-05-2023.csv']
    """
    from rich.console import Group

    lines = [""]
    for part in _FOLDERS.split(printable(name)):
        pieces = [part] if len(part) <= width else _WORDS.split(part)
        for piece in pieces:
            if lines[-1] and len(lines[-1]) + len(piece) > width:
                lines.append("")
            lines[-1] += piece
    return Group(*(text(line) for line in lines))


def _printable_cell(cell: RenderableType | None) -> RenderableType | None:
    """A ``str`` or ``Text`` cell made :func:`printable` (a ``Text`` keeps its style)."""
    from rich.text import Text

    if isinstance(cell, Text):
        return text(cell.plain, style=str(cell.style))
    return text(cell) if isinstance(cell, str) else cell


@cache
def _printable_table() -> type[Table]:
    """``rich.table.Table`` whose ``add_row`` makes every cell printable (built on first use)."""
    from rich.table import Table

    class PrintableTable(Table):
        def add_row(
            self, *renderables: RenderableType | None, style: Any = None, end_section: bool = False
        ) -> None:
            cells = (_printable_cell(cell) for cell in renderables)
            super().add_row(*cells, style=style, end_section=end_section)

    return PrintableTable


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
