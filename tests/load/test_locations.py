"""Warehouse locations: the engine a location names, and printing it without a password."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brewline.load.locations import engine_of, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://etl:s3cret@db:5432/w", "postgresql://etl:***@db:5432/w"),
        ("postgresql://etl@db/w?password=s3cret", "postgresql://etl@db/w?password=***"),
        (
            "postgresql://etl@db/w?sslmode=require&PASSWORD=s3cret&x=1",
            "postgresql://etl@db/w?sslmode=require&PASSWORD=***&x=1",
        ),
        ("postgresql://etl:s3cret@db1:5432,db2:5433/w", "postgresql://etl:***@db1:5432,db2:5433/w"),
        ("postgresql://etl:s3cret@db:notaport/w", "postgresql://etl:***@db:notaport/w"),
        ("postgresql://etl:s3cret@[::1]:5432/w", "postgresql://etl:***@[::1]:5432/w"),
        ("postgres://etl:p@ss:w0rd@db/w", "postgres://etl:***@db/w"),
        ("postgresql://db/w", "postgresql://db/w"),
        ("sales.duckdb", "sales.duckdb"),
    ],
)
def test_passwords_are_masked_and_hosts_keep_their_shape(url: str, shown: str) -> None:
    assert redact(url) == shown


@given(st.text(alphabet=st.characters(blacklist_characters="@/?#&", min_codepoint=33), min_size=1))
def test_no_password_ever_survives_redaction(password: str) -> None:
    assert redact(f"postgresql://etl:{password}@db:5432/w") == "postgresql://etl:***@db:5432/w"
    assert redact(f"postgresql://etl@db/w?password={password}") == (
        "postgresql://etl@db/w?password=***"
    )


def test_the_engine_is_told_by_the_location() -> None:
    assert engine_of("postgresql://db/w") == engine_of("postgres://db/w") == "postgres"
    assert engine_of("brewline.duckdb") == engine_of(":memory:") == "duckdb"


@pytest.mark.parametrize("location", ["postgres:/broken", "s3://bucket/w.duckdb", "md:warehouse"])
def test_unknown_url_forms_are_a_config_error_and_never_reach_duckdb(location: str) -> None:
    """DuckDB read `postgres:/broken` as an extension to download from the internet."""
    from brewline.errors import ConfigError
    from brewline.load import open_warehouse

    with pytest.raises(ConfigError, match="neither a DuckDB file path nor a postgresql://"):
        open_warehouse(location)


def test_duckdb_never_installs_or_loads_extensions_on_its_own(tmp_path: object) -> None:
    from brewline.load import open_warehouse

    with open_warehouse(":memory:") as wh:
        settings = wh.query(
            "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%_known_extensions'"
        )
    assert dict(settings.rows()) == {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }
