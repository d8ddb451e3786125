"""The ``brewline`` command line: a thin layer over the library.

Each command parses its options into :class:`~brewline.config.Settings`, calls
the library (:func:`brewline.pipeline.run`, :mod:`brewline.queries`,
:mod:`brewline.ops`, :mod:`brewline.demo`, :mod:`brewline.serve`) and renders
the result with Rich. Brewline errors become one line on stderr and exit code 1;
usage errors exit 2 (see :mod:`brewline.cli.output`).

One module per command group: :mod:`~brewline.cli.run` (run), :mod:`~brewline.cli.watch` (watch),
:mod:`~brewline.cli.inspect` (status, report), :mod:`~brewline.cli.admin` (init,
grant-readonly), :mod:`~brewline.cli.check` (check), :mod:`~brewline.cli.serve`
(serve), :mod:`~brewline.cli.demo` (demo). They import Polars, DuckDB, pydantic,
Rich and the rest inside the commands, so ``brewline --help`` starts in a blink.

    $ brewline run landing/ --warehouse sales.duckdb
    $ brewline report --json | jq .best_sellers[0]
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from brewline import __version__
from brewline.cli import admin, check, demo, inspect, run, serve, sync, watch
from brewline.cli.output import warn

__all__ = ["app"]

APP_HELP = """\
Brewline: branch till exports -> a private, query-ready sales warehouse.

Settings come from (highest first) command-line options, BREWLINE_* environment
variables, ./brewline.toml (or the file BREWLINE_CONFIG names), then defaults.
The customer-token secret is only ever read from BREWLINE_PII_KEY or the TOML.

Exit codes: 0 = every file loaded, skipped or replaced; 1 = a file was rejected
or failed, or an error (bad setting, warehouse busy or unreadable) stopped the
command; 2 = usage error (unknown option, bad option value); 130/143 = `run`
stopped by Ctrl+C/SIGTERM before its next commit (run again for the rest).
"""

app = typer.Typer(
    name="brewline",
    help=APP_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    # Locals in a traceback could hold row content or the PII key: never show them.
    pretty_exceptions_show_locals=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"brewline {__version__}")
        raise typer.Exit()


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
    if any(name.upper().startswith("BREWLINE_") for name in os.environ):  # else skip pydantic
        from brewline.config import unknown_variables

        for message in unknown_variables(os.environ):
            warn(message)


app.command()(run.run)
app.command()(watch.watch)
app.command()(sync.sync)
app.command()(admin.init)
app.command("grant-readonly")(admin.grant_readonly)
app.command()(inspect.status)
app.command()(inspect.report)
app.command()(check.check)
app.command()(serve.serve)
app.command()(demo.demo)
