"""Loading semantics: star-schema consistency (dim_customer, dim_date, sale lines vs sales)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import duckdb
import psycopg
import pytest
from tests.conftest import PII_KEY, copy_exports
from tests.semantics._util import line, rows, write

from brewline.config import Settings
from brewline.load import open_warehouse
from brewline.pipeline import run
from brewline.schema import TABLES


def test_customer_first_seen_follows_a_correction(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """The till first wrote the sale at 09:00, the corrected file says 11:00. dim_customer keeps
    first_seen_at = 09:00, a time at which the warehouse holds no sale of that customer."""
    settings = make_settings(warehouse=warehouse_url, pii_key=PII_KEY)
    write(landing, "leeds.csv", line(ts="25/08/2021 09:00"), 1000)
    run(settings)
    write(landing, "leeds.csv", line(ts="25/08/2021 11:00"), 2000)
    run(settings)
    mismatched = rows(
        warehouse_url,
        "SELECT c.customer_key FROM dim_customer c LEFT JOIN fact_sale s USING (customer_key) "
        "GROUP BY c.customer_key, c.first_seen_at "
        "HAVING min(s.sold_at) IS DISTINCT FROM c.first_seen_at",
    )
    assert mismatched == []


# -- checked and correct ------------------------------------------------------------------------

ODD_BUT_VALID = [
    line(ts="25/08/2021 09:00", pay="cash", card=""),
    line(ts="25/08/2021 09:01", basket="Large Latte - 2.45, Regular Latte - 2.75", total="5.20"),
    line(ts="25/08/2021 09:02", basket="Large Latte - 2.5", total="2.5"),
    line(
        ts="25/08/2021 09:03",
        basket=", ".join(
            ["Large Latte - 2.45"] * 25 + ["Regular Flavoured latte - Hazelnut - 2.55"] * 25
        ),
        total="125.0",
    ),
    line(ts="25/08/2021 09:03", name="Long " * 20_000),
    line(ts=" 8/9/2021 9:04 ", branch="  Leeds  ", total=" 2.45 ", pay=" CARD "),
]


def test_odd_but_valid_rows_load_and_lines_add_up_to_sales(
    warehouse_url: str, landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    copy_exports(shared_exports, landing, ["chesterfield_25-08-2021_09-00-00.csv"])
    write(landing, "odd.csv", "".join(ODD_BUT_VALID) + "\t\n-- end of export --\n", 1)
    report = run(make_settings(warehouse=warehouse_url, pii_key=PII_KEY))
    odd = next(f for f in report.files if f.source_name == "odd.csv")
    assert (odd.rows_read, odd.rows_loaded, odd.rows_rejected) == (7, 6, 1)
    broken = rows(
        warehouse_url,
        "SELECT s.sale_key FROM fact_sale s LEFT JOIN fact_sale_line l USING (sale_key) "
        "GROUP BY s.sale_key, s.total, s.items "
        "HAVING sum(l.line_amount) IS DISTINCT FROM s.total OR sum(l.quantity) <> s.items",
    )
    assert broken == []
    missing_dates = rows(
        warehouse_url,
        "SELECT DISTINCT s.date_key FROM fact_sale s LEFT JOIN dim_date d USING (date_key) "
        "WHERE d.date_key IS NULL",
    )
    assert missing_dates == []
    assert rows(warehouse_url, "SELECT quantity FROM fact_sale_line WHERE quantity = 25") == [
        (25,),
        (25,),
    ]
    assert rows(
        warehouse_url,
        "SELECT count(*) FROM fact_sale WHERE payment_method = 'CASH' AND customer_key IS NULL "
        "AND date_key = 20210825 AND source_line = 1 AND file_id IN "
        "(SELECT file_id FROM etl_file WHERE source_name = 'odd.csv')",
    ) == [(1,)]
    assert rows(warehouse_url, "SELECT branch_name FROM dim_branch ORDER BY 1") == [
        ("Chesterfield",),
        ("Leeds",),
    ]


def _with_the_old_customer_key(url: str) -> None:
    """Make ``dim_customer`` as Brewline made it before it dropped the table's primary key."""
    with open_warehouse(url) as wh:
        wh.ensure_schema()
    old = replace(TABLES["dim_customer"], key=("customer_key",)).create_sql()
    if url.startswith("postgres"):
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("DROP TABLE dim_customer")
            pg.execute(old)  # type: ignore[arg-type]  # Brewline's own DDL, no input in it
    else:
        with duckdb.connect(url) as con:
            con.execute("DROP TABLE dim_customer")
            con.execute(old)


@pytest.mark.parametrize("made_before", [False, True], ids=["new", "keyed-before"])
def test_a_customer_is_one_row_first_seen_at_their_earliest_sale(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings], made_before: bool
) -> None:
    """dim_customer has no primary key (its random keys made the index costly): the loader
    keeps one row per customer, moved to an earlier sale delivered later, in a warehouse
    made before too (which kept the key)."""
    if made_before:
        _with_the_old_customer_key(warehouse_url)
    other = "4929000000006"
    write(landing, "a.csv", line(ts="26/08/2021 10:00"), 1000)
    write(
        landing,
        "b.csv",
        line(ts="25/08/2021 09:00", branch="York")
        + line(ts="25/08/2021 09:05", branch="York", card=other),
        2000,
    )
    write(
        landing,
        "c.csv",
        line(ts="27/08/2021 08:00") + line(ts="27/08/2021 08:30", card=other),
        3000,
    )
    settings = make_settings(warehouse=warehouse_url, pii_key=PII_KEY, batch_files=1)
    for _ in range(2):  # the second run changes nothing
        assert run(settings).status == "succeeded"
        customers = rows(
            warehouse_url,
            "SELECT count(*) AS n, count(DISTINCT customer_key) AS customers, "
            "min(first_seen_at) AS first, max(first_seen_at) AS last FROM dim_customer",
        )
        assert customers == [(2, 2, dt.datetime(2021, 8, 25, 9, 0), dt.datetime(2021, 8, 25, 9, 5))]


def test_a_refused_file_leaves_no_customer_behind(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """A file refused inside the commit (a second file for a loaded branch-day, with
    redelivery = "reject") takes its customers with it: none is a customer without sales."""
    settings = make_settings(warehouse=warehouse_url, pii_key=PII_KEY, redelivery="reject")
    write(landing, "leeds.csv", line(), 1000)
    run(settings)
    write(landing, "leeds_again.csv", line(ts="25/08/2021 10:00", card="4929000000006"), 2000)
    write(landing, "york.csv", line(branch="York"), 3000)
    report = run(settings)
    assert sorted((f.source_name, f.state) for f in report.files) == [
        ("leeds.csv", "skipped"),
        ("leeds_again.csv", "rejected"),
        ("york.csv", "loaded"),
    ]
    orphans = rows(
        warehouse_url,
        "SELECT customer_key FROM dim_customer WHERE customer_key NOT IN "
        "(SELECT customer_key FROM fact_sale WHERE customer_key IS NOT NULL)",
    )
    assert orphans == []


def test_a_correction_keeps_its_own_customers(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """A corrected file's customers are those of its replacement sales: the customer who
    bought only in it keeps their row, and one who bought elsewhere later is first seen at
    the corrected (earlier) sale, not at what was left of the facts before it was loaded."""
    other = "4929000000006"
    settings = make_settings(warehouse=warehouse_url, pii_key=PII_KEY, batch_files=1)
    write(landing, "leeds.csv", line(ts="25/08/2021 09:00") + line(card=other), 1000)
    write(landing, "york.csv", line(ts="26/08/2021 10:00", branch="York"), 2000)
    assert run(settings).status == "succeeded"
    write(
        landing,
        "leeds.csv",
        line(ts="25/08/2021 08:00") + line(ts="25/08/2021 09:30", card=other),
        3000,
    )
    assert run(settings).status == "succeeded"
    customers = rows(
        warehouse_url,
        "SELECT s.customer_key, min(s.sold_at) AS first, min(c.first_seen_at) AS seen, "
        "count(DISTINCT c.first_seen_at) AS n FROM fact_sale s "
        "LEFT JOIN dim_customer c USING (customer_key) "
        "WHERE s.customer_key IS NOT NULL GROUP BY 1 ORDER BY 2",
    )
    assert [row[1:] for row in customers] == [
        (dt.datetime(2021, 8, 25, 8, 0), dt.datetime(2021, 8, 25, 8, 0), 1),
        (dt.datetime(2021, 8, 25, 9, 30), dt.datetime(2021, 8, 25, 9, 30), 1),
    ]
