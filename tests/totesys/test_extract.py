"""The incremental extract against a real PostgreSQL that keeps writing: nothing is ever
skipped, not even a transaction that commits after an extract with early timestamps."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest

from brewline.errors import ConfigError
from brewline.load import open_warehouse
from brewline.totesys.cursor import watermark
from brewline.totesys.extract import NOT_EXTRACTED, SOURCE, TABLES, extract
from brewline.totesys.generate import Writer, create_source, fill
from brewline.totesys.lake import open_lake
from brewline.totesys.model import versions

pytestmark = pytest.mark.postgres


def source_versions(url: str, table: str) -> set[tuple[int, str]]:
    """Every (id, last_updated) the source holds now: computed here, not by the extractor."""
    with psycopg.connect(url) as con:
        rows = con.execute(f'SELECT {table}_id, last_updated FROM "{table}"').fetchall()
    return {(int(i), ts.isoformat(timespec="milliseconds")) for i, ts in rows}


def lake_versions(lake_dir: Path, table: str) -> set[tuple[int, str]]:
    lake = open_lake(lake_dir)
    frames = [
        lake.get_parquet(m["tables"][table]["key"])
        for m in lake.manifests()
        if m["tables"][table]["key"]
    ]
    if not frames:
        return set()
    seen = versions(frames, table)
    return {
        (int(i), ts.isoformat(timespec="milliseconds"))
        for i, ts in seen.select(f"{table}_id", "last_updated").iter_rows()
    }


def test_a_late_commit_with_early_timestamps_is_never_skipped(
    postgres_url: str, tmp_path: Path
) -> None:
    source = postgres_url
    create_source(source)
    fill(source, sales_orders=300, seed=3)
    lake_dir = tmp_path / "lake"
    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.ensure_schema()
        extract(source, open_lake(lake_dir), warehouse)
        writer = Writer(source, seed=4)
        # A transaction writes rows stamped with its start time, then stays open ...
        late = threading.Thread(target=writer.long_transaction, args=(2.0,))
        late.start()
        time.sleep(0.5)
        writer.start()  # ... while others commit later-stamped rows ...
        try:
            for _ in range(3):  # ... and extracts run and advance their watermark.
                extract(source, open_lake(lake_dir), warehouse)
                time.sleep(0.4)
            late.join()  # the late transaction commits, stamped before those watermarks
        finally:
            writer.stop()
        extract(source, open_lake(lake_dir), warehouse)  # nothing open now: all of it
        for table in TABLES:  # every version the source holds now was extracted (and more:
            # versions that later updates replaced in the source stay in the lake)
            missing = source_versions(source, table) - lake_versions(lake_dir, table)
            assert not missing, (table, sorted(missing)[:5])
        assert warehouse.get_cursor(SOURCE, "sales_order") is not None
    assert sum(writer.written.values()) > 0


def test_an_empty_extract_writes_only_a_manifest_and_private_columns_never_leave(
    postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=100, seed=1)
    lake = open_lake(tmp_path / "lake")
    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.ensure_schema()
        first = extract(postgres_url, lake, warehouse)
        assert first.rows > 0
        again = extract(postgres_url, lake, warehouse)
    assert again.rows == 0
    assert len(lake.manifests()) == 2
    for table, private in NOT_EXTRACTED.items():
        frame = lake.get_parquet(first.tables[table]["key"])
        assert not set(private) & set(frame.columns), table
    payments = lake.get_parquet(first.tables["payment"]["key"])
    assert payments.schema["payment_amount"] == pl.Decimal(38, 9)
    with psycopg.connect(postgres_url) as con:
        numbers = {
            str(n)
            for row in con.execute(
                "SELECT company_ac_number, counterparty_ac_number FROM payment"
            ).fetchall()
            for n in row
        }
    assert numbers
    for path in (tmp_path / "lake").rglob("*.parquet"):
        frame = pl.read_parquet(path)
        for column in frame.columns:
            values = set(frame[column].cast(pl.String).drop_nulls().to_list())
            assert not values & numbers, (path.name, column)


def test_a_role_without_select_on_a_table_is_told_which_grant_fixes_it(
    postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=20, seed=2)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS reader")
        admin.execute("CREATE ROLE reader LOGIN PASSWORD 'reader'")
        admin.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
        admin.execute("REVOKE SELECT ON payment FROM reader")
    url = postgres_url.replace("://postgres@", "://reader:reader@", 1)
    if url == postgres_url:
        pytest.skip("needs the suite's own cluster (its superuser is postgres)")
    lake = open_lake(tmp_path / "lake")
    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.ensure_schema()
        with pytest.raises(ConfigError) as refused:
            extract(url, lake, warehouse)
        assert str(refused.value) == (
            "the role reader may not read the totesys table 'payment': "
            'GRANT SELECT ON "payment" TO reader (or ON ALL TABLES IN SCHEMA)'
        )
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("GRANT SELECT ON payment TO reader")
        # No pg_read_all_stats needed: a role that cannot see other sessions extracts all.
        assert extract(url, lake, warehouse).tables["payment"]["rows"] > 0


# -- row versions whatever last_updated says ---------------------------------------------------

_COPY_ORDERS = """
INSERT INTO sales_order (created_at, last_updated, design_id, staff_id, counterparty_id,
    units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date,
    agreed_delivery_location_id)
SELECT created_at, {stamp}, design_id, staff_id, counterparty_id, units_sold, unit_price,
    currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id
FROM sales_order ORDER BY sales_order_id LIMIT %(n)s
"""
"""``n`` new sales orders like the first ones, stamped with ``{stamp}`` (SQL)."""


def assert_lake_holds_the_source(source: str, lake_dir: Path) -> None:
    for table in TABLES:
        missing = source_versions(source, table) - lake_versions(lake_dir, table)
        assert not missing, (table, len(missing), sorted(missing)[:3])


@contextmanager
def extracted_once(url: str, tmp_path: Path, *, sales_orders: int, seed: int) -> Iterator[Any]:
    """A filled source extracted once into ``tmp_path/lake``: yields the ledger."""
    create_source(url)
    fill(url, sales_orders=sales_orders, seed=seed)
    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.ensure_schema()
        extract(url, open_lake(tmp_path / "lake"), warehouse)
        yield warehouse


def test_past_dated_inserts_and_updates_are_extracted(postgres_url: str, tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    with extracted_once(postgres_url, tmp_path, sales_orders=200, seed=5) as warehouse:
        with psycopg.connect(postgres_url, autocommit=True) as con:
            # A restore in steps with the original timestamps, a backfill, a fix that
            # keeps last_updated: none of them moves it past the previous extract.
            con.execute(_COPY_ORDERS.format(stamp="'2019-03-01 10:00:00'"), {"n": 50})
            con.execute(
                "UPDATE payment SET paid = NOT paid, last_updated = '2019-03-02' "
                "WHERE payment_id <= 10"
            )
            con.execute(
                "UPDATE design SET design_name = design_name || ' (fixed)' WHERE design_id <= 3"
            )
        again = extract(postgres_url, open_lake(lake_dir), warehouse)
        assert again.tables["sales_order"]["rows"] == 50
        assert again.tables["payment"]["rows"] == 10
        assert again.tables["design"]["rows"] == 3  # updated, last_updated unchanged
        assert_lake_holds_the_source(postgres_url, lake_dir)
        assert extract(postgres_url, open_lake(lake_dir), warehouse).rows == 0
    names = open_lake(lake_dir).get_parquet(again.tables["design"]["key"])["design_name"]
    assert all(name.endswith(" (fixed)") for name in names)


def test_a_writer_in_another_time_zone_and_a_sync_host_in_another_are_both_seen(
    postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=100, seed=6)
    lake_dir, location = tmp_path / "lake", str(tmp_path / "w.duckdb")
    args = [sys.executable, "-m", "brewline", "sync", postgres_url, "--lake", str(lake_dir)]
    tokyo = {**os.environ, "TZ": "Asia/Tokyo", "PGTZ": "Asia/Tokyo"}
    done = subprocess.run(
        [*args, "-w", location], env=tokyo, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'America/New_York'")  # now() is five hours "behind" UTC
        con.execute(_COPY_ORDERS.format(stamp="now()"), {"n": 7})
    with psycopg.connect(postgres_url, autocommit=True) as con:  # the server's zone
        con.execute(_COPY_ORDERS.format(stamp="now()"), {"n": 5})
    with open_warehouse(location) as warehouse:
        after = extract(postgres_url, open_lake(lake_dir), warehouse)
        assert after.tables["sales_order"]["rows"] == 12
        assert_lake_holds_the_source(postgres_url, lake_dir)
        stored = warehouse.get_cursor(SOURCE, "sales_order")
    assert stored is not None
    covered = watermark(stored)
    assert covered is not None  # the source's UTC clock, not Tokyo's or New York's
    assert abs(covered - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=1)


def test_a_writer_stamping_its_own_slow_clock_while_syncs_run_loses_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=100, seed=8)
    lake_dir = tmp_path / "lake"
    stop = threading.Event()
    written = 0

    def slow_writer() -> None:  # its own clock, 5 s behind the database's
        nonlocal written
        with psycopg.connect(postgres_url, autocommit=True) as con:
            while not stop.is_set():
                stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=5)
                con.execute(_COPY_ORDERS.format(stamp="%(stamp)s"), {"n": 1, "stamp": stamp})
                written += 1
                time.sleep(0.01)

    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.ensure_schema()
        thread = threading.Thread(target=slow_writer)
        thread.start()
        try:
            for _ in range(6):
                extract(postgres_url, open_lake(lake_dir), warehouse)
                time.sleep(0.3)
        finally:
            stop.set()
            thread.join()
        extract(postgres_url, open_lake(lake_dir), warehouse)
    assert written > 50
    assert_lake_holds_the_source(postgres_url, lake_dir)


def test_a_prepared_transaction_and_a_savepoint_committed_after_extracts_are_extracted(
    postgres_url: str, tmp_path: Path
) -> None:
    lake_dir = tmp_path / "lake"
    with extracted_once(postgres_url, tmp_path, sales_orders=100, seed=9) as warehouse:
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute("BEGIN")
            con.execute(_COPY_ORDERS.format(stamp="now()"), {"n": 2})
            con.execute("PREPARE TRANSACTION 'brewline-test'")  # no backend holds it now
        held = psycopg.connect(postgres_url)  # a transaction writing in a savepoint
        held.execute("SELECT 1")
        held.execute("SAVEPOINT inner_write")
        held.execute(_COPY_ORDERS.format(stamp="now()"), {"n": 3})
        held.execute("RELEASE SAVEPOINT inner_write")
        try:
            for other in range(2):  # extracts run while both are open: only others' rows
                assert extract(postgres_url, open_lake(lake_dir), warehouse).rows == other
                with psycopg.connect(postgres_url, autocommit=True) as con:
                    con.execute(_COPY_ORDERS.format(stamp="now()"), {"n": 1})
        finally:
            held.commit()
            held.close()
            with psycopg.connect(postgres_url, autocommit=True) as con:
                con.execute("COMMIT PREPARED 'brewline-test'")
        extract(postgres_url, open_lake(lake_dir), warehouse)
    assert_lake_holds_the_source(postgres_url, lake_dir)


def test_a_timestamp_cursor_of_before_is_read_whole_once(postgres_url: str, tmp_path: Path) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=50, seed=10)
    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.ensure_schema()
        for table in TABLES:  # the ledger of an earlier Brewline, its watermarks at "now"
            warehouse.set_cursor(SOURCE, table, "2999-01-01T00:00:00")
        first = extract(postgres_url, open_lake(tmp_path / "lake"), warehouse)
        assert first.tables["sales_order"]["rows"] == 50
        assert extract(postgres_url, open_lake(tmp_path / "lake"), warehouse).rows == 0


def test_columns_of_every_type_reach_the_lake_exactly(postgres_url: str, tmp_path: Path) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=20, seed=7)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(
            "ALTER TABLE design ADD COLUMN stamped timestamptz, ADD COLUMN fine timestamp(6), "
            "ADD COLUMN at time(3), ADD COLUMN weight numeric, ADD COLUMN ratio real, "
            "ADD COLUMN small smallint, ADD COLUMN big bigint, ADD COLUMN day date, "
            "ADD COLUMN code char(4), ADD COLUMN note varchar(20), ADD COLUMN meta jsonb, "
            "ADD COLUMN flag boolean"
        )
        con.execute(
            "UPDATE design SET stamped = '2024-03-01 12:34:56.7891+02', "
            "fine = '1969-07-20 20:17:40.0004', at = '12:34:56.789', "
            "weight = 12345678901234567890.123456789, ratio = 1.5, small = -32768, "
            "big = 9223372036854775807, day = '1999-12-31', code = 'ab', note = 'x', "
            """meta = '{"a": [1, "x"]}', flag = false WHERE design_id = 1"""
        )
        con.execute(r"UPDATE design SET note = '\N', flag = true WHERE design_id = 3")
        con.execute("UPDATE design SET note = '' WHERE design_id = 4")
    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        warehouse.ensure_schema()
        done = extract(postgres_url, open_lake(tmp_path / "lake"), warehouse)
    designs = open_lake(tmp_path / "lake").get_parquet(done.tables["design"]["key"])
    added = ["stamped", "fine", "at", "weight", "ratio", "small", "big", "day", "code"]
    added += ["note", "meta", "flag"]
    rows = {row[0]: row[1:] for row in designs.select("design_id", *added).iter_rows()}
    assert rows[1] == (
        dt.datetime(2024, 3, 1, 10, 34, 56, 789000),  # UTC, to the millisecond
        dt.datetime(1969, 7, 20, 20, 17, 40),
        "12:34:56.789",  # a type the lake has no column type for: its text
        Decimal("12345678901234567890.123456789"),
        "1.5",
        -32768,
        9223372036854775807,
        dt.date(1999, 12, 31),
        "ab  ",
        "x",
        '{"a": [1, "x"]}',
        False,
    )
    assert rows[2] == (None,) * len(added)
    assert rows[3][added.index("note")] == "\\N"  # text, not a NULL marker
    assert rows[4][added.index("note")] == ""
    ids = designs["design_id"].to_list()
    assert ids == sorted(ids)  # by id, though updated rows moved in the source's heap
    assert designs.schema["weight"] == pl.Decimal(38, 9)
    assert designs.schema["stamped"] == designs.schema["created_at"] == pl.Datetime("ms")
    assert designs.schema["small"] == designs.schema["design_id"] == pl.Int64
