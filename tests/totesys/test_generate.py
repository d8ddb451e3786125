"""The totesys generator on a real PostgreSQL: the README's shape, the writer, the two traps."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from brewline.totesys.generate import (
    SOURCE_TABLES,
    Writer,
    create_source,
    fill,
    generate_tables,
)

pytestmark = pytest.mark.postgres

END = dt.datetime(2025, 3, 14, 16, 30, 0, 123000)
SALES = 3_000


def connect(url: str) -> psycopg.Connection[Any]:
    con = psycopg.connect(url, autocommit=True)
    con.execute("SET TIME ZONE 'UTC'")
    return con


def scalar(con: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = con.execute(query.encode() if not params else query, params or None).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def source(postgres_url: str) -> str:
    """A source filled with 3,000 sales orders ending at END."""
    create_source(postgres_url)
    fill(postgres_url, sales_orders=SALES, seed=5, end=END)
    return postgres_url


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- schema --------------------------------------------------------------------------------------


def test_create_source_is_idempotent_with_keys_indexes_and_no_triggers(postgres_url: str) -> None:
    create_source(postgres_url)
    create_source(postgres_url)
    with connect(postgres_url) as con:
        tables = {
            r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert tables == set(SOURCE_TABLES)
        indexed = {
            r[0]
            for r in con.execute(
                "SELECT tablename FROM pg_indexes WHERE indexname LIKE '%_last_updated_idx'"
            )
        }
        assert indexed == set(SOURCE_TABLES)
        assert scalar(con, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 17
        # last_updated is the application's job: no trigger moves it.
        assert scalar(con, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
        types = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, data_type || coalesce("
                "'(' || datetime_precision || ')', '') FROM information_schema.columns "
                "WHERE column_name IN ('created_at', 'last_updated')"
            ).fetchall()
        )
        assert set(types.values()) == {"timestamp without time zone(3)"}
        assert len(types) == 2 * len(SOURCE_TABLES)


# -- fill: the README's shape --------------------------------------------------------------------


def test_fill_returns_rows_per_table_in_proportion(postgres_url: str) -> None:
    create_source(postgres_url)
    rows = fill(postgres_url, sales_orders=SALES, seed=5, end=END)
    assert list(rows) == list(SOURCE_TABLES)
    with connect(postgres_url) as con:
        counted = {t: scalar(con, f'SELECT count(*) FROM "{t}"') for t in SOURCE_TABLES}
    assert counted == rows
    assert rows["purchase_order"] == SALES // 2
    assert rows["transaction"] == rows["payment"] == SALES * 3 // 2
    assert (rows["currency"], rows["payment_type"], rows["department"]) == (3, 4, 8)
    assert all(10 <= rows[t] < 100 for t in ("address", "counterparty", "staff"))
    assert 20 <= rows["design"] < 1_000


def test_fill_needs_an_empty_source(source: str) -> None:
    with pytest.raises(ValueError, match="empty source"):
        fill(source, sales_orders=10, end=END)


def test_foreign_keys_are_back_validated_and_hold(source: str) -> None:
    with connect(source) as con:
        assert scalar(con, "SELECT bool_and(convalidated) FROM pg_constraint WHERE contype = 'f'")
        orphans = scalar(
            con,
            "SELECT count(*) FROM payment p LEFT JOIN transaction t USING (transaction_id) "
            "LEFT JOIN sales_order s ON s.sales_order_id = t.sales_order_id "
            "WHERE t.transaction_id IS NULL "
            "OR (t.transaction_type = 'SALE') <> (s.sales_order_id IS NOT NULL)",
        )
        assert orphans == 0
        # Every order has exactly one transaction, every transaction one payment.
        assert scalar(con, "SELECT count(DISTINCT sales_order_id) FROM transaction") == SALES
        assert scalar(con, "SELECT count(DISTINCT transaction_id) FROM payment") == SALES * 3 // 2


def test_sales_are_created_on_weekdays_in_office_hours_within_two_years(source: str) -> None:
    with connect(source) as con:
        outside = scalar(
            con,
            "SELECT count(*) FROM sales_order WHERE extract(isodow FROM created_at) > 5 "
            "OR created_at::time < '09:00' OR created_at::time >= '17:30'",
        )
        first, last = con.execute(
            "SELECT min(created_at), max(last_updated) FROM sales_order"
        ).fetchone() or (None, None)
    assert outside == 0
    assert END - dt.timedelta(days=731) <= first
    assert last <= END


def test_amounts_prices_and_agreed_dates(source: str) -> None:
    with connect(source) as con:
        low, high, median = con.execute(
            "SELECT min(units_sold), max(units_sold), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY units_sold) FROM sales_order"
        ).fetchone() or (0, 0, 0)
        bad_dates = scalar(
            con,
            "SELECT count(*) FROM sales_order "
            "WHERE agreed_delivery_date !~ '^\\d{4}-\\d{2}-\\d{2}$' "
            "OR agreed_delivery_date::date <= created_at::date "
            "OR agreed_payment_date::date <= created_at::date "
            "OR agreed_payment_date::date > created_at::date + 120",
        )
        spread = scalar(
            con, "SELECT max(agreed_payment_date::date - created_at::date) FROM sales_order"
        )
        unpaid_sales = scalar(
            con,
            "SELECT count(*) FROM payment p JOIN transaction t USING (transaction_id) "
            "JOIN sales_order s USING (sales_order_id) "
            "WHERE p.payment_amount <> s.units_sold * s.unit_price "
            "OR p.payment_date <> s.agreed_payment_date",
        )
    assert 1_000 <= low < 2_000
    assert 50_000 < high < 100_000
    assert 3_000 < median < 30_000
    assert bad_dates == 0
    assert spread > 60
    assert unpaid_sales == 0
    # Prices are generated with at most two decimals (nothing for numeric(10,2) to round).
    frames = generate_tables(SALES, seed=5, end=END)
    for table, column in (("sales_order", "unit_price"), ("purchase_order", "item_unit_price")):
        assert frames[table][column].str.contains(r"^\d+\.\d{2}$").all()


def test_names_with_apostrophes_and_realistic_personal_data(source: str) -> None:
    with connect(source) as con:
        assert scalar(con, "SELECT count(*) FROM staff WHERE last_name LIKE '%''%'") > 0
        assert (
            scalar(
                con, "SELECT count(*) FROM counterparty WHERE counterparty_legal_name LIKE '%''%'"
            )
            > 0
        )
        emails = [r[0] for r in con.execute("SELECT email_address FROM staff")]
        accounts = con.execute(
            "SELECT count(DISTINCT company_ac_number), count(DISTINCT counterparty_ac_number), "
            "bool_and(company_ac_number ~ '^[0-9]{8}$' AND counterparty_ac_number ~ '^[0-9]{8}$') "
            "FROM payment"
        ).fetchone()
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+@terrifictotes\.com", e) for e in emails)
    assert accounts == (3, 20, True)  # one company account per currency, one per counterparty


def test_updates_paid_payments_and_late_arriving_designs(source: str) -> None:
    with connect(source) as con:
        paid, paid_moved, unpaid, unpaid_still = con.execute(
            "SELECT count(*) FILTER (WHERE paid), "
            "count(*) FILTER (WHERE paid AND last_updated > created_at), "
            "count(*) FILTER (WHERE NOT paid), "
            "count(*) FILTER (WHERE NOT paid AND last_updated = created_at) FROM payment"
        ).fetchone() or (0, 0, 0, 0)
        updated_orders = scalar(
            con, "SELECT count(*) FROM sales_order WHERE last_updated > created_at"
        )
        late = scalar(
            con,
            "SELECT count(*) FROM sales_order s JOIN design d USING (design_id) "
            "WHERE s.last_updated < d.last_updated",
        )
        ordered_before_design = scalar(
            con,
            "SELECT count(*) FROM sales_order s JOIN design d USING (design_id) "
            "WHERE s.created_at < d.created_at",
        )
    assert paid > 0
    assert paid == paid_moved
    assert unpaid > 0
    assert unpaid == unpaid_still
    assert 0.05 * SALES < updated_orders < 0.25 * SALES
    assert late > 0
    assert ordered_before_design == 0  # an order only uses a design that exists


def test_same_seed_same_rows_other_seed_other_rows(postgres_url: str, postgres_server: Any) -> None:
    other = postgres_server.database() if postgres_server is not None else None
    if other is None:
        pytest.skip("needs the suite's own cluster for a second database")
    third = postgres_server.database()
    for url, seed in ((postgres_url, 9), (other, 9), (third, 10)):
        create_source(url)
        fill(url, sales_orders=500, seed=seed, end=END)

    def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
        with connect(url) as con:
            return {
                t: con.execute(f'SELECT * FROM "{t}" ORDER BY 1'.encode()).fetchall()
                for t in SOURCE_TABLES
            }

    first = dump(postgres_url)
    assert dump(other) == first
    assert dump(third)["sales_order"] != first["sales_order"]


# -- the writer ----------------------------------------------------------------------------------


def test_writer_inserts_and_updates_while_running_and_stops_cleanly(source: str) -> None:
    writer = Writer(source, seed=1, interval=0.005)
    with writer:
        wait_for(
            lambda: (
                writer.written.get("payment.updated", 0) >= 5
                and writer.written.get("sales_order.updated", 0) >= 3
                and writer.written.get("purchase_order.inserted", 0) >= 1
            )
        )
    assert not any(t.name == "totesys-writer" for t in threading.enumerate())
    written = writer.written
    with connect(source) as con:
        orders = scalar(con, "SELECT count(*) FROM sales_order")
        payments = scalar(con, "SELECT count(*) FROM payment")
        new = con.execute(
            "SELECT count(*), bool_and(created_at = last_updated) FROM sales_order "
            "WHERE created_at > %s",
            [END],
        ).fetchone()
        updated = scalar(
            con,
            "SELECT count(*) FROM sales_order WHERE created_at <= %s AND last_updated > %s",
            END,
            END,
        )
        # A step's rows share one last_updated: the start of their transaction.
        split = scalar(
            con,
            "SELECT count(*) FROM sales_order s JOIN transaction t USING (sales_order_id) "
            "JOIN payment p USING (transaction_id) WHERE s.created_at > %s "
            "AND NOT (s.last_updated = t.last_updated AND t.last_updated = p.created_at)",
            END,
        )
    assert orders == SALES + written["sales_order.inserted"]
    assert payments == SALES * 3 // 2 + written["payment.inserted"]
    assert new == (written["sales_order.inserted"], True)
    assert updated > 0
    assert split == 0
    assert writer.steps > 0
    assert writer.reconnects == 0
    with pytest.raises(KeyError):  # nothing silent unless asked
        written["staff.silent"]


def test_writer_raises_what_stopped_it(postgres_url: str) -> None:
    create_source(postgres_url)  # empty: nothing to write about
    writer = Writer(postgres_url)
    writer.start()
    wait_for(lambda: writer._thread is not None and not writer._thread.is_alive())
    with pytest.raises(ValueError, match="filled source"):
        writer.stop()


def test_long_transaction_commits_rows_stamped_with_its_start(source: str) -> None:
    writer = Writer(source, seed=2)
    with connect(source) as observer, writer.held_transaction() as touched:
        begun = scalar(observer, "SELECT clock_timestamp()::timestamp")
        time.sleep(0.3)
        orders = [i for t, i in touched if t == "sales_order"]
        payments = [i for t, i in touched if t == "payment"]
        # Invisible to anyone else until commit: new rows absent, old rows unchanged.
        visible = scalar(observer, "SELECT count(*) FROM sales_order WHERE last_updated > %s", END)
        assert visible == 0
        assert (
            scalar(
                observer,
                "SELECT count(*) FROM payment WHERE payment_id = ANY(%s) AND last_updated > %s",
                payments,
                END,
            )
            == 0
        )
    with connect(source) as observer:
        committed = scalar(observer, "SELECT clock_timestamp()::timestamp")
        stamps = [
            r[0]
            for r in observer.execute(
                "SELECT last_updated FROM sales_order WHERE sales_order_id = ANY(%s) "
                "UNION ALL SELECT last_updated FROM payment WHERE payment_id = ANY(%s)",
                [orders, payments],
            )
        ]
    assert len(orders) == 2
    assert len(payments) >= 1
    assert len(stamps) == len(orders) + len(payments)
    assert len(set(stamps)) == 1  # one now(): the transaction's start
    assert stamps[0] <= begun + dt.timedelta(milliseconds=1)
    assert committed - stamps[0] >= dt.timedelta(seconds=0.3)
    assert writer.written["sales_order.inserted"] == 1


def test_long_transaction_does_not_stall_the_running_writer(source: str) -> None:
    writer = Writer(source, seed=3, interval=0.01)
    with writer:
        wait_for(lambda: writer.steps > 0)
        before = writer.steps
        touched = writer.long_transaction(1.0)
        during = writer.steps - before
    assert touched
    assert during >= 5
    (order,) = [i for t, i in touched if t == "sales_order"][:1]
    with connect(source) as con:
        # Rows committed during the hold carry later stamps than the long transaction's,
        # which committed last: the case a plain watermark skips.
        later = scalar(
            con,
            "SELECT count(*) FROM sales_order WHERE last_updated > "
            "(SELECT last_updated FROM sales_order WHERE sales_order_id = %s)",
            order,
        )
    assert later >= during


def test_silent_change_leaves_last_updated_alone(source: str) -> None:
    with connect(source) as con:
        before = {
            t: dict(
                (r[0], r[1:])
                for r in con.execute(f"SELECT {t}_id, {col}, last_updated FROM {t}".encode())
            )
            for t, col in (("staff", "email_address"), ("design", "design_name"))
        }
    writer = Writer(source, seed=4)
    changed = writer.silent_change(3)
    with connect(source) as con:
        after = {
            t: dict(
                (r[0], r[1:])
                for r in con.execute(f"SELECT {t}_id, {col}, last_updated FROM {t}".encode())
            )
            for t, col in (("staff", "email_address"), ("design", "design_name"))
        }
    assert [t for t, _ in changed] == ["staff", "design", "staff"]
    for table, row_id in changed:
        old_value, old_stamp = before[table][row_id]
        new_value, new_stamp = after[table][row_id]
        assert new_value != old_value
        assert new_stamp == old_stamp
    untouched = {(t, i) for t in before for i in before[t]} - set(changed)
    assert all(before[t][i] == after[t][i] for t, i in untouched)
    assert writer.written == {"staff.silent": 2, "design.silent": 1}
