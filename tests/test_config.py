"""Settings precedence: CLI flag > env BREWLINE_* > brewline.toml > defaults; loud failures."""

from __future__ import annotations

import os
import subprocess
import sys
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
    assert "BREWLINE_PII_KEY" in str(caught.value)
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


# -- errors name where the bad value came from, and the closest valid name -------------------


def brewline(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, with no BREWLINE_* variable but ``env``'s."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "brewline", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_misspelt_setting_in_the_file_names_the_file_its_line_and_the_closest_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "brewline.toml").write_text('landing = "in"\n\nwarehose = "sales.duckdb"\n')
    result = brewline(tmp_path, "status")
    assert result.returncode == 1
    assert result.stderr == (
        "brewline: error: invalid settings: brewline.toml line 3: unknown setting "
        "'warehose' (did you mean 'warehouse'?)\n"
    )


def test_a_bad_value_names_the_file_line_or_the_variable_it_came_from(
    tmp_path: Path,
) -> None:
    named = tmp_path / "conf" / "cafe.toml"
    named.parent.mkdir()
    named.write_text("# thresholds\ncheck_cutoff_hour = 30\n")
    from_file = brewline(tmp_path, "status", BREWLINE_CONFIG=str(named))
    assert from_file.stderr == (
        f"brewline: error: invalid settings: {named} line 2: check_cutoff_hour: "
        "Input should be less than or equal to 23\n"
    )
    # The environment wins over the file, so its value is the one named.
    from_env = brewline(
        tmp_path, "status", BREWLINE_CONFIG=str(named), BREWLINE_CHECK_CUTOFF_HOUR="25"
    )
    assert from_env.stderr == (
        "brewline: error: invalid settings: environment variable "
        "BREWLINE_CHECK_CUTOFF_HOUR: Input should be less than or equal to 23\n"
    )
    secret = brewline(tmp_path, "status", BREWLINE_CONFIG=os.devnull, BREWLINE_PII_KEY="short1")
    assert secret.stderr == (
        "brewline: error: invalid settings: environment variable BREWLINE_PII_KEY: "
        "must be at least 16 characters\n"
    )


def test_a_bad_option_value_names_the_option(tmp_path: Path) -> None:
    bad = brewline(tmp_path, "check", "--as-of", "yesterday", BREWLINE_CONFIG=os.devnull)
    assert bad.returncode == 2
    assert "'--as-of'" in bad.stderr
    assert "Traceback" not in bad.stderr
    with pytest.raises(ConfigError) as caught:
        load_settings(redelivery="sometimes")
    assert str(caught.value) == (
        "invalid settings: option --redelivery: Input should be 'replace' or 'reject'"
    )


def test_an_unknown_brewline_variable_is_a_warning_naming_the_closest_setting(
    tmp_path: Path,
) -> None:
    """A typo in the environment used to be ignored without a word: the default was used."""
    result = brewline(
        tmp_path,
        "init",
        "-w",
        str(tmp_path / "w.duckdb"),
        BREWLINE_CONFIG=os.devnull,
        BREWLINE_WAREHOSE="sales.duckdb",
        BREWLINE_CHECK_CUTOF_HOUR="9",
        # Variables Brewline reads that are not settings, and those of its tests and deploys.
        BREWLINE_TOTESYS_LAKE="lake/",
        BREWLINE_TEST_POSTGRES_URL="postgresql://x@y/z",
        BREWLINE_GRAFANA_DB_HOST="db",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "brewline: warning: environment variable BREWLINE_CHECK_CUTOF_HOUR is not a "
        "Brewline setting and is ignored (did you mean BREWLINE_CHECK_CUTOFF_HOUR?)",
        "brewline: warning: environment variable BREWLINE_WAREHOSE is not a "
        "Brewline setting and is ignored (did you mean BREWLINE_WAREHOUSE?)",
    ]
