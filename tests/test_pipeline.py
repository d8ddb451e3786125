"""End-to-end pipeline behaviour on a real embedded warehouse and real files."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from tests.conftest import PII_KEY, copy_exports

from brewline.config import Settings
from brewline.errors import ConfigError
from brewline.pipeline import run
from brewline.report import RunReport
from brewline.sources import Delivery
from brewline.sources.folder import FolderSource

FACT_TABLES = ("fact_sale", "fact_sale_line", "etl_file_branch_day", "etl_rejected_row")


def figures(warehouse: str) -> dict[str, object]:
    with duckdb.connect(warehouse, read_only=True) as con:
        sales, total, items = con.execute(
            "SELECT count(*), sum(total), sum(items) FROM fact_sale"
        ).fetchone()  # type: ignore[misc]
        units, amount = con.execute(
            "SELECT sum(quantity), sum(line_amount) FROM fact_sale_line"
        ).fetchone()  # type: ignore[misc]
    return {"sales": sales, "total": total, "items": items, "units": units, "amount": amount}


def snapshot(warehouse: str) -> dict[str, list[tuple[object, ...]]]:
    """Every warehouse table's rows, sorted, without ledger timings and run ids."""
    volatile = {"recorded_at", "seconds", "run_id", "started_at", "finished_at", "applied_at"}
    out = {}
    with duckdb.connect(warehouse, read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
            if r[0] != "etl_run"
        ]
        for table in tables:
            columns = [
                c[0] for c in con.execute(f"DESCRIBE {table}").fetchall() if c[0] not in volatile
            ]
            out[table] = sorted(
                con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr
            )
    return out


def test_real_exports_load_with_the_published_figures(
    shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(landing=shared_exports)
    report = run(settings)
    assert report.exit_code == 0
    assert report.count("loaded") == 33
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (10163, 10163, 0)
    with duckdb.connect(settings.warehouse, read_only=True) as con:
        per_folder = con.execute(
            "SELECT split_part(f.source_name, '/', 1) AS folder, count(DISTINCT f.file_id), "
            "count(*), sum(s.items), sum(s.total) FROM fact_sale s "
            "JOIN etl_file f USING (file_id) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        day = con.execute(
            "SELECT DISTINCT d.date FROM fact_sale s JOIN dim_date d USING (date_key) "
            "JOIN etl_file f USING (file_id) WHERE f.source_name LIKE 'coffeetl%'"
        ).fetchall()
        chocolates = con.execute(
            "SELECT product_name, size, min(unit_price) FROM dim_product "
            "JOIN fact_sale_line USING (product_key) WHERE lower(product_name) = 'hot chocolate' "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    assert per_folder == [
        ("brews-brothers", 3, 577, 1624, Decimal("3894.85")),
        ("coffeetl-2024-12-18", 30, 9586, 26483, Decimal("59863.90")),
    ]
    assert [str(d[0]) for d in day] == ["2024-12-18"]
    # Hot chocolate and Hot Chocolate are different items with different prices.
    assert chocolates == [
        ("Hot Chocolate", "Large", Decimal("1.70")),
        ("Hot Chocolate", "Regular", Decimal("1.40")),
        ("Hot chocolate", "Large", Decimal("2.90")),
        ("Hot chocolate", "Regular", Decimal("2.20")),
    ]
    assert not settings.quarantine_dir.exists()  # nothing rejected, nothing quarantined


def test_every_file_keeps_rows_read_equal_loaded_plus_rejected(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    good = (landing / "leeds_09-05-2023_09-00-00_done.csv").read_bytes().splitlines(keepends=True)
    good = [line.replace(b"Leeds", b"Leeds Central") for line in good]  # another branch-day
    broken = [
        *good[:10],
        b"09/05/2023 10:00,Leeds,X Y,Large Latte - 2.45,9.99,CASH,\n",
        b"not a row at all\n",
        *good[10:],
    ]
    (landing / "leeds_broken_09-05-2023.csv").write_bytes(b"".join(broken))
    settings = make_settings()
    report = run(settings)
    assert report.exit_code == 0  # rows were quarantined, no file rejected
    with duckdb.connect(settings.warehouse, read_only=True) as con:
        ledger = con.execute(
            "SELECT f.source_name, f.rows_read, f.rows_loaded, f.rows_rejected, "
            "(SELECT count(*) FROM fact_sale s WHERE s.file_id = f.file_id), "
            "(SELECT count(*) FROM etl_rejected_row r WHERE r.file_id = f.file_id) "
            "FROM etl_file f ORDER BY 1"
        ).fetchall()
        reasons = con.execute("SELECT line_no, reason FROM etl_rejected_row ORDER BY 1").fetchall()
    assert ledger == [
        ("leeds_09-05-2023_09-00-00_done.csv", 50, 50, 0, 50, 0),
        ("leeds_broken_09-05-2023.csv", 52, 50, 2, 50, 2),
    ]
    assert reasons == [(11, "total_mismatch"), (12, "too_few_fields")]
    quarantined = list(settings.quarantine_dir.iterdir())
    assert len(quarantined) == 1
    assert quarantined[0].read_text().splitlines()[1:] == [
        '11,total_mismatch,"09/05/2023 10:00,Leeds,X Y,Large Latte - 2.45,9.99,CASH,"',
        "12,too_few_fields,not a row at all",
    ]


def test_second_run_changes_nothing(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    copy_exports(shared_exports, landing)
    settings = make_settings(pii_key=PII_KEY)
    run(settings)
    before = snapshot(settings.warehouse)
    again = run(settings)
    assert again.exit_code == 0
    assert again.count("skipped") == 33
    assert again.rows_loaded == 0
    assert snapshot(settings.warehouse) == before


def test_corrected_file_replaces_its_previous_version(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    (path,) = copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    settings = make_settings()
    run(settings)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-5]))  # the till re-exported without five voided sales
    report = run(settings)
    assert [(f.state, f.replaced) for f in report.files] == [
        ("loaded", ("leeds_09-05-2023_09-00-00_done.csv",))
    ]
    assert figures(settings.warehouse)["sales"] == 45
    with duckdb.connect(settings.warehouse, read_only=True) as con:
        states = con.execute("SELECT state, rows_loaded FROM etl_file ORDER BY state").fetchall()
    assert states == [("loaded", 45), ("replaced", 50)]


def test_second_delivery_of_a_branch_day_replaces_the_first(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    (first,) = copy_exports(shared_exports, landing, ["london_camden_18-12-2024_09-00-00 (1).csv"])
    settings = make_settings()
    run(settings)
    lines = first.read_bytes().splitlines(keepends=True)
    later = landing / "london_camden_18-12-2024_09-00-00 (2).csv"
    later.write_bytes(b"".join(lines[:100]))
    os.utime(later, (time.time() + 5, time.time() + 5))
    report = run(settings)
    assert [(f.source_name, f.state, f.replaced) for f in report.files if f.state != "skipped"] == [
        (later.name, "loaded", (first.name,))
    ]
    assert figures(settings.warehouse)["sales"] == 100
    with duckdb.connect(settings.warehouse, read_only=True) as con:
        ledger = con.execute(
            "SELECT source_name, state, replaced_by IS NOT NULL FROM etl_file ORDER BY 1"
        ).fetchall()
    assert ledger == [(first.name, "replaced", True), (later.name, "loaded", False)]


def test_redelivery_policy_reject_keeps_the_first(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    (first,) = copy_exports(shared_exports, landing, ["london_camden_18-12-2024_09-00-00 (1).csv"])
    settings = make_settings(redelivery="reject")
    run(settings)
    later = landing / "london_camden_18-12-2024_09-00-00 (2).csv"
    later.write_bytes(b"".join(first.read_bytes().splitlines(keepends=True)[:100]))
    report = run(settings)
    rejected = [f for f in report.files if f.state == "rejected"]
    assert [(f.source_name, f.reason) for f in rejected] == [(later.name, "branch_day_owned")]
    assert first.name in (rejected[0].message or "")
    assert report.exit_code == 1
    assert figures(settings.warehouse)["sales"] == 320


def test_same_bytes_under_another_name_is_skipped(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    (first,) = copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    settings = make_settings()
    run(settings)
    (landing / "leeds (1).csv").write_bytes(first.read_bytes())
    report = run(settings)
    assert [(f.source_name, f.state, f.reason) for f in report.files] == [
        ("leeds_09-05-2023_09-00-00_done.csv", "skipped", "unchanged"),
        ("leeds (1).csv", "skipped", "duplicate_content"),
    ] or [(f.source_name, f.state, f.reason) for f in report.files] == [
        ("leeds (1).csv", "skipped", "duplicate_content"),
        ("leeds_09-05-2023_09-00-00_done.csv", "skipped", "unchanged"),
    ]
    assert figures(settings.warehouse)["sales"] == 50


def test_unreadable_file_is_rejected_whole_and_others_load(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    (landing / "notes.csv").write_text("this,is\nnot,a,till,export\n")
    settings = make_settings()
    report = run(settings)
    by_name = {f.source_name: f for f in report.files}
    assert by_name["notes.csv"].state == "rejected"
    assert by_name["notes.csv"].reason == "unrecognised_layout"
    assert by_name["notes.csv"].rows_read == by_name["notes.csv"].rows_rejected == 2
    assert by_name["leeds_09-05-2023_09-00-00_done.csv"].state == "loaded"
    assert report.exit_code == 1
    # An unchanged rejected file is not retried (and not re-reported as a failure).
    assert run(settings).exit_code == 0


_OPEN_WHEN_FREE = """
import sys, time, duckdb
deadline = time.monotonic() + 20
while True:
    try:
        with duckdb.connect(sys.argv[1], read_only=True) as con:
            print(con.execute("SELECT count(*) FROM etl_file").fetchone()[0])
        break
    except duckdb.IOException:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
"""


def test_a_run_lets_go_of_its_duckdb_file_while_it_waits_for_files(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    """A run keeps the file across back-to-back commits, but not while it waits (here
    for a slow read): then dashboards and reports can open it."""
    copy_exports(shared_exports, landing)
    settings = make_settings(batch_files=1)
    reading, go_on = threading.Event(), threading.Event()

    class SlowFourthFile(FolderSource):
        def read(self, delivery: Delivery) -> bytes:
            if delivery.name == self.fourth:
                reading.set()
                go_on.wait(60)
            return super().read(delivery)

    source = SlowFourthFile([landing], quarantine=settings.quarantine)
    source.fourth = source.deliveries()[3].name  # type: ignore[attr-defined]
    reports: list[RunReport] = []
    runner = threading.Thread(target=lambda: reports.append(run(settings, source=source)))
    runner.start()
    try:
        assert reading.wait(60)
        other = subprocess.run(
            [sys.executable, "-c", _OPEN_WHEN_FREE, str(settings.warehouse)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        go_on.set()
        runner.join(120)
    assert other.returncode == 0, other.stderr[-500:]
    assert int(other.stdout) <= 3  # the files committed before the wait, if any
    assert reports[0].exit_code == 0
    assert reports[0].count("loaded") == 33


def test_pii_key_cannot_change_under_a_warehouse(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    run(make_settings(pii_key=PII_KEY))
    with pytest.raises(ConfigError, match="PII key differs"):
        run(make_settings(pii_key=PII_KEY + "-other"))
    with pytest.raises(ConfigError, match="no PII key is set"):
        run(make_settings())


def test_returning_customers_are_counted_with_a_key_only(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    card = "5494173772652516"
    rows = [
        f"0{day}/05/2023 09:0{day},Leeds,Ann Example,Large Latte - 2.45,2.45,CARD,{card}\n"
        for day in (1, 2, 3)
    ]
    (landing / "leeds.csv").write_text("".join(rows))
    with_key = make_settings(pii_key=PII_KEY)
    run(with_key)
    with duckdb.connect(with_key.warehouse, read_only=True) as con:
        customers = con.execute(
            "SELECT count(DISTINCT customer_key), count(customer_key) FROM fact_sale"
        ).fetchone()
        first_seen = con.execute("SELECT first_seen_at FROM dim_customer").fetchall()
    assert customers == (1, 3)
    assert [str(r[0]) for r in first_seen] == ["2023-05-01 09:01:00"]
    without = make_settings(warehouse=str(landing.parent / "nokey.duckdb"))
    run(without)
    with duckdb.connect(without.warehouse, read_only=True) as con:
        assert con.execute("SELECT count(customer_key) FROM fact_sale").fetchone() == (0,)


def test_no_name_or_card_reaches_the_warehouse_or_the_logs(
    landing: Path,
    shared_exports: Path,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import csv

    copy_exports(shared_exports, landing)
    secrets: set[str] = set()
    for path in landing.glob("*.csv"):
        with path.open(newline="") as handle:
            for row in csv.reader(handle):
                secrets.add(row[2])  # full names: single words collide with months and towns
                if row[6]:
                    secrets.add(row[6])
    broken = landing / "broken.csv"
    broken.write_text(
        "18/12/2024 09:00,Leeds,Zebedee Quartermain,Large Latte - 9.99,1.0,CARD,"
        "4111111111111111\nZebedee Quartermain,4111111111111111\n"
    )
    secrets |= {"Zebedee", "Quartermain", "4111111111111111"}  # unique words: must not leak
    settings = make_settings(pii_key=PII_KEY)
    caplog.set_level(logging.DEBUG)
    report = run(settings)
    assert report.rows_loaded == 10163
    texts = [caplog.text, repr(report.to_dict())]
    with duckdb.connect(settings.warehouse, read_only=True) as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR'"
        ).fetchall()
        for table, column in columns:
            texts += [
                str(v[0]) for v in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()
            ]
        bigints = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'BIGINT'"
        ).fetchall()
        for table, column in bigints:
            texts += [
                str(v[0]) for v in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()
            ]
    blob = "\n".join(texts)
    leaked = sorted(s for s in secrets if s and s in blob)
    assert leaked == []
