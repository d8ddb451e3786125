"""``brewline check`` on crafted data: a stale branch, a low-volume day, a new branch and product.

The landing area is made with :mod:`brewline.synth` (3 branches x 10 days from
1 Nov 2024, 40 sales a day) and then damaged the way real deliveries go wrong;
it is loaded by the real pipeline and every check result is asserted whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner, Result

from brewline.cli.check import check, parse_as_of
from brewline.config import Settings
from brewline.errors import ConfigError, WarehouseError
from brewline.load import open_warehouse
from brewline.ops.checks import CheckResult, due_day, local_now, run_checks
from brewline.ops.settings import CheckSettings
from brewline.pipeline import run
from brewline.report import RunReport
from brewline.synth import SynthSpec, generate_landing

SALES_PER_DAY = 40
NOTES = "till notes,not an export\nremember the milk,please\n"
"""A stray file in the landing area: rejected whole (2 rows)."""


def build_landing(folder: Path) -> None:
    """Synthetic exports, then: Leeds stops after 8 Nov; Chesterfield's 10 Nov has 10 sales;
    a new branch York opens on 10 Nov; London Camden sells a new Large Pumpkin latte on
    10 Nov; one of Chesterfield's 1 Nov totals is wrong; a stray notes file arrives."""
    paths = {
        p.name.rsplit("_", 1)[0]: p
        for p in generate_landing(
            folder, SynthSpec(branches=3, days=10, sales_per_branch_day=SALES_PER_DAY, seed=3)
        )
    }
    paths["leeds_09-11-2024"].unlink()
    paths["leeds_10-11-2024"].unlink()
    low = paths["chesterfield_10-11-2024"]
    low.write_text("".join(low.read_text().splitlines(keepends=True)[:10]))
    camden = paths["london_camden_10-11-2024"]
    (folder / "york_10-11-2024_08-00-00.csv").write_text(
        camden.read_text().replace(",London Camden,", ",York,")
    )
    text = camden.read_text()
    assert "Large Latte - 2.45" in text
    camden.write_text(text.replace("Large Latte - 2.45", "Large Pumpkin latte - 2.45", 1))
    _break_first_total(paths["chesterfield_01-11-2024"])
    (folder / "till-notes.csv").write_text(NOTES)


def _break_first_total(path: Path) -> None:
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    rows[0][4] = "99.99"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue())


def load(tmp_path: Path, warehouse: str) -> RunReport:
    landing = tmp_path / "landing"
    build_landing(landing)
    report = run(Settings(landing=landing, warehouse=warehouse, quarantine=tmp_path / "q"))
    assert (report.rows_read, report.rows_rejected) == (1132, 3)
    return report


def expected(run_id: str) -> list[CheckResult]:
    """What the checks must say on 11 Nov 2024 (data due for 10 Nov), default settings."""
    return [
        CheckResult(
            "freshness", "ok", "Chesterfield", "latest trading day 2024-11-10, due 2024-11-10"
        ),
        CheckResult(
            "freshness",
            "fail",
            "Leeds",
            "2 days missing (2024-11-09 to 2024-11-10): latest trading day 2024-11-08, "
            "due 2024-11-10",
        ),
        CheckResult(
            "freshness", "ok", "London Camden", "latest trading day 2024-11-10, due 2024-11-10"
        ),
        CheckResult("freshness", "ok", "York", "latest trading day 2024-11-10, due 2024-11-10"),
        CheckResult(
            "volume",
            "fail",
            "Chesterfield",
            "2024-11-10: 10 sales, 25% of the trailing 7-day mean 40.0 (threshold 50%)",
        ),
        CheckResult("volume", "ok", "London Camden", "2024-11-10: 40 sales, trailing mean 40.0"),
        CheckResult(
            "volume",
            "ok",
            "York",
            "2024-11-10: 40 sales; not enough history to judge (0 of 3 days)",
        ),
        CheckResult("new_branches", "warn", "York", "first seen on 2024-11-10"),
        CheckResult("new_products", "warn", "Large Pumpkin latte", "first seen on 2024-11-10"),
        CheckResult("reject_rate", "ok", run_id, "3 of 1,132 rows rejected (0.3%; limit 2.0%)"),
        marts_ok("2024-11-10"),
    ]


def marts_ok(due: str) -> CheckResult:
    window = f"from {dt.date.fromisoformat(due) - dt.timedelta(days=34)} to {due}"
    detail = f"all 10 marts and dim_customer equal the facts {window}"
    return CheckResult("marts", "ok", None, detail)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One DuckDB warehouse with the crafted data, shared by the read-only tests: (path, run id)."""
    tmp = tmp_path_factory.mktemp("checks")
    report = load(tmp, str(tmp / "warehouse.duckdb"))
    return str(tmp / "warehouse.duckdb"), report.run_id


def checks_on(
    warehouse: str, as_of: dt.date | dt.datetime, **settings: object
) -> list[CheckResult]:
    with open_warehouse(warehouse, read_only=True) as wh:
        return run_checks(wh, CheckSettings.from_settings(None, **settings), as_of)


# -- the library -------------------------------------------------------------------------------


def test_every_check_on_crafted_data(tmp_path: Path, warehouse_url: str) -> None:
    report = load(tmp_path, warehouse_url)
    assert checks_on(warehouse_url, dt.date(2024, 11, 11)) == expected(report.run_id)


def test_before_the_cutoff_yesterday_is_not_due_yet(loaded: tuple[str, str]) -> None:
    warehouse, run_id = loaded
    results = checks_on(warehouse, dt.datetime(2024, 11, 11, 9, 59))
    assert [r for r in results if r.name not in ("reject_rate", "marts")] == [
        CheckResult(
            "freshness", "ok", "Chesterfield", "latest trading day 2024-11-10, due 2024-11-09"
        ),
        CheckResult(
            "freshness",
            "fail",
            "Leeds",
            "1 day missing (2024-11-09): latest trading day 2024-11-08, due 2024-11-09",
        ),
        CheckResult(
            "freshness", "ok", "London Camden", "latest trading day 2024-11-10, due 2024-11-09"
        ),
        CheckResult("freshness", "ok", "York", "latest trading day 2024-11-10, due 2024-11-09"),
        CheckResult("volume", "ok", "Chesterfield", "2024-11-09: 40 sales, trailing mean 40.0"),
        CheckResult("volume", "ok", "London Camden", "2024-11-09: 40 sales, trailing mean 40.0"),
        CheckResult("new_branches", "ok", None, "no branch first seen on 2024-11-09"),
        CheckResult("new_products", "ok", None, "no product first seen on 2024-11-09"),
    ]
    at_cutoff = checks_on(warehouse, dt.datetime(2024, 11, 11, 10, 0))
    assert at_cutoff == expected(run_id)


def test_an_aware_as_of_is_read_in_branch_local_time() -> None:
    # 09:30 UTC on a summer day is 10:30 in London: past a 10 o'clock cut-off.
    summer = dt.datetime(2024, 7, 2, 9, 30, tzinfo=dt.UTC)
    assert due_day(summer, 10) == dt.date(2024, 7, 1)
    assert due_day(summer.replace(tzinfo=None), 10) == dt.date(2024, 6, 30)


def test_long_silent_branches_are_warnings_but_none_fresh_is_a_failure(
    loaded: tuple[str, str],
) -> None:
    warehouse, _ = loaded
    freshness = [r for r in checks_on(warehouse, dt.date(2024, 11, 30)) if r.name == "freshness"]
    assert [(r.subject, r.status, r.detail) for r in freshness] == [
        (
            None,
            "fail",
            "no branch has data for 2024-11-29: the newest trading day loaded is 2024-11-10, "
            "19 days before; are deliveries or runs stopped?",
        ),
        (
            "Chesterfield",
            "warn",
            "no data since 2024-11-10 (19 days before 2024-11-29): closed or renamed?",
        ),
        (
            "Leeds",
            "warn",
            "no data since 2024-11-08 (21 days before 2024-11-29): closed or renamed?",
        ),
        (
            "London Camden",
            "warn",
            "no data since 2024-11-10 (19 days before 2024-11-29): closed or renamed?",
        ),
        (
            "York",
            "warn",
            "no data since 2024-11-10 (19 days before 2024-11-29): closed or renamed?",
        ),
    ]
    patient = checks_on(warehouse, dt.date(2024, 11, 30), check_closed_after_days=30)
    assert {r.status for r in patient if r.name == "freshness"} == {"fail"}


def test_data_two_years_old_fails_against_the_clock(tmp_path: Path) -> None:
    today = local_now().date()
    start = today - dt.timedelta(days=730)
    spec = SynthSpec(branches=2, days=2, sales_per_branch_day=5, start=start)
    generate_landing(tmp_path / "l", spec)
    warehouse = str(tmp_path / "w.duckdb")
    run(Settings(landing=tmp_path / "l", warehouse=warehouse, quarantine=tmp_path / "q"))

    result = invoke(tmp_path, ["-w", warehouse, "--json"])  # no --as-of: now
    assert result.exit_code == 1, result.output
    freshness = [r for r in json.loads(result.stdout)["results"] if r["name"] == "freshness"]
    newest = start + dt.timedelta(days=1)
    assert [(r["subject"], r["status"]) for r in freshness] == [
        (None, "fail"),
        ("Chesterfield", "warn"),
        ("Leeds", "warn"),
    ]
    assert f"the newest trading day loaded is {newest}, " in freshness[0]["detail"]


def test_a_wider_window_and_a_lower_ratio(loaded: tuple[str, str]) -> None:
    warehouse, _ = loaded
    results = checks_on(
        warehouse, dt.date(2024, 11, 11), check_window_days=2, check_volume_ratio=0.2
    )
    volume = [(r.subject, r.status, r.detail) for r in results if r.name == "volume"]
    assert volume == [
        (
            "Chesterfield",
            "ok",
            "2024-11-09: 40 sales, trailing mean 40.0; 2024-11-10: 10 sales, trailing mean 40.0",
        ),
        (
            "London Camden",
            "ok",
            "2024-11-09: 40 sales, trailing mean 40.0; 2024-11-10: 40 sales, trailing mean 40.0",
        ),
        ("York", "ok", "2024-11-10: 40 sales; not enough history to judge (0 of 3 days)"),
    ]
    news = [(r.name, r.subject) for r in results if r.name.startswith("new_")]
    assert news == [("new_branches", "York"), ("new_products", "Large Pumpkin latte")]


def test_reject_rate_above_the_limit_names_files_and_reasons(loaded: tuple[str, str]) -> None:
    warehouse, run_id = loaded
    results = checks_on(warehouse, dt.date(2024, 11, 11), check_max_reject_rate=0.001)
    assert results[-2] == CheckResult(
        "reject_rate",
        "fail",
        run_id,
        "3 of 1,132 rows rejected (0.3%; limit 0.1%): files rejected: till-notes.csv "
        "(unrecognised_layout, 2 rows); rows rejected by reason: total_mismatch 1",
    )


def test_with_no_history_nothing_is_new(tmp_path: Path) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    generate_landing(tmp_path / "l", SynthSpec(branches=1, days=1, sales_per_branch_day=5))
    report = run(Settings(landing=tmp_path / "l", warehouse=warehouse, quarantine=tmp_path / "q"))
    assert checks_on(warehouse, dt.date(2024, 11, 2)) == [
        CheckResult(
            "freshness", "ok", "Chesterfield", "latest trading day 2024-11-01, due 2024-11-01"
        ),
        CheckResult(
            "volume",
            "ok",
            "Chesterfield",
            "2024-11-01: 5 sales; not enough history to judge (0 of 3 days)",
        ),
        CheckResult("new_branches", "ok", None, "nothing loaded before 2024-11-01 to compare with"),
        CheckResult("new_products", "ok", None, "nothing loaded before 2024-11-01 to compare with"),
        CheckResult("reject_rate", "ok", report.run_id, "0 of 5 rows rejected (0.0%; limit 2.0%)"),
        marts_ok("2024-11-01"),
    ]


def test_an_empty_warehouse(tmp_path: Path) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    with open_warehouse(warehouse) as wh:
        wh.ensure_schema()
    assert checks_on(warehouse, dt.date(2024, 11, 2)) == [
        CheckResult("freshness", "warn", None, "no branch has any data loaded yet"),
        CheckResult(
            "volume", "warn", None, "nothing to compare: no data on 2024-11-01 (none loaded yet)"
        ),
        CheckResult("new_branches", "ok", None, "nothing loaded before 2024-11-01 to compare with"),
        CheckResult("new_products", "ok", None, "nothing loaded before 2024-11-01 to compare with"),
        CheckResult("reject_rate", "ok", None, "no run has read any rows yet"),
        CheckResult(
            "marts",
            "warn",
            None,
            "nothing to compare: no data from 2024-09-28 to 2024-11-01 (none loaded yet)",
        ),
    ]


def test_a_check_over_days_without_data_says_there_was_nothing_to_compare(
    loaded: tuple[str, str],
) -> None:
    """After the demo (data from 2024), `check` said "ok" for the marts over a window
    holding no data at all: nothing compared is not a pass, and the detail says which
    --as-of fits the data."""
    warehouse, _ = loaded
    found = {r.name: r for r in checks_on(warehouse, dt.date(2026, 6, 1)) if r.subject is None}
    hint = "newest trading day loaded 2024-11-10: try --as-of 2024-11-11"
    assert found["volume"] == CheckResult(
        "volume", "warn", None, f"nothing to compare: no data on 2026-05-31 ({hint})"
    )
    assert found["marts"] == CheckResult(
        "marts", "warn", None, f"nothing to compare: no data from 2026-04-27 to 2026-05-31 ({hint})"
    )
    fitting = checks_on(warehouse, dt.date(2024, 11, 11))
    assert [r for r in fitting if r.name == "marts"] == [marts_ok("2024-11-10")]


def test_source_freshness_is_judged_as_of_the_given_moment(tmp_path: Path) -> None:
    """--as-of was ignored: for any past day the source checks were silently left out."""
    warehouse = str(tmp_path / "w.duckdb")
    with open_warehouse(warehouse) as wh:
        wh.ensure_schema()
        wh.set_cursor("totesys", "design", "2024-11-11T07:00:00")
        wh.set_cursor("totesys", "payment", "2024-11-11T09:30:00")

    def sources(as_of: dt.date | dt.datetime) -> list[tuple[str | None, str, str]]:
        results = checks_on(warehouse, as_of)
        return [(r.subject, r.status, r.detail) for r in results if r.name == "source_freshness"]

    # 10:00 in London in November is 10:00 UTC; a date means its cut-off hour (10 by default).
    at_ten = [
        (
            "totesys.design",
            "fail",
            "watermark 2024-11-11 07:00:00 UTC, 180 min behind 2024-11-11 10:00 UTC (limit 60 min)",
        ),
        (
            "totesys.payment",
            "ok",
            "watermark 2024-11-11 09:30:00 UTC, 30 min behind 2024-11-11 10:00 UTC (limit 60 min)",
        ),
    ]
    assert sources(dt.datetime(2024, 11, 11, 10, 0)) == at_ten
    assert sources(dt.date(2024, 11, 11)) == at_ten
    assert sources(dt.datetime(2024, 11, 11, 7, 30)) == [
        (
            "totesys.design",
            "ok",
            "watermark 2024-11-11 07:00:00 UTC, 30 min behind 2024-11-11 07:30 UTC (limit 60 min)",
        ),
        (
            "totesys.payment",
            "ok",
            "watermark 2024-11-11 09:30:00 UTC, synced past 2024-11-11 07:30 UTC",
        ),
    ]


def test_a_file_that_is_not_a_warehouse_is_an_error(tmp_path: Path) -> None:
    with (
        open_warehouse(str(tmp_path / "other.duckdb")) as wh,
        pytest.raises(WarehouseError, match="no Brewline warehouse"),
    ):
        run_checks(wh, CheckSettings(), dt.date(2024, 11, 2))


# -- settings ----------------------------------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No BREWLINE_* variables from the machine; a TOML path that tests may write."""
    for name in [*CheckSettings.model_fields, "warehouse"]:
        monkeypatch.delenv(f"BREWLINE_{name.upper()}", raising=False)
    toml = tmp_path / "brewline.toml"
    toml.write_text("")
    monkeypatch.setenv("BREWLINE_CONFIG", str(toml))
    return toml


def test_settings_precedence(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert CheckSettings.from_settings().check_cutoff_hour == 10
    clean_env.write_text("check_cutoff_hour = 8\ncheck_volume_ratio = 0.3\nwarehouse = 'x'\n")
    assert CheckSettings.from_settings().check_cutoff_hour == 8
    monkeypatch.setenv("BREWLINE_CHECK_CUTOFF_HOUR", "7")
    settings = CheckSettings.from_settings(None, check_window_days=None)
    assert (settings.check_cutoff_hour, settings.check_volume_ratio) == (7, 0.3)
    assert CheckSettings.from_settings(None, check_cutoff_hour=6).check_cutoff_hour == 6


def test_fields_the_main_settings_carry_win(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Main(BaseModel):  # what brewline.config.Settings looks like once it has the fields
        warehouse: str = "w.duckdb"
        check_cutoff_hour: int = 11

    monkeypatch.setenv("BREWLINE_CHECK_CUTOFF_HOUR", "7")
    monkeypatch.setenv("BREWLINE_CHECK_WINDOW_DAYS", "3")
    settings = CheckSettings.from_settings(Main())
    assert (settings.check_cutoff_hour, settings.check_window_days) == (11, 3)


def test_invalid_settings_fail_loudly(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREWLINE_CHECK_CUTOFF_HOUR", "25")
    with pytest.raises(ConfigError, match="BREWLINE_CHECK_CUTOFF_HOUR"):
        CheckSettings.from_settings()


# -- the command -------------------------------------------------------------------------------


def command_app() -> typer.Typer:
    """The command as the main CLI will register it: ``app.command()(check)``."""
    app = typer.Typer(add_completion=False, rich_markup_mode=None)
    app.command()(check)

    @app.callback()
    def main() -> None:
        """Brewline (test app)."""

    return app


def invoke(tmp: Path, args: Sequence[str], **env: str) -> Result:
    clean: dict[str, str | None] = {
        f"BREWLINE_{n.upper()}": None for n in CheckSettings.model_fields
    }
    clean |= {
        "BREWLINE_CONFIG": os.devnull,
        "BREWLINE_WAREHOUSE": None,
        "BREWLINE_ALERT_WEBHOOK_URL": None,
        "BREWLINE_ALERT_SMTP_HOST": None,
        "COLUMNS": "200",
    }
    return CliRunner().invoke(command_app(), ["check", *args], env={**clean, **env})


def test_command_prints_a_table_and_exits_1_on_failure(
    loaded: tuple[str, str], tmp_path: Path
) -> None:
    warehouse, _ = loaded
    result = invoke(tmp_path, ["--warehouse", warehouse, "--as-of", "2024-11-11"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:4] == ["freshness", "fail", "Leeds", "2"] for line in lines)
    assert any(line.split()[:3] == ["volume", "fail", "Chesterfield"] for line in lines)
    assert any(line.split()[:3] == ["new_products", "warn", "Large"] for line in lines)
    assert lines[-1] == "As of 2024-11-11 (data due for 2024-11-10): 2 failed, 2 warnings, 7 ok."


def test_command_json(loaded: tuple[str, str], tmp_path: Path) -> None:
    warehouse, run_id = loaded
    result = invoke(tmp_path, ["-w", warehouse, "--as-of", "2024-11-11", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": "fail",
        "exit_code": 1,
        "as_of": "2024-11-11",
        "due_day": "2024-11-10",
        "counts": {"fail": 2, "warn": 2, "ok": 7},
        "results": [r.to_dict() for r in expected(run_id)],
        "alerts": 0,
        "delivery_failures": [],
    }


def test_command_exits_0_when_nothing_fails(loaded: tuple[str, str], tmp_path: Path) -> None:
    warehouse, _ = loaded
    result = invoke(tmp_path, ["-w", warehouse, "--as-of", "2024-11-09T12:00", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["status"], payload["due_day"], payload["counts"]) == (
        "ok",
        "2024-11-08",
        {"fail": 0, "warn": 0, "ok": 10},
    )


def test_command_reads_thresholds_from_the_environment(
    loaded: tuple[str, str], tmp_path: Path
) -> None:
    warehouse, _ = loaded
    env = {"BREWLINE_CHECK_VOLUME_RATIO": "0.2", "BREWLINE_CHECK_CLOSED_AFTER_DAYS": "1"}
    result = invoke(tmp_path, ["-w", warehouse, "--as-of", "2024-11-11", "--json"], **env)
    assert result.exit_code == 0, result.output
    statuses = {
        (r["name"], r["subject"]): r["status"] for r in json.loads(result.stdout)["results"]
    }
    assert statuses[("volume", "Chesterfield")] == "ok"
    assert statuses[("freshness", "Leeds")] == "warn"


def test_command_on_an_empty_warehouse_says_3_warnings(tmp_path: Path) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    with open_warehouse(warehouse) as wh:
        wh.ensure_schema()
    result = invoke(tmp_path, ["-w", warehouse, "--as-of", "2024-11-02"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "As of 2024-11-02 (data due for 2024-11-01): 0 failed, 3 warnings, 3 ok."
    )


def test_command_errors(tmp_path: Path) -> None:
    missing = invoke(tmp_path, ["-w", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1
    assert "no warehouse at" in missing.stderr
    bad_date = invoke(tmp_path, ["--as-of", "11/11/2024"])
    assert bad_date.exit_code == 2
    assert "YYYY-MM-DD" in bad_date.stderr
    bad_setting = invoke(tmp_path, [], BREWLINE_CHECK_VOLUME_RATIO="2")
    assert bad_setting.exit_code == 1
    assert "BREWLINE_CHECK_VOLUME_RATIO" in bad_setting.stderr


def test_parse_as_of() -> None:
    assert parse_as_of("2024-11-11") == dt.date(2024, 11, 11)
    assert parse_as_of("2024-11-11 07:05") == dt.datetime(2024, 11, 11, 7, 5)
    assert parse_as_of(None) is None
    with pytest.raises(typer.BadParameter):
        parse_as_of("tomorrow")
