"""Whole syncs into both warehouses, compared with an independent recomputation from
the source tables (plain SQL here, not the pipeline's code)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from brewline.load import open_warehouse
from brewline.totesys.generate import Writer, create_source, fill
from brewline.totesys.sync import sync

pytestmark = pytest.mark.postgres


def source_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as con:
        return [tuple(r) for r in con.execute(sql).fetchall()]


def warehouse_rows(location: str, sql: str) -> list[tuple[object, ...]]:
    with open_warehouse(location, read_only=True) as wh:
        return [tuple(r) for r in wh.query(sql).iter_rows()]


def expected_current_orders(url: str) -> list[tuple[object, ...]]:
    return sorted(
        source_rows(
            url,
            "SELECT sales_order_id, units_sold, unit_price, design_id, staff_id, "
            "to_date(agreed_delivery_date, 'YYYY-MM-DD') FROM sales_order",
        )
    )


def loaded_current_orders(location: str) -> list[tuple[object, ...]]:
    return sorted(
        warehouse_rows(
            location,
            "SELECT sales_order_id, units_sold, unit_price, design_id, sales_staff_id, "
            "agreed_delivery_date FROM totesys_fact_sales_order f WHERE sales_record_id = "
            "(SELECT max(sales_record_id) FROM totesys_fact_sales_order g "
            "WHERE g.sales_order_id = f.sales_order_id)",
        )
    )


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_syncs_while_the_source_writes_equal_a_recomputation_from_the_source(
    engine: str, postgres_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source = postgres_url
    create_source(source)
    fill(source, sales_orders=400, seed=7)
    location = (
        str(tmp_path / "w.duckdb")
        if engine == "duckdb"
        else str(request.getfixturevalue("postgres_url"))
    )
    lake = tmp_path / "lake"
    writer = Writer(source, seed=8)
    with open_warehouse(location) as warehouse:
        first = sync(source, lake, warehouse)
        assert first.loaded
        writer.start()
        try:
            for _ in range(3):
                sync(source, lake, warehouse)
        finally:
            writer.stop()
        sync(source, lake, warehouse)  # everything committed is in now
        again = sync(source, lake, warehouse)
    assert not again.loaded  # nothing new: the star stays as it is
    assert sum(again.rows_extracted.values()) == 0

    assert loaded_current_orders(location) == expected_current_orders(source)
    # Every version the source holds now is a fact row; updates added rows.
    versions = source_rows(source, "SELECT count(*) FROM sales_order")[0][0]
    facts = warehouse_rows(location, "SELECT count(*) FROM totesys_fact_sales_order")[0][0]
    assert isinstance(versions, int)
    assert isinstance(facts, int)
    assert facts >= versions
    # Dimensions hold the current version; no account number or e-mail anywhere.
    assert sorted(
        warehouse_rows(location, "SELECT design_id, design_name FROM totesys_dim_design")
    ) == sorted(source_rows(source, "SELECT design_id, design_name FROM design"))
    paid = warehouse_rows(
        location,
        "SELECT count(*) FROM (SELECT payment_id FROM totesys_fact_payment "
        "GROUP BY payment_id HAVING bool_or(paid) AND NOT bool_and(paid)) flipped",
    )[0][0]
    assert isinstance(paid, int)
    assert paid > 0  # unpaid -> paid kept as two versions
    days = warehouse_rows(
        location,
        "SELECT count(*) FROM totesys_fact_sales_order f LEFT JOIN totesys_dim_date d "
        "ON d.date_id = f.agreed_delivery_date WHERE f.agreed_delivery_date IS NOT NULL "
        "AND d.date_id IS NULL",
    )[0][0]
    assert days == 0
    total = warehouse_rows(
        location, "SELECT sum(unit_price * units_sold) FROM totesys_fact_sales_order"
    )[0][0]
    assert isinstance(total, Decimal)
    assert (
        warehouse_rows(location, "SELECT min(created_date) FROM totesys_fact_sales_order")[0][0]
        <= dt.date.today()
    )
