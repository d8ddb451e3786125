"""brewline.queries on a tiny handmade landing folder, on DuckDB and on PostgreSQL.

Every expected figure below was worked out by hand from the rows in ``LANDING``
(see the comments), not by another query, so the SQL is checked against an
independent answer.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import psycopg
import pytest
from pydantic import SecretStr

from brewline import queries
from brewline.config import Settings
from brewline.errors import SchemaVersionError, WarehouseError
from brewline.load import Warehouse, open_warehouse
from brewline.pipeline import run
from brewline.report import RunReport

KEY = "queries-test-key-0123456789"
D = Decimal

# Sales are numbered in the comments; customers: Ann (card 4111...), Cat (5500...), Eve (4000...).
LANDING = {
    "leeds_01-03-2024_09-00-00.csv": (
        # 1: Ann, first visit; 2 x Regular Latte + Large Mocha
        '01/03/2024 09:05,Leeds,Ann Example,"Regular Latte - 2.15, Regular Latte - 2.15, '
        'Large Mocha - 2.70",7.0,CARD,4111111111111111\n'
        # 2: cash
        "01/03/2024 09:40,Leeds,Bob Example,Large Speciality Tea - Earl Grey - 1.60,1.6,CASH,\n"
        # 3: Cat, first visit
        '01/03/2024 10:15,Leeds,Cat Example,"Large Latte - 2.45, Regular Flavoured latte - '
        'Vanilla - 2.55",5.0,CARD,5500000000000004\n'
    ),
    "york_01-03-2024_09-00-00.csv": (
        # 4: Ann returns (later than sale 1, at another branch)
        "01/03/2024 09:10,York,Ann Example,Regular Latte - 2.15,2.15,CARD,4111111111111111\n"
        # 5: cash; two different menu items that differ only by case
        '01/03/2024 11:30,York,Dan Example,"Regular Hot chocolate - 2.20, Regular Hot Chocolate '
        '- 1.40",3.6,CASH,\n'
    ),
    "leeds_02-03-2024_09-00-00.csv": (
        # 6: Cat returns
        "02/03/2024 09:20,Leeds,Cat Example,Regular Latte - 2.15,2.15,CARD,5500000000000004\n"
        # 7: Eve, first visit; 2 x Large Mocha
        '02/03/2024 09:25,Leeds,Eve Example,"Large Mocha - 2.70, Large Mocha - 2.70",5.4,CARD,'
        "4000056655665556\n"
        # rejected row: the total does not match the items
        "02/03/2024 09:30,Leeds,Fay Example,Regular Latte - 2.15,9.99,CASH,\n"
    ),
    # a whole file Brewline cannot understand
    "notes.csv": "this is not,a till export\n",
}


@dataclass(frozen=True)
class Loaded:
    url: str
    first: RunReport
    second: RunReport


def _postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on the suite's throwaway server (or BREWLINE_TEST_POSTGRES_URL's)."""
    server = request.getfixturevalue("postgres_server")
    if server is not None:
        return str(server.database())
    base = os.environ["BREWLINE_TEST_POSTGRES_URL"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + f"/{name}"


def _write_landing(folder: Path) -> Path:
    folder.mkdir()
    for name, text in LANDING.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """The handmade landing loaded twice (the second run skips everything)."""
    root = tmp_path_factory.mktemp(f"queries-{request.param}")
    url = str(root / "wh.duckdb") if request.param == "duckdb" else _postgres_url(request)
    settings = Settings(
        landing=_write_landing(root / "landing"),
        warehouse=url,
        quarantine=root / "quarantine",
        pii_key=SecretStr(KEY),
    )
    return Loaded(url, run(settings), run(settings))


@pytest.fixture
def wh(loaded: Loaded) -> Iterator[Warehouse]:
    with open_warehouse(loaded.url, read_only=True) as warehouse:
        yield warehouse


def test_best_sellers_rank_by_units_then_revenue(wh: Warehouse) -> None:
    # Regular Latte: sales 1 (x2), 4, 6; Large Mocha: sales 1, 7 (x2); the rest sell once.
    assert queries.best_sellers(wh).rows() == [
        ("Latte", "Regular", None, 4, D("8.60")),
        ("Mocha", "Large", None, 3, D("8.10")),
        ("Flavoured latte", "Regular", "Vanilla", 1, D("2.55")),
        ("Latte", "Large", None, 1, D("2.45")),
        ("Hot chocolate", "Regular", None, 1, D("2.20")),
        ("Speciality Tea", "Large", "Earl Grey", 1, D("1.60")),
        ("Hot Chocolate", "Regular", None, 1, D("1.40")),
    ]
    assert queries.best_sellers(wh, limit=2)["product"].to_list() == ["Latte", "Mocha"]


def test_revenue_by_branch(wh: Warehouse) -> None:
    # Leeds: 7.00 + 1.60 + 5.00 + 2.15 + 5.40; York: 2.15 + 3.60.
    frame = queries.revenue_by_branch(wh)
    assert frame.select("branch", "sales", "revenue").rows() == [
        ("Leeds", 5, D("21.15")),
        ("York", 2, D("5.75")),
    ]
    assert frame["share"].to_list() == pytest.approx([21.15 / 26.90, 5.75 / 26.90])


def test_revenue_by_day_all_and_latest(wh: Warehouse) -> None:
    assert queries.revenue_by_day(wh).rows() == [
        (dt.date(2024, 3, 1), 5, D("19.35")),
        (dt.date(2024, 3, 2), 2, D("7.55")),
    ]
    assert queries.revenue_by_day(wh, days=1).rows() == [(dt.date(2024, 3, 2), 2, D("7.55"))]


def test_busiest_hours_in_local_time(wh: Warehouse) -> None:
    # 09h: sales 1, 2, 4, 6, 7; 10h: sale 3; 11h: sale 5.
    assert queries.busiest_hours(wh).rows() == [
        (9, 5, D("18.30")),
        (10, 1, D("5.00")),
        (11, 1, D("3.60")),
    ]


def test_payment_mix(wh: Warehouse) -> None:
    frame = queries.payment_mix(wh)
    assert frame.select("method", "sales", "revenue").rows() == [
        ("CARD", 5, D("21.70")),
        ("CASH", 2, D("5.20")),
    ]
    assert frame["share"].to_list() == pytest.approx([5 / 7, 2 / 7])


def test_basket_stats_are_exact(wh: Warehouse) -> None:
    # 26.90 over 7 sales = 3.842857... -> 3.84; 12 units over 7 sales.
    (row,) = queries.basket_stats(wh).rows(named=True)
    assert row == {
        "sales": 7,
        "revenue": D("26.90"),
        "units": 12,
        "avg_basket": D("3.84"),
        "avg_items": pytest.approx(12 / 7),
    }


def test_customer_mix_counts_a_first_visit_as_new(wh: Warehouse) -> None:
    # new: Ann (1), Cat (3), Eve (7) = 17.40; returning: Ann (4), Cat (6) = 4.30.
    frame = queries.customer_mix(wh)
    assert frame.select("customer", "sales", "revenue").rows() == [
        ("new", 3, D("17.40")),
        ("returning", 2, D("4.30")),
    ]
    assert frame["share"].to_list() == pytest.approx([3 / 5, 2 / 5])


def test_money_is_decimal_and_dtypes_match_on_every_engine(wh: Warehouse) -> None:
    report = queries.sales_report(wh)
    for name in (
        "best_sellers",
        "revenue_by_branch",
        "revenue_by_day",
        "busiest_hours",
        "payment_mix",
        "customer_mix",
    ):
        assert report[name].schema["revenue"] == queries.MONEY, name
    assert report["basket"].schema["avg_basket"] == queries.MONEY
    assert report["busiest_hours"].schema["hour"] == pl.Int32


def test_headline(wh: Warehouse) -> None:
    assert queries.headline(wh) == {
        "sales": 7,
        "revenue": D("26.90"),
        "avg_basket": D("3.84"),
        "best_seller": ("Latte", "Regular", None),
        "busiest_hour": 9,
        "top_branch": "Leeds",
        "card_share": pytest.approx(5 / 7),
        "returning_share": pytest.approx(2 / 5),
    }


def test_files_by_state(wh: Warehouse, loaded: Loaded) -> None:
    # 8 rows in three till files, one rejected; notes.csv is rejected whole.
    rejected = next(f for f in loaded.first.files if f.source_name == "notes.csv")
    assert queries.files_by_state(wh).rows() == [
        ("loaded", 3, 8, 7, 1),
        ("rejected", 1, rejected.rows_read, 0, rejected.rows_read),
    ]


def test_rejects_by_reason_and_rejected_files(wh: Warehouse, loaded: Loaded) -> None:
    rejected = next(f for f in loaded.first.files if f.source_name == "notes.csv")
    assert rejected.state == "rejected"
    assert rejected.reason
    assert sorted(queries.rejects_by_reason(wh).rows()) == sorted(
        [
            ("row", "total_mismatch", 1, 1),
            ("file", rejected.reason, rejected.rows_read, 1),
        ]
    )
    files = queries.rejected_files(wh)
    assert files.select("source_name", "reason", "message").rows() == [
        ("notes.csv", rejected.reason, rejected.message)
    ]


def test_recent_runs_newest_first(wh: Warehouse, loaded: Loaded) -> None:
    runs = queries.recent_runs(wh)
    assert runs["run_id"].to_list() == [loaded.second.run_id, loaded.first.run_id]
    columns = ["status", "files_loaded", "files_skipped", "files_rejected", "rows_loaded"]
    assert runs.select(columns).rows() == [
        ("succeeded", 0, 4, 0, 0),
        ("completed_with_rejects", 3, 0, 1, 7),
    ]
    assert queries.recent_runs(wh, limit=1)["run_id"].to_list() == [loaded.second.run_id]


def test_status_report_bundles_the_ledger_views(wh: Warehouse) -> None:
    assert list(queries.status_report(wh)) == [
        "recent_runs",
        "files_by_state",
        "rejects_by_reason",
        "rejected_files",
        "source_watermarks",
    ]


def test_without_a_key_there_are_no_customer_figures(tmp_path: Path) -> None:
    settings = Settings(
        landing=_write_landing(tmp_path / "landing"),
        warehouse=str(tmp_path / "wh.duckdb"),
        quarantine=tmp_path / "q",
    )
    run(settings)
    with open_warehouse(settings.warehouse, read_only=True) as wh:
        assert queries.customer_mix(wh).is_empty()
        assert queries.headline(wh)["returning_share"] is None


def test_an_empty_warehouse_gives_empty_typed_frames(tmp_path: Path) -> None:
    url = str(tmp_path / "empty.duckdb")
    with open_warehouse(url) as wh:
        wh.ensure_schema()
        assert queries.best_sellers(wh).is_empty()
        assert queries.revenue_by_branch(wh).schema["revenue"] == queries.MONEY
        assert queries.basket_stats(wh).rows() == [(0, None, None, None, None)]
        assert queries.headline(wh) == {
            "sales": 0,
            "revenue": None,
            "avg_basket": None,
            "best_seller": None,
            "busiest_hour": None,
            "top_branch": None,
            "card_share": None,
            "returning_share": None,
        }


def test_check_schema_names_the_problem(tmp_path: Path) -> None:
    with open_warehouse(":memory:") as wh, pytest.raises(WarehouseError, match="brewline run"):
        wh.check_schema()
    url = str(tmp_path / "future.duckdb")
    with open_warehouse(url) as wh:
        wh.ensure_schema()
    with duckdb.connect(url) as con:
        con.execute("INSERT INTO schema_version VALUES (999, now())")
    with (
        open_warehouse(url, read_only=True) as wh,
        pytest.raises(SchemaVersionError, match="upgrade Brewline"),
    ):
        queries.sales_report(wh)
