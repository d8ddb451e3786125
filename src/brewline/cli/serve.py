"""``brewline serve``: run the dashboard (:mod:`brewline.serve`) under uvicorn.

A Typer-compatible function, registered by the CLI with ``app.command()(serve)``;
it parses options into settings, builds the app (:func:`brewline.serve.app.create_app`)
and hands it to uvicorn. Starlette, Plotly and the engines are imported when
the command runs, never when the CLI starts.

    $ brewline serve --warehouse sales.duckdb --port 8080
"""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from brewline.cli.output import WarehouseOption, exit_on_error, printable, validate_location
from brewline.errors import BrewlineError, ConfigError

if TYPE_CHECKING:
    from brewline.serve.app import DashboardConfig

__all__ = ["serve"]


def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. 127.0.0.1 keeps the dashboard on this machine; "
            "0.0.0.0 exposes it to the network, and it has no login of its own: put it "
            "behind a proxy that authenticates."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8080,
    warehouse: WarehouseOption = None,
    late_after: Annotated[
        int,
        typer.Option(
            "--late-after",
            min=0,
            max=3650,
            metavar="DAYS",
            help="A branch is late when its last loaded trading day is more than DAYS "
            "before the due day (yesterday, branch time; 0: the due day itself is missing). "
            "The operations page's ?late_after= overrides it.",
        ),
    ] = 0,
    watch: Annotated[
        str | None,
        typer.Option(
            metavar="PATH | s3://BUCKET/PREFIX/",
            help="Also load what lands there, as `brewline watch` does, in a child process "
            "that stops with the dashboard.",
            callback=validate_location,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a read-only web dashboard over the warehouse.

    Pages: / (sales: revenue by day, month and branch, best and worst sellers,
    hour x weekday heatmap, baskets, cash vs card, new vs returning customers;
    filter by date range and branch), /operations (recent runs, files by state,
    rejected rows by reason, freshness with late branches), /metrics (Prometheus)
    and /healthz (JSON; 503 when the warehouse cannot be read).

    Each request opens the warehouse read-only and closes it before answering,
    so `brewline run` and `brewline watch` can keep loading a DuckDB file (they
    hold it only while committing). While a load commits, a page shown before
    comes back as it was, with a note, and one never shown waits up to a second,
    then answers 503 "warehouse busy, retry". --watch PATH runs the watcher
    beside the dashboard and stops it with the dashboard. Charts work without internet: the
    dashboard serves Plotly.js itself. Stop with Ctrl+C.
    """
    from brewline.config import load_settings
    from brewline.load.locations import require_folder

    with exit_on_error():
        settings = load_settings(warehouse=warehouse)
        require_folder(settings.warehouse)  # a warehouse still to come, but never there
        listening = _listen(host, port)  # before the address is shown as if it served
    from brewline.load.locations import redact
    from brewline.serve.app import DashboardConfig

    config = DashboardConfig(
        settings.warehouse, late_after=late_after, cutoff_hour=settings.check_cutoff_hour
    )
    where = printable(redact(config.warehouse))
    typer.echo(f"Brewline dashboard for {where}: http://{host}:{port}/")
    problem = _first_look(config)
    if problem:
        typer.echo(
            f"Warning: {printable(problem)} (serving anyway; pages say so until it is fixed)",
            err=True,
        )
    with _watcher(watch, settings.warehouse):
        _run(config, listening)


@contextmanager
def _watcher(location: str | None, warehouse: str) -> Iterator[None]:
    """``brewline watch LOCATION`` beside the dashboard, stopped (SIGTERM) with it.

    A process of its own: with DuckDB it holds the file only while committing,
    so the dashboard's read-only opens get their turn between commits.
    """
    if location is None:
        yield
        return
    command = [sys.executable, "-m", "brewline", "watch", location, "--warehouse", warehouse]
    child = subprocess.Popen(command)
    try:
        yield
    finally:
        child.terminate()  # the run in hand finishes; nothing is left half-loaded
        try:
            child.wait(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()


def _first_look(config: DashboardConfig) -> str | None:
    """Why the warehouse cannot be read right now, or None: a typo shows at start."""
    from brewline.load import open_warehouse

    try:
        with open_warehouse(config.warehouse, read_only=True, lock_timeout=0) as wh:
            wh.check_schema()
    except BrewlineError as exc:
        return str(exc)
    return None


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, made here rather than by uvicorn, which logs a
    bind failure among its start-up lines and exits 3; a port in use is a setting to fix."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}: {exc.strerror}; check --host") from None
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise ConfigError(
            f"port {port} on {host} is in use by another program; pick another with --port"
        ) from None


def _run(config: DashboardConfig, listening: socket.socket) -> None:
    import uvicorn

    from brewline.serve.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), log_level="info", server_header=False, proxy_headers=False
        )
    )
    # After a graceful stop uvicorn raises the signal it stopped on again; Ctrl+C is how
    # the dashboard is meant to stop, so it ends here (exit 0), as uvicorn.run does.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listening])
