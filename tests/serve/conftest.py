"""Fixtures for the dashboard: real warehouses loaded from the shared exports, and
real ``brewline serve`` processes (the Typer command under uvicorn) on loopback.

Expected figures come from the raw CSV files read with the ``csv`` module, never
from the warehouse, so the dashboard's SQL is checked against an independent answer.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from tests.pgcluster import PostgresServer

from brewline.config import Settings
from brewline.pipeline import run

SHARED_EXPORTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "branch-exports"
PII_KEY = "serve-test-key-0123456789abcdef"

# The Typer command exactly as the CLI registers it: app.command()(serve).
SERVE = """
import typer
from brewline.cli.serve import serve
app = typer.Typer()
app.command()(serve)
app()
"""


@dataclass(frozen=True)
class Sale:
    """One row of a raw export, as the till wrote it (names and cards included)."""

    branch: str
    day: dt.date
    total: Decimal
    name: str
    card: str


def raw_sales() -> list[Sale]:
    """Every row of the shared exports, parsed with the csv module only."""
    sales = []
    for path in sorted(SHARED_EXPORTS.rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for when, branch, name, _basket, total, _payment, *card in csv.reader(handle):
                day = dt.datetime.strptime(when, "%d/%m/%Y %H:%M").date()
                sales.append(Sale(branch, day, Decimal(total), name, card[0] if card else ""))
    return sales


@pytest.fixture(scope="session")
def sample_sales() -> list[Sale]:
    if not SHARED_EXPORTS.is_dir():
        pytest.fail(f"real sample exports not found at {SHARED_EXPORTS}")
    return raw_sales()


def load_sample(warehouse: str, scratch: Path) -> None:
    """Load the shared exports into ``warehouse``; quarantine goes to ``scratch``."""
    settings = Settings(
        landing=SHARED_EXPORTS,
        warehouse=warehouse,
        quarantine=scratch / "quarantine",
        pii_key=PII_KEY,
    )
    report = run(settings)
    assert report.rows_loaded == 10163, report.totals()


@pytest.fixture(scope="session")
def sample_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB warehouse holding the shared exports (do not write to it: copy it)."""
    folder = tmp_path_factory.mktemp("sample-duckdb")
    path = folder / "warehouse.duckdb"
    load_sample(str(path), folder)
    return path


def _postgres_database(server: PostgresServer | None) -> str:
    if server is not None:
        return server.database()
    base = os.environ["BREWLINE_TEST_POSTGRES_URL"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def sample_postgres(
    postgres_server: PostgresServer | None, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A PostgreSQL database holding the shared exports."""
    url = _postgres_database(postgres_server)
    load_sample(url, tmp_path_factory.mktemp("sample-postgres"))
    return url


# -- a real server process ----------------------------------------------------------------------


@dataclass
class Dashboard:
    """A running ``brewline serve`` and its output (for the start-up messages)."""

    base: str
    process: subprocess.Popen[bytes]
    output: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return http_get(self.base + path, headers)

    def log(self) -> str:
        return self.output.read_text(errors="replace")


@dataclass(frozen=True)
class Response:
    """An HTTP answer; header names are lower-case."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def http_get(url: str, headers: dict[str, str] | None = None) -> Response:
    """A plain GET that returns 4xx/5xx answers instead of raising."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return Response(answer.status, _lower(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, _lower(error.headers.items()), error.read())


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def dashboard(warehouse: str, scratch: Path, *args: str) -> Iterator[Dashboard]:
    """Run the serve command in a subprocess on a free loopback port until the block ends."""
    scratch.mkdir(parents=True, exist_ok=True)
    port = free_port()
    output = scratch / f"serve-{port}.log"
    env = {**os.environ, "BREWLINE_CONFIG": os.devnull}
    env = {k: v for k, v in env.items() if not k.startswith("BREWLINE_") or k == "BREWLINE_CONFIG"}
    command = [sys.executable, "-c", SERVE, "--port", str(port), "--warehouse", warehouse, *args]
    with output.open("wb") as sink:
        process = subprocess.Popen(command, cwd=scratch, env=env, stdout=sink, stderr=sink)
    running = Dashboard(f"http://127.0.0.1:{port}", process, output)
    try:
        _wait_until_up(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(running: Dashboard) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError):
            running.get("/healthz")  # any HTTP answer, 200 or 503, means it is serving
            return
        if running.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"brewline serve did not start:\n{running.log()}")
        time.sleep(0.05)


@pytest.fixture(scope="session", params=["duckdb", "postgres"])
def sample_dashboard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """The dashboard over the shared exports, on DuckDB and on PostgreSQL."""
    if request.param == "duckdb":
        warehouse = str(request.getfixturevalue("sample_duckdb"))
    else:
        warehouse = request.getfixturevalue("sample_postgres")
    with dashboard(warehouse, tmp_path_factory.mktemp(f"serve-{request.param}")) as running:
        yield running


def copy_warehouse(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, target))
