"""The same loading semantics and the same figures on DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from tests.conftest import PII_KEY, copy_exports

from brewline.config import Settings
from brewline.load import open_warehouse
from brewline.pipeline import run

SUMMARY = (
    "SELECT (SELECT count(*) FROM fact_sale) AS sales, (SELECT sum(total) FROM fact_sale) AS total,"
    " (SELECT sum(quantity) FROM fact_sale_line) AS units,"
    " (SELECT sum(line_amount) FROM fact_sale_line) AS amount,"
    " (SELECT count(*) FROM dim_product) AS products,"
    " (SELECT count(*) FROM dim_branch) AS branches,"
    " (SELECT count(*) FROM dim_customer) AS customers, (SELECT count(*) FROM dim_date) AS dates"
)


def summary(url: str) -> dict[str, object]:
    with open_warehouse(url, read_only=True) as wh:
        return wh.query(SUMMARY).row(0, named=True)


def test_real_exports_give_the_published_figures(
    warehouse_url: str, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    report = run(make_settings(landing=shared_exports, warehouse=warehouse_url, pii_key=PII_KEY))
    assert (report.exit_code, report.rows_loaded) == (0, 10163)
    figures = summary(warehouse_url)
    assert {k: figures[k] for k in ("sales", "total", "units", "amount", "branches", "dates")} == {
        "sales": 10163,
        "total": Decimal("63758.75"),
        "units": 28107,
        "amount": Decimal("63758.75"),
        "branches": 30,
        "dates": 4,
    }


def test_idempotent_and_corrections_on_every_engine(
    warehouse_url: str, landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    (path,) = copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    settings = make_settings(warehouse=warehouse_url)
    run(settings)
    assert run(settings).count("skipped") == 1
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-5]))
    again = run(settings)
    assert [(f.state, f.replaced) for f in again.files] == [("loaded", (path.name,))]
    assert summary(warehouse_url)["sales"] == 45
    with open_warehouse(warehouse_url, read_only=True) as wh:
        states = wh.query("SELECT state, rows_loaded FROM etl_file ORDER BY state")
    assert states.rows() == [("loaded", 45), ("replaced", 50)]


def test_redelivery_in_the_same_run_replaces_on_every_engine(
    warehouse_url: str, landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    (first,) = copy_exports(shared_exports, landing, ["london_camden_18-12-2024_09-00-00 (1).csv"])
    second = landing / "london_camden_18-12-2024_09-00-00 (2).csv"
    second.write_bytes(b"".join(first.read_bytes().splitlines(keepends=True)[:100]))
    os.utime(second, (time.time() + 5, time.time() + 5))
    report = run(make_settings(warehouse=warehouse_url))
    assert [(f.source_name, f.state) for f in report.files] == [
        (first.name, "replaced"),
        (second.name, "loaded"),
    ]
    assert report.files[1].replaced == (first.name,)
    assert summary(warehouse_url)["sales"] == 100


def test_duckdb_and_postgres_hold_identical_tables(
    postgres_url: str, tmp_path: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    duck = str(tmp_path / "parity.duckdb")
    for url in (duck, postgres_url):
        run(make_settings(landing=shared_exports, warehouse=url, pii_key=PII_KEY))
    tables = {
        "fact_sale": "sale_key",
        "fact_sale_line": "sale_key, product_key",
        "dim_product": "product_key",
        "dim_branch": "branch_key",
        "dim_date": "date_key",
        "dim_customer": "customer_key",
        "etl_file_branch_day": "branch_key, date_key",
    }
    for table, order in tables.items():
        frames = []
        for url in (duck, postgres_url):
            with open_warehouse(url, read_only=True) as wh:
                frames.append(wh.query(f"SELECT * FROM {table} ORDER BY {order}"))
        duck_rows, pg_rows = (f.rows() for f in frames)
        assert duck_rows == pg_rows, table
    assert summary(duck) == summary(postgres_url)
