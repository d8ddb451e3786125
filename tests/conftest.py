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

import os  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import psycopg  # noqa: E402
from tests.pgcluster import PostgresServer  # noqa: E402


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
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer | None) -> str:
    """A fresh, empty database for one test."""
    return new_database(postgres_server)


def new_database(postgres_server: PostgresServer | None) -> str:
    """A fresh, empty database on the suite's server (for fixtures wider than one test)."""
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


# -- AWS: moto in server mode, a real HTTP endpoint ----------------------------------------------

from tests.motoserver import MotoServer  # noqa: E402


@pytest.fixture(scope="session")
def aws() -> Iterator[MotoServer]:
    """A local AWS endpoint (S3, SQS, SNS, Secrets Manager) for this worker's tests."""
    server = MotoServer()
    server.apply()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(aws: MotoServer) -> str:
    """A fresh, empty bucket."""
    import boto3

    name = f"landing-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": aws.env["AWS_REGION"]}
    )
    return name
