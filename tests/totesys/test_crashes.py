"""A sync killed, or its source stopped, at a known point, against real PostgreSQL: the
next sync takes every committed row version exactly once and no cursor runs ahead.

Each fault is placed deterministically, not by a sleep: another session holds a lock
that a step of the sync must wait for (a source table the extract reads last, a star
table the load writes last), the test waits until PostgreSQL shows the sync waiting
on it, and only then kills the sync or stops the server.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import psycopg
import pytest
from tests.conftest import new_database
from tests.pgcluster import PostgresServer
from tests.totesys.test_extract import (
    _COPY_ORDERS,
    assert_lake_holds_the_source,
    extracted_once,
    source_versions,
)
from tests.totesys.test_sync import (
    brewline,
    expected_current_orders,
    loaded_current_orders,
    source_rows,
    warehouse_rows,
)

from brewline.errors import ConfigError
from brewline.load import open_warehouse
from brewline.totesys.cursor import parse
from brewline.totesys.extract import SOURCE, TABLES
from brewline.totesys.generate import create_source, fill
from brewline.totesys.lake import open_lake
from brewline.totesys.model import STAR_TABLES
from brewline.totesys.sync import sync

pytestmark = pytest.mark.postgres

_DEADLINE = 60.0
"""Seconds to wait for a sync to reach the lock (a slow machine's start-up included)."""


# -- helpers -----------------------------------------------------------------------------


def wait_until_waiting_on(url: str, table: str, victim: subprocess.Popen[str]) -> None:
    """Return once a session of ``url``'s database waits for a lock on ``table``."""
    deadline = time.monotonic() + _DEADLINE
    with psycopg.connect(url, autocommit=True) as con:
        while time.monotonic() < deadline:
            waiting = con.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE NOT l.granted AND c.relname = %s AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                (table,),
            ).fetchone()
            if waiting and waiting[0]:
                return
            if victim.poll() is not None:
                raise AssertionError(victim.communicate())
            time.sleep(0.05)
    raise AssertionError(f"no session waited for {table} within {_DEADLINE}s")


def synced(source: str, lake_dir: Path, location: str) -> None:
    """A whole sync, in this process (only the ones to be killed need processes)."""
    with open_warehouse(location) as warehouse:
        sync(source, lake_dir, warehouse)


def one_line(stderr: str) -> str:
    """``stderr``, which must be one line and no traceback."""
    assert len(stderr.strip().splitlines()) == 1, stderr
    return stderr.strip()


def synced_then_written(
    source: str, lake_dir: Path, location: str, *, seed: int
) -> tuple[tuple[str, ...], dict[str, str | None]]:
    """A source filled, synced once, then written to (rows only the next sync can read):
    the ``brewline`` arguments of that next sync, and the cursors it starts from."""
    create_source(source)
    fill(source, sales_orders=200, seed=seed)
    synced(source, lake_dir, location)
    before = cursors(location)
    write_more(source, 30)
    return ("sync", source, "--lake", str(lake_dir), "-w", location), before


@contextmanager
def sync_held_at(
    url: str, table: str, mode: str, args: tuple[str, ...], cwd: Path
) -> Iterator[subprocess.Popen[str]]:
    """``brewline ARGS`` started while another session holds ``table`` of ``url`` in
    ``mode``: yields the process once it waits for that lock, which is let go on exit."""
    lock = psycopg.connect(url)
    try:
        lock.execute(f'LOCK TABLE "{table}" IN {mode} MODE')
        victim = brewline(*args, cwd=cwd)
        wait_until_waiting_on(url, table, victim)
        yield victim
    finally:
        lock.close()


CHANGED = ("sales_order", "payment", "design")
"""The tables :func:`write_more` writes to."""


def write_more(url: str, n: int) -> None:
    """``n`` new sales orders and payments, updates of old ones (one that leaves
    last_updated as it was), all committed."""
    with psycopg.connect(url, autocommit=True) as con:
        for table in ("sales_order", "payment"):
            columns = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "AND column_name <> %s ORDER BY ordinal_position",
                    (table, f"{table}_id"),
                ).fetchall()
            ]
            listed = ", ".join(columns)
            con.execute(
                f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {table} "
                f"ORDER BY {table}_id LIMIT %s",
                (n,),
            )
        con.execute(
            "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = "
            "last_updated + interval '1 second' WHERE sales_order_id % 7 = 0"
        )
        con.execute("UPDATE payment SET paid = true, last_updated = now() WHERE NOT paid")
        con.execute("UPDATE design SET design_name = design_name || '+' WHERE design_id <= 2")


def raw_rows(lake_dir: Path, table: str) -> pl.DataFrame:
    """Every row the manifests name for ``table`` (the raw zone as the model reads it)."""
    lake = open_lake(lake_dir)
    frames = [
        lake.get_parquet(m["tables"][table]["key"])
        for m in lake.manifests()
        if m["tables"][table]["key"]
    ]
    return pl.concat(frames, how="diagonal_relaxed")


def cursors(location: str) -> dict[str, str | None]:
    with open_warehouse(location) as warehouse:
        return {table: warehouse.get_cursor(SOURCE, table) for table in TABLES}


def assert_synced_exactly_once(source: str, lake_dir: Path, location: str) -> None:
    """Every row version the source holds is in the raw zone once (no writer ran while
    the syncs read, so no version can have been read twice), the cursors are the last
    manifest's, and the warehouse holds the source's rows, newest versions and counts."""
    lake = open_lake(lake_dir)
    last = lake.manifests()[-1]["cursor"]
    for table, stored in cursors(location).items():
        cursor = parse(stored)
        assert cursor is not None
        assert (cursor.next_xid, list(cursor.open_xids)) == (
            last["next_xid"],
            last["open_xids"],
        ), table
    for table in TABLES:
        rows = raw_rows(lake_dir, table)
        doubled = rows.filter(rows.is_duplicated())
        assert doubled.is_empty(), (table, doubled.head(3))
        held = {
            (int(i), ts.isoformat(timespec="milliseconds"))
            for i, ts in rows.select(f"{table}_id", "last_updated").iter_rows()
        }
        missing = source_versions(source, table) - held
        assert not missing, (table, len(missing), sorted(missing)[:3])
    assert loaded_current_orders(location) == expected_current_orders(source)
    for star, table in (("dim_design", "design"), ("dim_staff", "staff")):
        loaded = warehouse_rows(location, f"SELECT count(*) FROM totesys_{star}")
        assert loaded == source_rows(source, f"SELECT count(*) FROM {table}"), star
    newest_payments = (
        "SELECT payment_id, paid FROM totesys_fact_payment f WHERE payment_record_id = "
        "(SELECT max(payment_record_id) FROM totesys_fact_payment g "
        "WHERE g.payment_id = f.payment_id)"
    )
    assert sorted(warehouse_rows(location, newest_payments)) == sorted(
        source_rows(source, "SELECT payment_id, paid FROM payment")
    )


# -- SIGKILL -----------------------------------------------------------------------------


def test_a_sync_killed_mid_extract_and_mid_load_loses_and_doubles_nothing(
    postgres_server: PostgresServer | None, tmp_path: Path
) -> None:
    source, location = new_database(postgres_server), new_database(postgres_server)
    lake_dir = tmp_path / "lake"
    args, before = synced_then_written(source, lake_dir, location, seed=81)

    # Mid-extract: every table but the one locked is read and written to the lake.
    with sync_held_at(source, "currency", "ACCESS EXCLUSIVE", args, tmp_path) as victim:
        deadline = time.monotonic() + _DEADLINE
        while len(list(lake_dir.glob("raw/*/*/*.parquet"))) < len(TABLES) + len(CHANGED):
            assert time.monotonic() < deadline, "the other tables were not written"
            time.sleep(0.05)
        victim.kill()
        victim.communicate()
    assert len(open_lake(lake_dir).manifests()) == 1
    assert cursors(location) == before  # the killed extract moved no cursor

    # Mid-load: every star table but the last is replaced in the open transaction.
    write_more(source, 30)
    with sync_held_at(location, f"totesys_{STAR_TABLES[-1]}", "SHARE", args, tmp_path) as victim:
        victim.kill()
        victim.communicate()
    assert len(open_lake(lake_dir).manifests()) == 2  # the extract was done
    assert loaded_current_orders(location) != expected_current_orders(source)  # not loaded
    synced(source, lake_dir, location)  # nothing new to extract: it loads what was not
    assert loaded_current_orders(location) == expected_current_orders(source)

    write_more(source, 20)
    synced(source, lake_dir, location)
    assert_synced_exactly_once(source, lake_dir, location)


# -- the source going away -----------------------------------------------------------------


def throwaway_server() -> PostgresServer:
    """A new cluster (these tests stop it), or a skip where no server binaries are
    installed (a suite run against BREWLINE_TEST_POSTGRES_URL)."""
    try:
        return PostgresServer()
    except ConfigError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A cluster of this module's own, to stop and start (the suite's keeps running)."""
    server = throwaway_server()
    try:
        yield server
    finally:
        server.remove()


@pytest.mark.parametrize("restart", [False, True], ids=["stays-down", "restarts"])
def test_the_source_stopping_mid_extract_fails_in_one_line_and_half_commits_nothing(
    own_server: PostgresServer, restart: bool, tmp_path: Path
) -> None:
    source, location = own_server.database(), str(tmp_path / "w.duckdb")
    lake_dir = tmp_path / "lake"
    args, before = synced_then_written(source, lake_dir, location, seed=83)

    try:
        with sync_held_at(source, "currency", "ACCESS EXCLUSIVE", args, tmp_path) as victim:
            own_server.stop("fast" if restart else "immediate")
            if restart:
                own_server.start()
            _, err = victim.communicate(timeout=120)
    finally:
        if not restart:
            down = brewline(*args, cwd=tmp_path)  # a sync while it is down: refused too
            _, down_err = down.communicate(timeout=120)
            own_server.start()
    assert victim.returncode == 1, err  # documented: an error stopped the command
    assert one_line(err).startswith("brewline: error: the totesys source went away: "), err
    if not restart:
        assert down.returncode == 1, down_err
        assert one_line(down_err).startswith(
            "brewline: error: cannot connect to the totesys source: "
        ), down_err
    assert len(open_lake(lake_dir).manifests()) == 1
    assert cursors(location) == before

    write_more(source, 10)
    synced(source, lake_dir, location)
    assert_synced_exactly_once(source, lake_dir, location)


# -- a hot standby -------------------------------------------------------------------------


def test_a_hot_standby_is_refused_in_one_line(own_server: PostgresServer, tmp_path: Path) -> None:
    source = own_server.database()
    create_source(source)
    fill(source, sales_orders=20, seed=85)
    root = Path(tempfile.mkdtemp(prefix="brewline-standby-"))
    if os.geteuid() == 0:  # the server's tools run as postgres: let it write there
        subprocess.run(["chown", "postgres:postgres", str(root)], check=True)
    own_server.tool(
        "pg_basebackup", "-D", str(root / "data"), "-R", "-X", "stream", "-c", "fast",
        "-h", "127.0.0.1", "-p", str(own_server.port), "-U", "postgres",
    )  # fmt: skip
    standby = PostgresServer(root=root)  # starts the copy: a standby of own_server
    try:
        url = source.replace(f":{own_server.port}/", f":{standby.port}/")
        refused = brewline(
            "sync",
            url,
            "--lake",
            str(tmp_path / "lake"),
            "-w",
            str(tmp_path / "w.duckdb"),
            cwd=tmp_path,
        )
        _, err = refused.communicate(timeout=120)
    finally:
        standby.remove()
    assert refused.returncode == 1, err
    assert err.strip() == (
        "brewline: error: the totesys source is a hot standby, which cannot tell which of "
        "the primary's transactions are still open: extract from the primary"
    )
    assert not list((tmp_path / "lake").glob("raw/**/*.parquet"))


# -- more than a million ids open ----------------------------------------------------------


def test_a_transaction_open_across_a_million_ids_is_read_once_it_commits(
    tmp_path: Path,
) -> None:
    from brewline.totesys.extract import _MOST_ASKED, extract

    server = throwaway_server()  # its next transaction id is moved: a cluster of its own
    try:
        source, lake_dir = server.database(), tmp_path / "lake"
        with extracted_once(source, tmp_path, sales_orders=50, seed=87) as warehouse:
            with psycopg.connect(source, autocommit=True) as con:
                con.execute("BEGIN")
                con.execute(_COPY_ORDERS.format(stamp="now()"), {"n": 3})
                con.execute("PREPARE TRANSACTION 'held-across-the-jump'")  # survives a restart
            server.stop("fast")
            # A segment boundary of pg_xact (2^20 ids), as pg_resetwal's manual asks.
            server.tool("pg_resetwal", "-x", str(2 * 2**20), "-D", str(server.data))
            server.start()
            with psycopg.connect(source, autocommit=True) as con:
                con.execute(_COPY_ORDERS.format(stamp="now()"), {"n": 2})
                held = con.execute(
                    "SELECT pg_current_xact_id()::text::bigint - transaction::text::bigint "
                    "FROM pg_prepared_xacts"
                ).fetchone()
            assert held is not None
            assert held[0] > _MOST_ASKED  # too many ids between to ask about each
            assert (
                extract(source, open_lake(lake_dir), warehouse).tables["sales_order"]["rows"] == 2
            )
            with psycopg.connect(source, autocommit=True) as con:
                con.execute("COMMIT PREPARED 'held-across-the-jump'")
            again = extract(source, open_lake(lake_dir), warehouse)
            assert again.tables["sales_order"]["rows"] >= 3
        assert_lake_holds_the_source(source, lake_dir)
    finally:
        server.remove()
