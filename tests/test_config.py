"""Settings precedence: CLI flag > env BREWLINE_* > brewline.toml > defaults; loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from brewline.config import load_settings
from brewline.errors import ConfigError


@pytest.fixture
def toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "brewline.toml"
    monkeypatch.setenv("BREWLINE_CONFIG", str(path))
    for name in (
        "BREWLINE_WAREHOUSE",
        "BREWLINE_REDELIVERY",
        "BREWLINE_PII_KEY",
        "BREWLINE_REQUIRE_PII_KEY",
        "BREWLINE_LANDING",
    ):
        monkeypatch.delenv(name, raising=False)
    return path


def test_defaults(toml: Path) -> None:
    settings = load_settings()
    assert (settings.warehouse, settings.redelivery, settings.pii_key) == (
        "brewline.duckdb",
        "replace",
        None,
    )
    assert settings.quarantine_dir == Path("landing") / "_quarantine"


def test_toml_then_env_then_flag(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml.write_text('warehouse = "from-toml.duckdb"\nredelivery = "reject"\nlanding = "in"\n')
    assert load_settings().warehouse == "from-toml.duckdb"
    monkeypatch.setenv("BREWLINE_WAREHOUSE", "from-env.duckdb")
    settings = load_settings()
    assert (settings.warehouse, settings.redelivery, settings.landing) == (
        "from-env.duckdb",
        "reject",
        Path("in"),
    )
    assert load_settings(warehouse="from-flag.duckdb", redelivery=None).warehouse == (
        "from-flag.duckdb"
    )


def test_missing_required_secret_fails_loudly(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREWLINE_REQUIRE_PII_KEY", "true")
    with pytest.raises(ConfigError, match="BREWLINE_PII_KEY"):
        load_settings()
    monkeypatch.setenv("BREWLINE_PII_KEY", "a-long-enough-secret-key")
    assert load_settings().pii_key is not None


def test_bad_values_name_the_setting_but_never_echo_a_secret(
    toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREWLINE_PII_KEY", "short-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "pii_key" in str(caught.value)
    assert "short-secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="redelivery"):
        load_settings(redelivery="sometimes")
    toml.write_text("unknown_setting = 1\n")
    with pytest.raises(ConfigError, match="unknown_setting"):
        load_settings()
