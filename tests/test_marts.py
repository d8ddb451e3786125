"""The marts stay equal to the facts through every kind of change, on both engines.

Each step below changes the facts in a different way the loader handles
(late days that move customers' first sales earlier, a corrected file, a
redelivered branch-day, a multi-day file taking days over from two files), and
after each the marts must equal both their SQL definition and an independent
Polars recomputation (:func:`tests.marts.assert_marts_exact`). Kills and two
runners at once are covered by ``tests/test_faults.py``, which checks the marts
too, and every ledger-semantics test does through ``snapshot``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from pydantic import SecretStr
from tests.conftest import PII_KEY
from tests.marts import assert_marts_exact
from tests.semantics._util import rows, snapshot
from typer.testing import CliRunner

from brewline import queries
from brewline.cli import app
from brewline.config import Settings
from brewline.load import open_warehouse
from brewline.load.migrations import SCHEMA_VERSION
from brewline.marts import MARTS
from brewline.pipeline import run
from brewline.synth import SynthSpec, generate_landing

_OLD_CUSTOMER_MIX = """
    SELECT CASE WHEN visit = 1 THEN 'new' ELSE 'returning' END AS customer,
           COUNT(*) AS sales, SUM(total) AS revenue
    FROM (SELECT total, ROW_NUMBER() OVER (
              PARTITION BY customer_key ORDER BY sold_at, sale_key) AS visit
          FROM fact_sale WHERE customer_key IS NOT NULL) AS visits
    GROUP BY 1 ORDER BY 1
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """3 branches x 4 days of ~40 sales: regulars come back, so first sales matter."""
    folder = tmp_path_factory.mktemp("generated")
    return generate_landing(folder, SynthSpec(branches=3, days=4, sales_per_branch_day=40, seed=5))


def _place(landing: Path, source: Path, mtime: float, name: str | None = None) -> None:
    target = landing / (name or source.name)
    shutil.copyfile(source, target)
    os.utime(target, (mtime, mtime))


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_marts_equal_the_facts_after_every_kind_of_change(
    warehouse_url: str,
    landing: Path,
    generated: list[Path],
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(warehouse=warehouse_url, pii_key=SecretStr(PII_KEY))
    days = sorted({p.name.split("_")[1] for p in generated})  # dd-11-2024: sorts by day
    late = [p for p in generated if p.name.split("_")[1] in days[len(days) // 2 :]]
    early = [p for p in generated if p.name.split("_")[1] in days[: len(days) // 2]]
    assert late
    assert early

    # 1. The later days first, then the earlier ones: customers' first sales move earlier.
    for path in late:
        _place(landing, path, 1000)
    assert run(settings).exit_code == 0
    assert_marts_exact(warehouse_url)
    for path in early:
        _place(landing, path, 2000)
    assert run(settings).exit_code == 0
    assert_marts_exact(warehouse_url)

    # 2. A corrected file: the same name without its first half (first sales deleted).
    corrected = sorted(landing.glob("*.csv"))[0]
    kept = _lines(corrected)
    corrected.write_text("".join(kept[len(kept) // 2 :]))
    os.utime(corrected, (3000, 3000))
    assert run(settings).exit_code == 0
    assert_marts_exact(warehouse_url)

    # 3. A redelivery of another branch-day: "(1)" with all but its last three sales.
    second = sorted(landing.glob("*.csv"))[5]
    (landing / f"{second.stem} (1).csv").write_text("".join(_lines(second)[:-3]))
    os.utime(landing / f"{second.stem} (1).csv", (4000, 4000))
    assert run(settings).exit_code == 0
    assert_marts_exact(warehouse_url)

    # 4. One file holding two days of a branch takes both over from their files.
    branch = sorted(landing.glob("*.csv"))[-1].name.split("_")[0]
    two = sorted(p for p in generated if p.name.startswith(branch + "_"))[1:3]
    (landing / f"{branch}_both.csv").write_text("".join(_lines(two[0]) + _lines(two[1])[:10]))
    os.utime(landing / f"{branch}_both.csv", (5000, 5000))
    assert run(settings).exit_code == 0
    taken = "SELECT COUNT(*) FROM etl_file WHERE replaced_by = (SELECT file_id FROM etl_file "
    taken += "WHERE source_name LIKE '%both.csv')"
    assert rows(warehouse_url, taken) == [(2,)]
    assert_marts_exact(warehouse_url)

    # The readers' answers from the marts equal the same questions asked of the facts.
    with open_warehouse(warehouse_url, read_only=True) as wh:
        mix = queries.customer_mix(wh).select("customer", "sales", "revenue").rows()
        assert mix == wh.query(_OLD_CUSTOMER_MIX).rows()
        basket = queries.basket_stats(wh).select("sales", "revenue", "units").row(0)
        facts = "SELECT COUNT(*) AS n, SUM(total) AS revenue, SUM(items) AS units FROM fact_sale"
        assert basket == wh.query(facts).row(0)

    # Running again changes nothing, marts included.
    before = snapshot(warehouse_url)
    assert run(settings).exit_code == 0
    assert snapshot(warehouse_url) == before


def test_check_finds_a_tampered_mart_and_init_rebuilds_it(
    tmp_path: Path, landing: Path, generated: list[Path]
) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    for path in generated[:4]:
        _place(landing, path, 1000)
    env = {"BREWLINE_PII_KEY": PII_KEY}
    cli = CliRunner()
    assert cli.invoke(app, ["run", str(landing), "-w", warehouse], env=env).exit_code == 0
    with duckdb.connect(warehouse) as con:
        con.execute("UPDATE mart_sales_day SET sales = sales + 1 WHERE payment_method = 'CARD'")
        con.execute("DELETE FROM mart_customer_first WHERE customer_key % 2 = 0")
        con.execute("DELETE FROM dim_customer WHERE customer_key % 3 = 0")  # as a defect did

    checked = cli.invoke(app, ["check", "-w", warehouse, "--as-of", "2024-11-03"])
    assert checked.exit_code == 1
    table = [line.split() for line in checked.output.splitlines()]
    assert [row[:3] for row in table if row[:1] == ["marts"]] == [
        ["marts", "fail", "mart_sales_day"],
        ["marts", "fail", "mart_sales_month"],  # the rollup no longer equals its days
        ["marts", "fail", "mart_customer_first"],
        ["marts", "fail", "dim_customer"],
    ]
    assert "`brewline init --rebuild-marts` fixes it" in " ".join(checked.output.split())

    rebuilt = cli.invoke(app, ["init", "-w", warehouse, "--rebuild-marts"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "recomputed" in rebuilt.output
    assert_marts_exact(warehouse)
    assert rows(
        warehouse,
        "SELECT count(*) AS n FROM (SELECT customer_key, min(sold_at) FROM fact_sale "
        "WHERE customer_key IS NOT NULL GROUP BY 1 "
        "EXCEPT SELECT customer_key, first_seen_at FROM dim_customer) AS missing",
    ) == [(0,)]
    again = cli.invoke(app, ["check", "-w", warehouse, "--as-of", "2024-11-03", "--json"])
    assert "marts and dim_customer equal the facts" in again.output


def test_upgrading_a_warehouse_fills_its_marts_from_the_facts_it_holds(
    warehouse_url: str, landing: Path, generated: list[Path], make_settings: Callable[..., Settings]
) -> None:
    """A warehouse loaded before the marts existed (schema 4) gets them, exact, from `init`."""
    for path in generated[:3]:
        _place(landing, path, 1000)
    assert run(make_settings(warehouse=warehouse_url, pii_key=SecretStr(PII_KEY))).exit_code == 0
    with open_warehouse(warehouse_url) as wh:  # back to schema 4: the same facts, no marts
        drops = [f"DROP TABLE {table}" for table in MARTS]
        wh.run_admin([*drops, "DELETE FROM schema_version WHERE version >= 5"])
        assert wh.schema_version() == 4
        assert wh.ensure_schema(upgrade=True) == SCHEMA_VERSION
        assert wh.query("SELECT COUNT(*) AS n FROM mart_product_day")["n"][0] > 0
    assert_marts_exact(warehouse_url)
