"""The incremental extract against a real PostgreSQL that keeps writing: nothing is ever
skipped, not even a transaction that commits after an extract with early timestamps."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
import pytest

from brewline.load import open_warehouse
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


def test_a_source_that_hides_open_transactions_is_refused(
    postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS blind")
        admin.execute("CREATE ROLE blind LOGIN PASSWORD 'blind'")
        admin.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO blind")
    other = psycopg.connect(postgres_url, autocommit=True)  # a session blind cannot see into
    try:
        url = postgres_url.replace("://postgres@", "://blind:blind@", 1)
        if url == postgres_url:
            pytest.skip("needs the suite's own cluster (its superuser is postgres)")
        with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
            warehouse.ensure_schema()
            with pytest.raises(Exception, match="pg_read_all_stats"):
                extract(url, open_lake(tmp_path / "lake"), warehouse)
    finally:
        other.close()


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
