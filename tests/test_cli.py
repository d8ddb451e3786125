"""The ``brewline`` command line, end to end on real files and real warehouses.

Most tests use Typer's CliRunner (same process); the exit codes are also checked
on real subprocesses (``python -m brewline``). The shared sample exports are
read-only: warehouses and quarantine always go to tmp_path.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from brewline import __version__
from brewline.cli import app
from brewline.cli.output import money, printable
from brewline.demo import DEMO_PII_KEY
from brewline.synth import SynthSpec, generate_landing

SHARED_EXPORTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "branch-exports"
SAMPLE_ROWS = 10163
# Row content of the sample (a customer and a card on the first line of a file):
# it must never appear in anything the CLI prints.
SAMPLE_PII = ("Richard Copeland", "5494173772652516")
BROKEN = "not,a till export\nSecret Person,4111111111111111\n"


def _env(tmp: Path) -> dict[str, str | None]:
    """No settings leak in from the machine; wide output so file names are not folded."""
    return {
        "BREWLINE_CONFIG": os.devnull,
        "BREWLINE_PII_KEY": None,
        "BREWLINE_WAREHOUSE": None,
        "BREWLINE_LANDING": None,
        "BREWLINE_QUARANTINE": None,
        "BREWLINE_REDELIVERY": None,
        "COLUMNS": "200",
    }


def invoke(tmp: Path, args: Sequence[object], **env: str) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={**_env(tmp), **env})


def brewline(
    tmp: Path, *args: object, config: str = os.devnull
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m brewline`` in ``tmp`` in a real subprocess (settings file ``config``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    env["BREWLINE_CONFIG"] = config
    return subprocess.run(
        [sys.executable, "-m", "brewline", *map(str, args)],
        cwd=tmp,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def no_row_content(*outputs: str) -> bool:
    return not any(secret in out for out in outputs for secret in (*SAMPLE_PII, "Secret Person"))


# -- independent expectations from the raw files (csv module, no Brewline) ---------------


def _raw_rows() -> list[list[str]]:
    rows = []
    for path in sorted(SHARED_EXPORTS.rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows += [row for row in csv.reader(handle) if row]
    return rows


def _item(text: str) -> tuple[str, str, str | None, Decimal]:
    """``<Size> <Product>[ - <Variant>] - <Price>`` -> (product, size, variant, price)."""
    name, price = text.rsplit(" - ", 1)
    size, rest = name.split(" ", 1)
    product, _, variant = rest.partition(" - ")
    return product, size, variant or None, Decimal(price)


def expected_top_seller() -> dict[str, Any]:
    units: Counter[tuple[str, str, str | None]] = Counter()
    revenue: dict[tuple[str, str, str | None], Decimal] = {}
    for row in _raw_rows():
        for text in row[3].split(", "):
            product, size, variant, price = _item(text)
            units[product, size, variant] += 1
            revenue[product, size, variant] = revenue.get((product, size, variant), 0) + price
    (top, count), (_, runner_up) = units.most_common(2)
    assert count > runner_up, "the sample has a clear best seller"
    product, size, variant = top
    return {
        "product": product,
        "size": size,
        "variant": variant,
        "units": count,
        "revenue": str(revenue[top]),
    }


def expected_totals() -> tuple[int, Decimal, str]:
    """Sales, revenue and the branch with the most revenue."""
    by_branch: dict[str, Decimal] = {}
    for row in _raw_rows():
        by_branch[row[1]] = by_branch.get(row[1], Decimal(0)) + Decimal(row[4])
    return (
        len(_raw_rows()),
        sum(by_branch.values(), Decimal(0)),
        max(by_branch, key=by_branch.__getitem__),
    )


# -- the sample exports, loaded twice by real subprocesses --------------------------------


@dataclass(frozen=True)
class Sample:
    tmp: Path
    warehouse: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    tmp = tmp_path_factory.mktemp("cli-sample")
    warehouse = tmp / "sample.duckdb"
    args = ("run", SHARED_EXPORTS, "--warehouse", warehouse, "--quarantine", tmp / "q", "--json")
    return Sample(tmp, warehouse, brewline(tmp, *args), brewline(tmp, *args))


def test_run_loads_the_sample_exports_and_exits_0(sample: Sample) -> None:
    assert sample.first.returncode == 0, sample.first.stderr
    report = json.loads(sample.first.stdout)
    assert (report["status"], report["exit_code"]) == ("succeeded", 0)
    assert report["rows_loaded"] == report["rows_read"] == SAMPLE_ROWS
    assert report["files_loaded"] == len(report["files"]) == 33
    assert {f["state"] for f in report["files"]} == {"loaded"}
    assert no_row_content(sample.first.stdout, sample.first.stderr)


def test_a_second_run_skips_every_file_and_exits_0(sample: Sample) -> None:
    assert sample.second.returncode == 0, sample.second.stderr
    report = json.loads(sample.second.stdout)
    assert {f["state"] for f in report["files"]} == {"skipped"}
    assert (report["files_skipped"], report["rows_loaded"]) == (33, 0)


def test_status_json(sample: Sample) -> None:
    result = invoke(sample.tmp, ["status", "--warehouse", sample.warehouse, "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert list(status) == [
        "warehouse",
        "recent_runs",
        "files_by_state",
        "rejects_by_reason",
        "rejected_files",
        "source_watermarks",
    ]
    assert status["files_by_state"] == [
        {
            "state": "loaded",
            "files": 33,
            "rows_read": SAMPLE_ROWS,
            "rows_loaded": SAMPLE_ROWS,
            "rows_rejected": 0,
        }
    ]
    newest, oldest = status["recent_runs"]
    assert (newest["files_skipped"], oldest["rows_loaded"]) == (33, SAMPLE_ROWS)
    assert (status["rejects_by_reason"], status["rejected_files"]) == ([], [])


def test_report_json_matches_the_raw_files(sample: Sample) -> None:
    result = invoke(sample.tmp, ["report", "-w", sample.warehouse, "--json", "--limit", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report) == [
        "warehouse",
        "best_sellers",
        "revenue_by_branch",
        "revenue_by_day",
        "busiest_hours",
        "payment_mix",
        "customer_mix",
        "basket",
    ]
    assert len(report["best_sellers"]) == 3
    assert report["best_sellers"][0] == expected_top_seller()
    sales, revenue, top_branch = expected_totals()
    (basket,) = report["basket"]
    assert (basket["sales"], Decimal(basket["revenue"])) == (sales, revenue)
    assert report["revenue_by_branch"][0]["branch"] == top_branch
    assert [d["date"] for d in report["revenue_by_day"]] == [
        "2021-08-25",
        "2023-05-09",
        "2023-08-08",
        "2024-12-18",
    ]
    assert sum(p["sales"] for p in report["payment_mix"]) == sales
    assert report["customer_mix"] == []  # loaded without a PII key


def test_report_and_status_tables(sample: Sample) -> None:
    report = invoke(sample.tmp, ["report", "-w", sample.warehouse, "--days", "2"])
    status = invoke(sample.tmp, ["status", "-w", sample.warehouse])
    assert (report.exit_code, status.exit_code) == (0, 0)
    top = expected_top_seller()
    _, revenue, _ = expected_totals()
    for text in (
        "Best sellers (top 10 by units sold; ties by revenue)",
        top["product"],
        f"£{revenue:,.2f}",  # the basket's revenue, in pounds
        f"£{Decimal(top['revenue']):,.2f}",
        "Revenue by day (latest 2 trading days)",
        "2024-12-18",
        "Average basket",
        "Payment mix",
    ):
        assert text in report.stdout
    assert "2021-08-25" not in report.stdout
    for text in ("Recent runs", "Files by state", "loaded", "10,163"):
        assert text in status.stdout


def test_money_is_in_pounds() -> None:
    assert [money(Decimal(v)) for v in ("1234.5", "0.05", "-2.1")] == [
        "£1,234.50",
        "£0.05",
        "-£2.10",
    ]
    assert money(None) == "-"


# -- run: exit codes and output ------------------------------------------------------------


def _landing_with_a_broken_file(tmp: Path) -> Path:
    landing = tmp / "landing"
    landing.mkdir()
    source = SHARED_EXPORTS / "brews-brothers" / "leeds_09-05-2023_09-00-00_done.csv"
    (landing / source.name).write_bytes(source.read_bytes())
    (landing / "broken.csv").write_text(BROKEN, encoding="utf-8")
    return landing


def test_a_broken_file_is_rejected_with_a_reason_and_exits_1(tmp_path: Path) -> None:
    landing = _landing_with_a_broken_file(tmp_path)
    args = ["run", landing, "-w", tmp_path / "w.duckdb", "--quarantine", tmp_path / "q", "--json"]
    result = invoke(tmp_path, args)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    files = {f["source_name"]: f for f in report["files"]}
    assert files["broken.csv"]["state"] == "rejected"
    assert files["broken.csv"]["reason"]
    assert files["leeds_09-05-2023_09-00-00_done.csv"]["state"] == "loaded"
    assert (report["status"], report["files_rejected"]) == ("completed_with_rejects", 1)
    assert no_row_content(result.stdout, result.stderr)


def test_run_prints_a_table_and_totals(tmp_path: Path) -> None:
    landing = _landing_with_a_broken_file(tmp_path)
    (landing / "leeds_09-05-2023_09-00-00_done.csv").write_text(
        "09/05/2023 09:00,Leeds,Secret Person,Regular Latte - 2.15,9.15,CASH,\n"
        "09/05/2023 09:01,Leeds,Other Person,Regular Latte - 2.15,2.15,CASH,\n",
        encoding="utf-8",
    )
    result = invoke(
        tmp_path, ["run", landing, "-w", tmp_path / "w.duckdb", "--quarantine", tmp_path / "q"]
    )
    assert result.exit_code == 1
    out = result.stdout
    assert "broken.csv" in out
    assert "rejected" in out
    assert "1 rejected line kept in " + str(tmp_path / "q") in out
    assert "2 files: 1 loaded, 0 skipped, 1 rejected" in out
    assert str(tmp_path / "w.duckdb") in out
    assert no_row_content(result.stdout, result.stderr)


def test_many_files_are_summarised_by_state(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate_landing(landing, SynthSpec(branches=41, days=1, sales_per_branch_day=2))
    (landing / "broken.csv").write_text(BROKEN, encoding="utf-8")
    result = invoke(tmp_path, ["run", landing, "-w", tmp_path / "w.duckdb"])
    assert result.exit_code == 1
    assert "Files by state" in result.stdout
    assert "Rejected, failed or replaced files" in result.stdout
    assert "broken.csv" in result.stdout
    assert "chesterfield" not in result.stdout  # loaded files are counted, not listed
    assert "42 files: 41 loaded, 0 skipped, 1 rejected" in result.stdout


def _file_cells(out: str) -> list[list[str]]:
    """The file column of the run's table: each file's name as the lines it was folded into."""
    lines = out.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["file", "state"])
    state_at = header.index("state")
    rows: list[list[str]] = []
    for line in lines[lines.index(header) + 2 :]:
        if not line.strip():
            break
        if line[state_at:].strip():
            rows.append([])
        rows[-1].append(line[:state_at].strip())
    return rows


def test_the_run_summary_reads_well_at_80_columns(tmp_path: Path) -> None:
    args = ["run", SHARED_EXPORTS, "-w", tmp_path / "w.duckdb", "--quarantine", tmp_path / "q"]
    first, second = (invoke(tmp_path, args, COLUMNS="80") for _ in range(2))
    assert (first.exit_code, second.exit_code) == (0, 0)
    for out in (first.stdout, second.stdout):  # only a line naming the warehouse may be longer
        assert all(len(line) <= 80 for line in out.splitlines() if str(tmp_path) not in line)
    names = sorted(p.relative_to(SHARED_EXPORTS).as_posix() for p in SHARED_EXPORTS.rglob("*.csv"))
    cells = _file_cells(first.stdout)
    assert sorted("".join(cell) for cell in cells) == names
    folded = [cell for cell in cells if len(cell) > 1]
    assert folded  # the folder names do not fit beside the file names at 80 columns
    for cell in folded:  # broken after a separator, never mid-word
        assert all(part[-1] in "/_-. " for part in cell[:-1]), cell
    assert "33 files: 33 loaded, 0 skipped, 0 rejected" in first.stdout
    assert "33 files unchanged, skipped." in second.stdout  # one line, not 33
    assert ".csv" not in second.stdout
    assert "33 files: 0 loaded, 33 skipped, 0 rejected" in second.stdout


def test_one_of_everything_is_singular(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    source = SHARED_EXPORTS / "brews-brothers" / "leeds_09-05-2023_09-00-00_done.csv"
    (landing / source.name).write_bytes(source.read_bytes())
    args = ["run", landing, "-w", tmp_path / "w.duckdb", "--quarantine", tmp_path / "q"]
    assert "1 file: 1 loaded, 0 skipped, 0 rejected; 0 earlier versions replaced." in (
        invoke(tmp_path, args).stdout
    )
    assert "1 file unchanged, skipped." in invoke(tmp_path, args).stdout


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--warehouse", "mysql://user:hunter2@db/sales"],
        ["run", "--warehouse", ""],
        ["run", "--warehouse"],
        ["run", "--redelivery", "sometimes"],
        ["run", "--bogus"],
        ["run", "no/such/folder"],
        ["report", "--limit", "0"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = invoke(tmp_path, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "hunter2" not in result.output


def test_a_folder_as_warehouse_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(tmp_path, ["status", "--warehouse", tmp_path])
    assert result.exit_code == 2
    assert "is a folder" in result.stderr


def test_a_bad_setting_exits_1_with_one_line_and_no_secret(tmp_path: Path) -> None:
    result = invoke(
        tmp_path,
        ["run", tmp_path, "-w", tmp_path / "w.duckdb", "--json"],
        BREWLINE_PII_KEY="tooshort42",
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "brewline: error: invalid settings: environment variable BREWLINE_PII_KEY: "
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(result.stdout)["status"] == "failed"
    assert "tooshort42" not in result.output


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("warehouse = sales.duckdb\n", "not a valid TOML settings file (Invalid value"),
        (None, "no such file (named by BREWLINE_CONFIG)"),
    ],
)
def test_a_bad_settings_file_exits_1_with_one_line_naming_it(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    config = tmp_path / "settings.toml"
    if content is not None:
        config.write_text(content)
    for command in (["status"], ["run", tmp_path], ["check"], ["report", "--json"]):
        result = brewline(tmp_path, *command, config=str(config))
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.startswith(f"brewline: error: {config}: {problem}")
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_a_duckdb_folder_with_a_question_mark_is_refused_in_one_line(tmp_path: Path) -> None:
    """DuckDB would create the file, then fail at the first commit (its log path breaks)."""
    warehouse = tmp_path / "why?" / "w.duckdb"
    warehouse.parent.mkdir()
    result = invoke(tmp_path, ["run", tmp_path, "-w", warehouse])
    assert result.exit_code == 1
    assert "choose a folder without '?'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(warehouse.parent.iterdir()) == []


def test_status_of_a_missing_warehouse_exits_1_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "w.duckdb"  # (in a folder that does not exist: exit 2, see below)
    result = invoke(tmp_path, ["status", "-w", missing])
    assert result.exit_code == 1
    assert "no warehouse at" in result.stderr
    assert not missing.exists()


def test_exit_codes_on_real_processes(tmp_path: Path) -> None:
    landing = _landing_with_a_broken_file(tmp_path)
    broken = brewline(tmp_path, "run", landing, "-w", tmp_path / "w.duckdb", "--json")
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["files_rejected"] == 1
    usage = brewline(tmp_path, "run", "--warehouse", "ftp://x", "--json")
    assert usage.returncode == 2
    assert "Invalid value for '--warehouse'" in usage.stderr
    assert brewline(tmp_path, "--version").stdout.strip() == f"brewline {__version__}"


def test_help_documents_exit_codes_and_every_command(tmp_path: Path) -> None:
    result = invoke(tmp_path, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes: 0" in result.stdout
    for command in ("run", "status", "report", "demo", "init"):
        assert command in result.stdout
        sub = invoke(tmp_path, [command, "--help"])
        assert sub.exit_code == 0
        assert "--warehouse" in sub.stdout


NOT_AT_START = {"polars", "duckdb", "pyarrow", "psycopg", "plotly", "starlette", "numpy"} | {
    "pydantic",  # settings, and Rich, load inside the commands too: --help needs neither
    "pydantic_settings",
    "rich",
}
"""Engines, frames, the dashboard: what starting the CLI never imports."""


def imported_by(*args: str) -> set[str]:
    """Top-level packages a fresh ``python -X importtime ARGS`` imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip() for line in lines}
    assert "brewline" in names
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize(
    "args",
    [["-c", "import brewline"], ["-c", "import brewline.cli"], ["-m", "brewline", "--help"]],
)
def test_starting_the_cli_imports_nothing_heavy(args: list[str]) -> None:
    assert imported_by(*args) & NOT_AT_START == set()


def test_init_creates_and_reports_the_schema(tmp_path: Path) -> None:
    result = invoke(tmp_path, ["init", "-w", tmp_path / "new.duckdb"])
    assert result.exit_code == 0
    assert "is at schema version" in result.stdout
    status = invoke(tmp_path, ["status", "-w", tmp_path / "new.duckdb", "--json"])
    assert json.loads(status.stdout)["recent_runs"] == []


# -- data that tries to drive the terminal ------------------------------------------------

EVIL_BRANCH = "\x1b[2JEvil\x1b]0;pwned\x07\x9b31m"
"""Clears the screen, retitles the terminal (BEL-terminated OSC) and uses a C1 CSI."""


def test_a_warehouse_path_with_control_characters_prints_escaped(tmp_path: Path) -> None:
    result = invoke(tmp_path, ["init", "-w", tmp_path / "w\x1b[2J.duckdb"])
    assert result.exit_code == 0, result.output
    assert "w\\x1b[2J.duckdb is at schema version" in result.stdout
    assert "\x1b" not in result.stdout


def test_printable_escapes_bidirectional_controls_that_reverse_what_a_terminal_shows() -> None:
    """U+202E shows 'Leeds\u202ecsv.exe' as 'Leedsexe.vsc': a name must read as it is."""
    assert printable("Leeds\u202ecsv.exe\u2066x\u200f") == "Leeds\\u202ecsv.exe\\u2066x\\u200f"
    assert printable("Café — Zoë") == "Café — Zoë"


def test_printable_escapes_c0_del_and_c1_but_not_spaces_or_letters() -> None:
    assert printable("a b\x00\t\n\x1f\x7f\x80\x9f\xa0é£") == (
        "a b\\x00\\x09\\x0a\\x1f\\x7f\\x80\\x9f\xa0é£"
    )


def _evil_landing(tmp: Path) -> Path:
    landing = tmp / "landing"
    landing.mkdir()
    sales = "".join(
        f"09/05/2023 09:0{i},{EVIL_BRANCH},A Person,Regular Latte - 2.15,2.15,CASH,\n"
        for i in range(3)
    )
    (landing / "evil_09-05-2023_09-00-00\x1b[31m.csv").write_text(sales, encoding="utf-8")
    (landing / "notes\x1b]0;x\x07.csv").write_text(BROKEN, encoding="utf-8")
    return landing


def test_control_characters_in_data_are_printed_escaped(tmp_path: Path) -> None:
    landing = _evil_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    outputs = {
        "run": invoke(tmp_path, ["run", landing, "-w", warehouse, "--quarantine", tmp_path / "q"]),
        "report": invoke(tmp_path, ["report", "-w", warehouse]),
        "status": invoke(tmp_path, ["status", "-w", warehouse]),
        "check": invoke(tmp_path, ["check", "-w", warehouse, "--as-of", "2023-05-10"]),
    }
    for command, result in outputs.items():
        shown = result.stdout + result.stderr
        assert not set(shown) & {"\x1b", "\x07", "\x9b"}, command
    assert "\\x1b[31m.csv" in outputs["run"].stdout
    assert "notes\\x1b]0;x\\x07.csv" in outputs["status"].stdout
    for command in ("report", "check"):
        assert "\\x1b[2JEvil\\x1b]0;pwned\\x07\\x9b31m" in outputs[command].stdout, command
    as_json = json.loads(invoke(tmp_path, ["report", "-w", warehouse, "--json"]).stdout)
    assert as_json["revenue_by_branch"][0]["branch"] == EVIL_BRANCH  # JSON stays exact


# -- demo ----------------------------------------------------------------------------------


def _demo(tmp: Path, warehouse: Path, days: int = 3, **env: str) -> Result:
    args = ["demo", "--folder", tmp / "demo", "--warehouse", warehouse, "--branches", 3]
    return invoke(tmp, [*args, "--days", days], **env)


def test_demo_loads_a_small_month_and_prints_headlines(tmp_path: Path) -> None:
    warehouse = tmp_path / "demo.duckdb"
    result = _demo(tmp_path, warehouse)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        "Brewline demo: 3 branches x 3 days",
        "9 files: 9 loaded",
        "Sales",
        "Revenue",
        "Best seller",
        "Busiest hour",
        "Top branch",
        "Card share",
        "% of card sales",
        "DEMO key (demo-only",
    ):
        assert text in out
    assert DEMO_PII_KEY not in out
    assert sorted(p.name for p in (tmp_path / "demo" / "landing").iterdir())[0].endswith(".csv")

    again = _demo(tmp_path, warehouse)  # same seed, same files: nothing new, same key
    assert again.exit_code == 0, again.output
    assert "9 files: 0 loaded, 9 skipped" in again.stdout
    assert "DEMO key" in again.stdout


def test_demo_keeps_the_demo_key_out_of_other_warehouses(tmp_path: Path) -> None:
    warehouse = tmp_path / "real.duckdb"
    assert invoke(tmp_path, ["init", "-w", warehouse]).exit_code == 0
    result = _demo(tmp_path, warehouse)
    assert result.exit_code == 0, result.output
    assert "customer tokens: off" in result.stdout
    assert "was not made by the demo" in result.stdout
    assert "- (no customer tokens)" in result.stdout


def test_demo_uses_the_configured_key(tmp_path: Path) -> None:
    result = _demo(tmp_path, tmp_path / "demo.duckdb", BREWLINE_PII_KEY="my-own-key-0123456789")
    assert result.exit_code == 0, result.output
    assert "made with your BREWLINE_PII_KEY" in result.stdout
    assert "my-own-key-0123456789" not in result.stdout


def test_a_longer_demo_keeps_the_earlier_days_files(tmp_path: Path) -> None:
    warehouse = tmp_path / "demo.duckdb"
    landing = tmp_path / "demo" / "landing"
    assert _demo(tmp_path, warehouse, days=3).exit_code == 0
    first = {p.name: p.read_bytes() for p in landing.iterdir()}
    longer = _demo(tmp_path, warehouse, days=5)
    assert longer.exit_code == 0, longer.output
    assert "15 files: 6 loaded, 9 skipped, 0 rejected; 0 earlier versions replaced" in (
        longer.stdout
    )
    now = {p.name: p.read_bytes() for p in landing.iterdir()}
    assert len(now) == 15
    assert {name: now[name] for name in first} == first


def test_every_next_command_the_demo_prints_runs_as_printed(tmp_path: Path) -> None:
    """As `make demo` runs it: `.venv/bin/brewline demo`, with the venv not on PATH.

    The commands said `brewline ...`, which is not found there; and `check` right
    after the demo failed, its data being from 2024: the demo prints the --as-of that fits.
    """
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    env.update(BREWLINE_CONFIG=os.devnull, PATH="/usr/bin:/bin", COLUMNS="200")
    assert shutil.which("brewline", path=env["PATH"]) is None

    def shell(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    demo = shell(".venv/bin/brewline demo --branches 2 --days 2")  # ./demo, ./brewline.duckdb
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    commands = [line.strip() for line in lines[lines.index("Next:") + 1 :]]
    assert commands == [
        ".venv/bin/brewline report --warehouse brewline.duckdb",
        ".venv/bin/brewline status --warehouse brewline.duckdb",
        ".venv/bin/brewline check --as-of 2024-11-03 --warehouse brewline.duckdb",
        ".venv/bin/brewline run demo/landing --warehouse brewline.duckdb "
        "--quarantine demo/quarantine",
    ]
    for command in commands:
        result = shell(command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert result.stderr == "", (command, result.stderr)
    # The run into the demo's warehouse kept the demo's key: nothing new, nothing refused.
    assert "4 files: 0 loaded, 4 skipped" in result.stdout
    assert "made with the built-in DEMO key" in result.stdout


def test_the_demo_names_brewline_as_it_was_started(tmp_path: Path) -> None:
    """From elsewhere, the script's absolute path; `python -m brewline` stays that."""
    script = Path(sys.executable).parent / "brewline"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    env.update(BREWLINE_CONFIG=os.devnull, PATH="/usr/bin:/bin", COLUMNS="200")
    args = ["demo", "--branches", "1", "--days", "1", "--warehouse", "d.duckdb"]
    for program in ([str(script)], [sys.executable, "-m", "brewline"]):
        done = subprocess.run(
            [*program, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        status = next(line.strip() for line in done.stdout.splitlines() if " status " in line)
        assert status == shlex.join([*program, "status", "--warehouse", "d.duckdb"])


def test_run_uses_the_demo_key_only_in_the_demo_warehouse(tmp_path: Path) -> None:
    assert _demo(tmp_path, tmp_path / "demo.duckdb").exit_code == 0
    landing = tmp_path / "demo" / "landing"
    other = invoke(tmp_path, ["run", landing, "-w", tmp_path / "other.duckdb", "--json"])
    assert other.exit_code == 0, other.output
    assert json.loads(other.stdout)["customer_tokens"] is False
    own_key = invoke(
        tmp_path,
        ["run", landing, "-w", tmp_path / "demo.duckdb"],
        BREWLINE_PII_KEY="my-own-key-0123456789",
    )
    assert own_key.exit_code == 1
    assert "the PII key differs" in own_key.stderr


def test_a_one_branch_one_day_demo_is_singular(tmp_path: Path) -> None:
    args = ["demo", "--folder", tmp_path / "demo", "-w", tmp_path / "d.duckdb"]
    result = invoke(tmp_path, [*args, "--branches", 1, "--days", 1])
    assert result.exit_code == 0, result.output
    assert "Brewline demo: 1 branch x 1 day from 01 Nov 2024" in result.stdout
    assert "1 file: 1 loaded" in result.stdout


def test_status_folds_long_file_names_only_at_separators(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "a-rather-long-folder-name_for-deliveries"
    landing.mkdir(parents=True)
    name = "an_unrecognised-export_with_a_long_name_2024.csv"
    (landing / name).write_text("not,a,till,export\n", encoding="utf-8")
    warehouse = tmp_path / "w.duckdb"
    invoke(tmp_path, ["run", landing.parent, "-w", warehouse, "--quarantine", tmp_path / "q"])
    shown = invoke(tmp_path, ["status", "-w", warehouse], COLUMNS="80").stdout
    lines = shown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("source name"))
    cut = lines[start].index("reason")
    cell = [line[:cut].strip() for line in lines[start + 2 : start + 8] if line[:cut].strip()]
    assert "".join(cell) == f"{landing.name}/{name}"
    assert len(cell) > 1
    assert all(part[-1] in "/_-. " for part in cell[:-1]), cell


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["watch"],
        ["sync", "postgresql://nobody@127.0.0.1:1/none"],
        ["init"],
        ["grant-readonly", "analyst"],
        ["status"],
        ["report"],
        ["check"],
        ["serve"],
    ],
)
def test_a_warehouse_in_a_folder_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, command: list[str]
) -> None:
    """A typo'd -w path says so in one line (exit 2) and creates no folder, no warehouse."""
    (tmp_path / "landing").mkdir()
    warehouse = tmp_path / "typo" / "w.duckdb"
    result = invoke(tmp_path, [*command, "-w", warehouse])
    assert result.exit_code == 2, result.output
    assert f"folder {tmp_path / 'typo'} does not exist" in " ".join(result.output.split())
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("command", ["run", "status", "report", "check", "serve"])
def test_a_configured_warehouse_in_a_missing_folder_is_not_created(
    tmp_path: Path, command: str
) -> None:
    """Set by the environment rather than -w, the same path fails with one line (exit 1),
    whatever the command: none says to load one with `run`, none serves it anyway."""
    (tmp_path / "landing").mkdir()
    warehouse = tmp_path / "typo" / "w.duckdb"
    with socket.socket() as taken:  # were serve to start anyway, it would stop at the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = {
            "run": ["run", tmp_path / "landing", "--no-alert"],
            "serve": ["serve", "--port", port],
        }
        result = invoke(tmp_path, args.get(command, [command]), BREWLINE_WAREHOUSE=str(warehouse))
    assert result.exit_code == 1, result.output
    assert len(result.output.splitlines()) == 1, result.output
    assert "no folder" in result.output
    assert "create the folder" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "typo").exists()
