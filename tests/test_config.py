"""Settings precedence: CLI flag > env BREWLINE_* > brewline.toml > defaults; loud failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brewline.config import load_settings
from brewline.errors import ConfigError


@pytest.fixture
def toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "brewline.toml"
    path.write_text("")
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


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"warehouse = \n", "not a valid TOML settings file (Invalid value (at line 1"),
        (b"[settings\nwarehouse = 'x'\n", "not a valid TOML settings file (Expected ']'"),
        (b"\xff\xfe\x00binary", "not a TOML settings file (not UTF-8 text)"),
    ],
)
def test_a_file_that_is_not_toml_is_one_error_naming_it(
    toml: Path, content: bytes, problem: str
) -> None:
    toml.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{toml}: {problem}")
    assert "\n" not in str(caught.value)


def test_a_named_file_must_exist_and_be_a_file(toml: Path) -> None:
    toml.unlink()
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == f"{toml}: no such file (named by BREWLINE_CONFIG)"
    toml.mkdir()
    with pytest.raises(ConfigError, match="is a folder, not a TOML settings file"):
        load_settings()


def test_dev_null_reads_no_file(monkeypatch: pytest.MonkeyPatch, toml: Path) -> None:
    monkeypatch.setenv("BREWLINE_CONFIG", os.devnull)
    assert load_settings().warehouse == "brewline.duckdb"


def test_the_default_file_may_be_missing_but_not_malformed(
    toml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BREWLINE_CONFIG")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert not Path("brewline.toml").exists()
    assert load_settings().warehouse == "brewline.duckdb"
    Path("brewline.toml").write_text("warehouse = 'from-default.duckdb'\n")
    assert load_settings().warehouse == "from-default.duckdb"
    Path("brewline.toml").write_text("warehouse = from-default.duckdb\n")
    with pytest.raises(ConfigError, match=r"^brewline\.toml: not a valid TOML settings file"):
        load_settings()
