"""Shared fixtures: real files from ../shared/data, real warehouses in tmp dirs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brewline.config import Settings

SHARED_EXPORTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "branch-exports"
PII_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def shared_exports() -> Path:
    """The real branch exports (read-only: never write beside them)."""
    if not SHARED_EXPORTS.is_dir():
        pytest.fail(f"real sample exports not found at {SHARED_EXPORTS}")
    return SHARED_EXPORTS


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


@pytest.fixture
def make_settings(tmp_path: Path, landing: Path) -> Callable[..., Settings]:
    """Settings pointing at a throwaway DuckDB warehouse and quarantine in tmp_path."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "landing": landing,
            "warehouse": str(tmp_path / "warehouse.duckdb"),
            "quarantine": tmp_path / "quarantine",
        }
        values.update(overrides)
        return Settings(**values)

    return make


def copy_exports(source: Path, target: Path, names: list[str] | None = None) -> list[Path]:
    """Copy real exports (all, or the named ones) into a landing folder."""
    copied = []
    for path in sorted(source.rglob("*.csv")):
        if names is None or path.name in names:
            copied.append(Path(shutil.copy2(path, target / path.name)))
    return copied


# -- PostgreSQL: a throwaway cluster started by the suite ------------------------------------------

import contextlib  # noqa: E402
import glob  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import psycopg  # noqa: E402


class PostgresServer:
    """A real PostgreSQL cluster in a temp dir (run as ``postgres`` when we are root)."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            pytest.fail("PostgreSQL server binaries not found; install the 'postgresql' package "
                        "or set BREWLINE_TEST_POSTGRES_URL")
        self.bin = Path(binaries[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="brewline-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.root)], check=True)
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync")
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                 "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """Our own cluster, or None when BREWLINE_TEST_POSTGRES_URL names an existing server."""
    if os.environ.get("BREWLINE_TEST_POSTGRES_URL"):
        yield None
        return
    server = PostgresServer()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop("immediate")
        subprocess.run(["rm", "-rf", str(server.root)], check=False)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer | None) -> str:
    """A fresh, empty database for one test."""
    if postgres_server is None:
        base = os.environ["BREWLINE_TEST_POSTGRES_URL"]
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return base.rsplit("/", 1)[0] + f"/{name}"
    return postgres_server.database()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each warehouse test runs on the embedded DuckDB and on a real PostgreSQL."""
    if request.param == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    return str(request.getfixturevalue("postgres_url"))
