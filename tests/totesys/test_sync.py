"""Whole syncs into both warehouses, compared with an independent recomputation from
the source tables (plain SQL here, not the pipeline's code)."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import boto3
import psycopg
import pytest
from tests.motoserver import MotoServer
from tests.pgcluster import PostgresServer

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
    generations = list((lake / "star" / "fact_sales_order").glob("generation=*"))
    assert 1 <= len(generations) <= 2  # older star generations are pruned

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


def test_a_change_that_did_not_move_last_updated_reaches_the_warehouse_incrementally(
    postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=200, seed=11)
    location, lake = str(tmp_path / "w.duckdb"), tmp_path / "lake"
    designs = "SELECT design_id, design_name FROM design"
    loaded = "SELECT design_id, design_name FROM totesys_dim_design"
    with open_warehouse(location) as warehouse:
        sync(postgres_url, lake, warehouse)
        changed = Writer(postgres_url, seed=12).silent_change(4)
        assert any(t == "design" for t, _ in changed)
        sync(postgres_url, lake, warehouse)  # an update writes a new row version: seen
        assert sorted(warehouse.query(loaded).iter_rows()) == sorted(
            source_rows(postgres_url, designs)
        )
        sync(postgres_url, lake, warehouse, full=True)  # and a full read changes nothing
        assert sorted(warehouse.query(loaded).iter_rows()) == sorted(
            source_rows(postgres_url, designs)
        )


def brewline(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "brewline", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def test_killed_and_concurrent_syncs_from_the_cli_end_equal_to_the_source(
    postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=3000, seed=21)
    location = str(tmp_path / "w.duckdb")
    args = ("sync", postgres_url, "--lake", str(tmp_path / "lake"), "-w", location)
    rng = random.Random(5)
    with Writer(postgres_url, seed=22):
        for _ in range(3):  # SIGKILL at a random point of a sync, while the source writes
            victim = brewline(*args, cwd=tmp_path)
            time.sleep(rng.uniform(0.3, 2.5))
            victim.kill()
            victim.communicate()
        pair = [brewline(*args, "--json", cwd=tmp_path) for _ in range(2)]  # two at once
        outputs = [p.communicate(timeout=300) for p in pair]
    assert [p.returncode for p in pair] == [0, 0], [err[-800:] for _, err in outputs]
    final = brewline(*args, "--json", cwd=tmp_path)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert json.loads(out)["star_rows"]["fact_sales_order"] >= 3000
    assert loaded_current_orders(location) == expected_current_orders(postgres_url)


def test_a_lake_on_s3_gives_the_same_warehouse(
    aws: MotoServer, s3_bucket: str, postgres_url: str, tmp_path: Path
) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=300, seed=31)
    location = str(tmp_path / "w.duckdb")
    with open_warehouse(location) as warehouse:
        report = sync(postgres_url, f"s3://{s3_bucket}/totesys/", warehouse)
    assert report.loaded
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert any(k.startswith("totesys/raw/_manifests/") for k in keys)
    assert "totesys/star/_current.json" in keys
    assert loaded_current_orders(location) == expected_current_orders(postgres_url)


def test_check_and_metrics_cover_the_source_freshness_per_table(
    postgres_url: str, tmp_path: Path
) -> None:
    from brewline.ops.checks import run_checks
    from brewline.ops.metrics import ledger_metrics
    from brewline.ops.settings import CheckSettings
    from brewline.totesys.extract import SOURCE

    create_source(postgres_url)
    fill(postgres_url, sales_orders=100, seed=41)
    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        sync(postgres_url, tmp_path / "lake", warehouse)
        today = dt.datetime.now(dt.UTC).date()
        fresh = run_checks(warehouse, CheckSettings(), today)
        tables = [r for r in fresh if r.name == "source_freshness"]
        assert len(tables) == 11
        assert {r.status for r in tables} == {"ok"}
        # Before today's cut-off hour (or for a due day ahead) a fresh sync is judged now,
        # not at a cut-off still to come.
        ahead = run_checks(warehouse, CheckSettings(), today + dt.timedelta(days=1))
        assert {r.status for r in ahead if r.name == "source_freshness"} == {"ok"}
        warehouse.set_cursor(SOURCE, "payment", "2020-01-01T00:00:00")  # a sync stuck for years
        stale = [r for r in run_checks(warehouse, CheckSettings(), today) if r.status == "fail"]
        assert [r.subject for r in stale if r.name == "source_freshness"] == ["totesys.payment"]
        names = {
            (m.name, tuple(sorted(s.labels.items())))
            for m in ledger_metrics(warehouse)
            for s in m.samples
        }
    assert (
        "brewline_source_watermark_timestamp",
        (("source", "totesys"), ("table", "payment")),
    ) in {(n.removesuffix("_seconds"), labels) for n, labels in names}


def test_the_source_restarting_mid_sync_fails_in_one_line_and_the_next_sync_catches_up(
    postgres_server: PostgresServer | None, tmp_path: Path
) -> None:
    if postgres_server is None:
        pytest.skip("restarts the suite's own cluster")
    source = postgres_server.database()
    create_source(source)
    fill(source, sales_orders=60_000, seed=51)
    location = str(tmp_path / "w.duckdb")
    args = ("sync", source, "--lake", str(tmp_path / "lake"), "-w", location)
    victim = brewline(*args, cwd=tmp_path)
    time.sleep(1.2)  # the extract is reading
    postgres_server.stop("immediate")
    postgres_server.start()
    _, err = victim.communicate(timeout=300)
    if victim.returncode != 0:  # it was cut off: one clear line, no traceback
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("brewline: error:")
    final = brewline(*args, cwd=tmp_path)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    assert loaded_current_orders(location) == expected_current_orders(source)


def test_bad_sync_inputs_are_one_clear_line(postgres_url: str, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "brewline", "sync", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )

    lake = ["--lake", str(tmp_path / "lake"), "-w", str(tmp_path / "w.duckdb")]
    unreachable = run("postgresql://nobody@127.0.0.1:9/x", *lake)
    empty = run(postgres_url, *lake)  # a database without the totesys tables
    no_lake = run(postgres_url)
    for done in (unreachable, empty):
        assert done.returncode == 1
        assert done.stderr.startswith("brewline: error:")
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert "has no table" in empty.stderr
    assert no_lake.returncode == 2
    assert "--lake" in no_lake.stderr


def test_each_sync_is_a_run_in_the_ledger_with_its_rows(postgres_url: str, tmp_path: Path) -> None:
    create_source(postgres_url)
    fill(postgres_url, sales_orders=100, seed=61)
    location = str(tmp_path / "w.duckdb")
    with open_warehouse(location) as warehouse:
        first = sync(postgres_url, tmp_path / "lake", warehouse)
        sync(postgres_url, tmp_path / "lake", warehouse)
    runs = warehouse_rows(
        location,
        "SELECT status, rows_read FROM etl_run WHERE run_id LIKE 'sync-%' ORDER BY started_at",
    )
    assert runs == [("succeeded", sum(first.rows_extracted.values())), ("succeeded", 0)]


def test_check_reconciles_each_table_of_the_source_with_the_lake_and_the_warehouse(
    postgres_url: str, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    from brewline.ops.checks import run_checks
    from brewline.ops.settings import CheckSettings

    create_source(postgres_url)
    fill(postgres_url, sales_orders=100, seed=71)
    lake = tmp_path / "lake"
    settings = CheckSettings(
        check_totesys_source=SecretStr(postgres_url), check_totesys_lake=str(lake)
    )

    def reconciled(warehouse: object) -> dict[str, str]:
        results = run_checks(warehouse, settings, dt.datetime.now(dt.UTC).date())  # type: ignore[arg-type]
        return {r.subject or "": r.status for r in results if r.name == "totesys_reconciliation"}

    with open_warehouse(str(tmp_path / "w.duckdb")) as warehouse:
        sync(postgres_url, lake, warehouse)
        assert set(reconciled(warehouse).values()) == {"ok"}
        assert len(reconciled(warehouse)) == 11
        with psycopg.connect(postgres_url, autocommit=True) as con:  # rows a sync has not read
            con.execute(  # a backfilled design, stamped long before the syncs
                "INSERT INTO design (created_at, last_updated, design_name, file_location, "
                "file_name) SELECT created_at, '2019-01-01', design_name, file_location, "
                "file_name FROM design WHERE design_id = 1"
            )
            con.execute(
                "DELETE FROM payment WHERE payment_id = (SELECT max(payment_id) FROM payment)"
            )
        failing = {t for t, status in reconciled(warehouse).items() if status == "fail"}
        assert failing == {"totesys.design", "totesys.payment"}
