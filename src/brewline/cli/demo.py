"""``brewline demo``: a synthetic month of exports, loaded and summarised, a thin layer
over :mod:`brewline.demo`::

    $ brewline demo --branches 3 --days 7 --warehouse demo.duckdb
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import sys
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from brewline.cli.output import (
    exit_on_error,
    file_progress,
    money,
    text,
    validate_warehouse_option,
)
from brewline.vocabulary import counted, item_label

if TYPE_CHECKING:
    from rich.table import Table

    from brewline.demo import DemoLoad, SynthSpec

__all__ = ["DemoSource", "demo", "next_commands", "this_program"]


class DemoSource(StrEnum):
    """Which business the demo generates."""

    CAFE = "cafe"
    TOTESYS = "totesys"


def demo(
    *,
    folder: Annotated[
        Path,
        typer.Option(help="Where the demo's landing and quarantine folders go.", file_okay=False),
    ] = Path("demo"),
    warehouse: Annotated[
        str,
        typer.Option(
            "--warehouse",
            "-w",
            callback=validate_warehouse_option,
            metavar="LOCATION",
            help="Warehouse to load. Not read from BREWLINE_WAREHOUSE or the TOML, "
            "so the demo never writes into your real warehouse by accident.",
        ),
    ] = "brewline.duckdb",
    branches: Annotated[int, typer.Option(min=1, max=40, help="Number of branches.")] = 12,
    days: Annotated[int, typer.Option(min=1, max=366, help="Trading days from 1 Nov 2024.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
    source: Annotated[
        DemoSource,
        typer.Option(
            help="cafe: till exports from branches; totesys: an operational PostgreSQL "
            "database of a tote-bag company, synced through a parquet lake in FOLDER/lake."
        ),
    ] = DemoSource.CAFE,
    source_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="With --source totesys: an empty PostgreSQL database to generate into "
            "[default: a throwaway cluster, removed afterwards].",
            show_default=False,
        ),
    ] = None,
    sales_orders: Annotated[
        int, typer.Option(min=10, help="With --source totesys: sales orders to generate.")
    ] = 10_000,
) -> None:
    """Generate a realistic month of exports, load it, show headlines.

    Writes synthetic exports (fake names and cards) into FOLDER/landing, loads
    them into the warehouse with quarantine in FOLDER/quarantine and prints a
    headline report. Without BREWLINE_PII_KEY, a fixed demo-only key makes
    customer tokens so returning customers show, but only in a warehouse the
    demo made itself. Running it again skips the files already loaded.
    """
    from rich.console import Console

    from brewline.demo import SynthSpec, load, write_landing

    if source == DemoSource.TOTESYS:
        _totesys(folder, warehouse, source_url, sales_orders, seed)
        return
    with exit_on_error():
        spec = SynthSpec(branches=branches, days=days, seed=seed)
        with Console(stderr=True).status("Generating till exports..."):
            write_landing(folder, spec)
        with file_progress() as progress:
            loaded = load(folder, warehouse, on_start=progress.on_start, on_file=progress.on_file)
    _render_demo(spec, loaded, folder, warehouse)
    raise typer.Exit(loaded.report.exit_code)


def this_program(argv: list[str] | None = None) -> list[str]:
    """The words that start this Brewline again from the current folder, as it was started.

    ``make demo`` runs ``.venv/bin/brewline``, which is not on PATH: a bare
    ``brewline`` would not be found. A program found on PATH is named bare, one
    under the current folder by its relative path, anything else by its absolute one;
    ``python -m brewline`` stays that, with this interpreter.

        >>> this_program(["/nowhere/bin/brewline", "demo"])
        ['/nowhere/bin/brewline']
    """
    started = Path((argv or sys.argv)[0])
    if started.name == "__main__.py":
        return [_runnable(Path(sys.executable)), "-m", "brewline"]
    return [_runnable(started)]


def _runnable(program: Path) -> str:
    on_path = shutil.which(program.name)
    if on_path and Path(on_path).resolve() == program.resolve():
        return program.name
    absolute = program.absolute()  # not resolve(): keep the venv's link as the user typed it
    if absolute.is_relative_to(Path.cwd()):
        return str(absolute.relative_to(Path.cwd()))  # it has a '/', so the shell takes it as given
    return str(absolute)


def next_commands(
    folder: Path, warehouse: str, check_as_of: dt.date, program: list[str] | None = None
) -> list[str]:
    """What to try after the demo, as shell commands that run from the current folder.

    Paths are printed as given (so relative ones stay relative to where the demo
    ran) and quoted for the shell. ``check`` is as of the day after the demo's
    last (its data is from 2024, so against today's clock it would fail). A warehouse
    URL's password is never printed, so with one the commands need it put back (the
    demo says so).

        >>> next_commands(Path("demo"), "brewline.duckdb", dt.date(2024, 12, 1), ["brewline"])[2]
        'brewline check --as-of 2024-12-01 --warehouse brewline.duckdb'
    """
    from brewline.load.locations import redact

    where = ["--warehouse", redact(warehouse)]
    landing, quarantine = str(folder / "landing"), str(folder / "quarantine")
    commands = (
        ["report", *where],
        ["status", *where],
        ["check", "--as-of", check_as_of.isoformat(), *where],
        ["run", landing, *where, "--quarantine", quarantine],
    )
    return [shlex.join([*(program or this_program()), *command]) for command in commands]


def _render_demo(spec: SynthSpec, loaded: DemoLoad, folder: Path, warehouse: str) -> None:
    from rich.console import Console

    from brewline.cli.run import totals_line
    from brewline.load.locations import redact

    console = Console()
    console.print(
        text(
            f"Brewline demo: {counted(spec.branches, 'branch', 'branches')} x "
            f"{counted(spec.days, 'day')} from "
            f"{spec.start:%d %b %Y} (seed {spec.seed}), synthetic data",
            style="bold",
        )
    )
    console.print(totals_line(loaded.report), soft_wrap=True)
    console.print(_headline_table(loaded.figures))
    console.print(text(loaded.key_note, style="dim"))
    hidden = redact(warehouse) != warehouse
    console.print(text("Next (put the warehouse password in for ***):" if hidden else "Next:"))
    after = spec.start + dt.timedelta(days=spec.days)  # its last day is then the due day
    for command in next_commands(folder, warehouse, after):  # soft wrap: one line to copy
        console.print(text(f"  {command}"), soft_wrap=True)


def _headline_table(f: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, padding=(0, 2))
    rows = {
        "Sales": f"{f['sales']:,}",
        "Revenue": money(f["revenue"]),
        "Average basket": money(f["avg_basket"]),
        "Best seller (units)": "-" if f["best_seller"] is None else item_label(*f["best_seller"]),
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
        table.add_row(text(label, style="bold"), text(value))
    return table


def _totesys(
    folder: Path, warehouse: str, source_url: str | None, sales_orders: int, seed: int
) -> None:
    from rich.console import Console

    from brewline.cli.sync import summary
    from brewline.load.locations import redact
    from brewline.totesys.demo import run_demo

    console = Console(stderr=True)
    with exit_on_error():
        where = "your database" if source_url else "a throwaway PostgreSQL cluster"
        with console.status(f"Generating a tote-bag business in {where} and syncing it..."):
            done = run_demo(
                warehouse,
                folder / "lake",
                source_url=source_url,
                sales_orders=sales_orders,
                seed=seed,
            )
    out = Console()
    out.print(
        text(f"Brewline demo: totesys, {sales_orders:,} sales orders (seed {seed})", style="bold")
    )
    out.print(text("First sync:", style="bold"))
    for line in summary(done.first.to_dict()):
        out.print(text(f"  {line}"))
    out.print(text("After a little trading, an incremental sync:", style="bold"))
    for line in summary(done.second.to_dict()):
        out.print(text(f"  {line}"))
    for currency, revenue in done.revenue:
        out.print(text(f"Revenue (current orders): {currency} {Decimal(revenue):,.2f}"))
    out.print(text("Next:"))
    for command in (["report", "--source", "totesys"], ["serve"]):
        line = shlex.join([*this_program(), *command, "--warehouse", redact(warehouse)])
        out.print(text(f"  {line}"), soft_wrap=True)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
