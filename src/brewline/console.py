"""What every ``brewline`` command shares: errors as one line and an exit code,
JSON output, and opening an existing warehouse read-only.

Used by :mod:`brewline.cli` and the commands it registers (``check``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from brewline.config import Settings
from brewline.errors import BrewlineError, WarehouseError
from brewline.load import Warehouse, open_warehouse
from brewline.load.open import is_postgres

__all__ = ["WarehouseOption", "check_warehouse", "exit_on_error", "open_existing", "print_json"]


def check_warehouse(value: str | None) -> str | None:
    """Reject warehouse locations no engine can open (exit 2), without echoing a password."""
    if value is None:
        return None
    if not value.strip():
        raise typer.BadParameter("must not be empty")
    if "://" in value and not is_postgres(value):
        scheme = value.split("://", 1)[0]
        raise typer.BadParameter(
            f"unsupported scheme {scheme}://; give a DuckDB file path or a postgresql:// URL"
        )
    if not is_postgres(value) and Path(value).is_dir():
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
        callback=check_warehouse,
        show_default=False,
    ),
]
"""The ``--warehouse`` option every command shares."""


@contextmanager
def exit_on_error(
    as_json: bool = False, on_error: Callable[[BaseException], object] | None = None
) -> Iterator[None]:
    """Turn a Brewline or OS error into one line on stderr (and JSON on stdout) and exit 1.

    ``on_error`` runs first, e.g. to send an alert.
    """
    try:
        yield
    except (BrewlineError, OSError) as exc:
        if on_error is not None:
            on_error(exc)
        if as_json:
            print_json({"status": "failed", "exit_code": 1, "error": str(exc)})
        typer.echo(f"brewline: error: {exc}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def open_existing(settings: Settings) -> Iterator[Warehouse]:
    """Open a warehouse read-only; a missing DuckDB file is an error, not a new warehouse."""
    location = settings.warehouse
    if not is_postgres(location) and location != ":memory:" and not Path(location).exists():
        raise WarehouseError(f"no warehouse at {location}; load one with `brewline run`")
    with open_warehouse(location, read_only=True, lock_timeout=settings.lock_timeout) as wh:
        yield wh


def print_json(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, indent=2, default=_json_value))


def _json_value(value: object) -> str:
    """Money stays exact as a string; dates and times are ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot turn {type(value).__name__} into JSON")
