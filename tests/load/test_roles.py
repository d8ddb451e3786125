"""Each warehouse role on both engines through the same tests: ledger, reader, loader, schema."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import psycopg
import pytest
from tests.conftest import copy_exports

from brewline.config import Settings
from brewline.errors import WarehouseError
from brewline.load import Ledger, Loader, Reader, Warehouse, open_warehouse
from brewline.load.migrations import SCHEMA_VERSION, migrations
from brewline.pipeline import run
from brewline.schema import TABLES


def test_a_warehouse_plays_every_role(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        assert isinstance(wh, Loader)
        assert isinstance(wh, Ledger)
        assert isinstance(wh, Reader)
        assert isinstance(wh, Warehouse)


def test_cursors_start_empty_advance_and_survive_a_reconnect(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema()
        assert wh.get_cursor("totesys", "sales_order") is None
        wh.set_cursor("totesys", "sales_order", "2024-01-01T00:00:00")
        wh.set_cursor("totesys", "sales_order", "2024-02-01T00:00:00")
        wh.set_cursor("totesys", "payment", "7")
        wh.set_cursor("other", "sales_order", "x")
    with open_warehouse(warehouse_url, read_only=True) as wh:
        assert wh.get_cursor("totesys", "sales_order") == "2024-02-01T00:00:00"
        assert wh.get_cursor("totesys", "payment") == "7"
        assert wh.get_cursor("other", "sales_order") == "x"
        rows = wh.query("SELECT count(*) AS n FROM etl_cursor")["n"][0]
    assert rows == 3


def test_meta_is_one_value_per_name(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema()
        assert wh.get_meta("k") is None
        wh.set_meta("k", "1")
        wh.set_meta("k", "2")
        assert wh.get_meta("k") == "2"


def test_an_empty_warehouse_is_reported_clearly_by_the_reader(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        assert wh.schema_version() is None
        with pytest.raises(WarehouseError, match="no Brewline warehouse yet"):
            wh.check_schema()
        assert wh.ensure_schema() == SCHEMA_VERSION
        wh.check_schema()


def test_every_declared_table_exists_with_its_declared_columns(warehouse_url: str) -> None:
    with open_warehouse(warehouse_url) as wh:
        wh.ensure_schema()
        for table in TABLES.values():
            found = wh.query(f"SELECT * FROM {table.name} WHERE 1 = 0")
            assert found.columns == table.names, table.name


def test_an_older_schema_is_upgraded_by_init_in_one_step(warehouse_url: str) -> None:
    """A version-2 warehouse (before source cursors) gains etl_cursor on upgrade only."""
    with open_warehouse(warehouse_url) as wh:
        for version, statements in migrations(wh.engine, 0)[:2]:
            wh.run_admin([*statements, f"INSERT INTO schema_version VALUES ({version}, now())"])
        assert wh.schema_version() == 2
        with pytest.raises(WarehouseError, match="run `brewline init`"):
            wh.ensure_schema()
        assert wh.ensure_schema(upgrade=True) == SCHEMA_VERSION == 6
        wh.set_cursor("s", "t", "v")
        assert wh.get_cursor("s", "t") == "v"


def test_branch_freshness_is_one_row_per_branch_up_to_a_day(
    warehouse_url: str, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    run(make_settings(landing=shared_exports, warehouse=warehouse_url))
    with open_warehouse(warehouse_url, read_only=True) as wh:
        fresh = wh.branch_freshness()
        early = wh.branch_freshness(dt.date(2000, 1, 1))
    assert fresh.columns == ["branch", "last_key", "last_loaded_at"]
    assert fresh.schema["last_loaded_at"] == pl.Datetime("us")
    assert fresh.height == 30
    assert fresh["branch"].to_list() == sorted(fresh["branch"].to_list())
    assert early.is_empty()


def test_the_deliveries_ledger_names_who_replaced_whom(
    warehouse_url: str, landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    (path,) = copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    settings = make_settings(warehouse=warehouse_url)
    run(settings)
    path.write_bytes(path.read_bytes()[: -len(path.read_bytes().splitlines(keepends=True)[-1])])
    run(settings)
    with open_warehouse(warehouse_url, read_only=True) as wh:
        seen = wh.deliveries().sort("state")
    assert seen.columns == ["file_id", "source_name", "sha256", "state", "replaced_by_name"]
    assert seen.select("state", "replaced_by_name").rows() == [
        ("loaded", None),
        ("replaced", path.name),
    ]


def test_a_run_that_dies_during_another_is_marked_abandoned_when_that_one_ends(
    warehouse_url: str, landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    """A run is marked abandoned once its process is gone: when a run begins (as before),
    and when one ends, so a run that died meanwhile does not stay 'running' until the next."""
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    with open_warehouse(warehouse_url, share=True) as ghost:
        ghost.ensure_schema()
        ghost.begin_run("ghost", "elsewhere", 1)  # alive when the next run begins...
        report = run(make_settings(warehouse=warehouse_url), on_start=lambda _: ghost.close())
    with open_warehouse(warehouse_url, read_only=True) as wh:
        runs = wh.query("SELECT run_id, status FROM etl_run ORDER BY started_at").rows()
    assert runs == [("ghost", "abandoned"), (report.run_id, "succeeded")]  # ...then died


def test_postgres_commit_lock_wait_is_bounded_by_lock_timeout(
    postgres_url: str, landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    """A session that holds Brewline's commit lock (any role can) must not hang a run."""
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    settings = make_settings(warehouse=postgres_url, lock_timeout=1.0)
    with open_warehouse(postgres_url) as wh:
        wh.ensure_schema()
    with psycopg.connect(postgres_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (0x42726577,))
        started = time.monotonic()
        report = run(settings)
        waited = time.monotonic() - started
    assert waited < 10
    assert report.exit_code == 1
    assert report.error is not None
    assert "commit lock" in report.error
    assert "lock_timeout" in report.error
    after = run(settings)  # once the lock is free, the pending file loads
    assert [(f.state, f.rows_loaded) for f in after.files] == [("loaded", 50)]


def test_postgres_first_runs_together_under_a_repeatable_read_default(
    postgres_url: str, landing: Path, shared_exports: Path, tmp_path: Path
) -> None:
    """A database whose default isolation is repeatable read would freeze a transaction's
    view before it got the commit lock: of two first runs on an empty database, the second
    did not see the schema the first made, and failed making it again. Brewline's own
    transactions read committed."""
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    with psycopg.connect(postgres_url, autocommit=True) as holder:
        name = holder.info.dbname
        holder.execute(
            f"ALTER DATABASE {name} SET default_transaction_isolation = 'repeatable read'"
        )
        holder.execute("SELECT pg_advisory_lock(%s)", (0x42726577,))  # both runners must wait
        runners = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "brewline",
                    "run",
                    str(landing),
                    "-w",
                    postgres_url,
                    "--quarantine",
                    str(tmp_path / f"q{i}"),
                    "--json",
                    "--no-alert",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND state = 'idle in transaction' AND query LIKE '%%pg_try_advisory_xact_lock%%'"
        )
        deadline = time.monotonic() + 60
        while holder.execute(waiting, (name,)).fetchone() != (2,):
            assert time.monotonic() < deadline, "the runners never both waited for the lock"
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s)", (0x42726577,))
        outcomes = [json.loads(runner.communicate(timeout=120)[0]) for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0]
    assert sorted(o["files_loaded"] for o in outcomes) == [0, 1]
    with open_warehouse(postgres_url, read_only=True) as wh:
        assert wh.query("SELECT count(*) AS n FROM fact_sale")["n"][0] == 50


_WAIT_FOR_IT = """
import sys
from brewline.load import open_warehouse
with open_warehouse(sys.argv[1], read_only=True, lock_timeout=30) as reader:
    print(reader.query("SELECT count(*) AS n FROM etl_file")["n"][0])
"""


def _start_waiting(path: str, holder: Warehouse) -> subprocess.Popen[str]:
    """A reader process that waits for ``path``, once ``holder`` sees it waiting."""
    waiter = subprocess.Popen(
        [sys.executable, "-c", _WAIT_FOR_IT, path], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while not holder.wanted_elsewhere():
        assert time.monotonic() < deadline, "the waiting reader never said so"
        time.sleep(0.02)
    return waiter


def test_a_duckdb_holder_sees_who_waits_and_makes_way(tmp_path: Path) -> None:
    """A process waiting for a held DuckDB file says so; the holder, having let go, waits
    until it got in. A waiter that died leaves a marker that does not count."""
    path = str(tmp_path / "w.duckdb")
    with open_warehouse(path, share=True) as holder:
        holder.ensure_schema()
        with holder.held():
            holder.deliveries()  # opens the file, kept by held()
            stale = Path(f"{path}.waiting-999999-1")
            stale.write_text("")  # as left by a reader killed while waiting
            assert not holder.wanted_elsewhere()
            assert not stale.exists()
            waiter = _start_waiting(path, holder)
            assert not holder.wanted_elsewhere(for_seconds=60)  # it has not waited that long
            time.sleep(0.3)
            assert holder.wanted_elsewhere(for_seconds=0.2)
        started = time.monotonic()
        holder.make_way()  # returns once the reader has the file
        assert not holder.wanted_elsewhere()
        assert time.monotonic() - started < 2
        out, _ = waiter.communicate(timeout=30)
        assert waiter.returncode == 0
        assert out.strip() == "0"


def test_a_duckdb_holder_does_not_make_way_again_for_a_waiter_that_did_not_come(
    tmp_path: Path,
) -> None:
    """A waiter that did not open the file when given its turn (stopped, frozen) is not
    waited for again at every commit: it would cost a run two seconds a batch."""
    path = str(tmp_path / "w.duckdb")
    with open_warehouse(path, share=True) as holder:
        holder.ensure_schema()
        with holder.held():
            holder.deliveries()
            waiter = _start_waiting(path, holder)
            waiter.send_signal(signal.SIGSTOP)  # as by Ctrl-Z while it waits
        try:
            holder.make_way()  # in vain: the waiter cannot take its turn
            with holder.held():
                holder.deliveries()
                assert not holder.wanted_elsewhere()
        finally:
            waiter.send_signal(signal.SIGCONT)
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0
    assert out.strip() == "0"


@contextmanager
def _a_writer_waits(path: str) -> Iterator[None]:
    """As long as this lasts, a (pretend) run waits to open ``path`` for writing."""
    marker = Path(f"{path}.waiting-writer-{os.getpid()}-1")
    with marker.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            marker.unlink()


def _open_to_read(path: str, lock_timeout: float) -> tuple[threading.Event, threading.Thread]:
    """Open ``path`` to read in a thread; the event is set once it is open."""
    opened = threading.Event()

    def read() -> None:
        with open_warehouse(path, read_only=True, lock_timeout=lock_timeout) as reader:
            reader.deliveries()
            opened.set()

    thread = threading.Thread(target=read)
    thread.start()
    return opened, thread


def test_a_duckdb_reader_lets_a_waiting_writer_in_first(tmp_path: Path) -> None:
    """Readers share the file, so a stream of them could keep a run out for good: a reader
    that finds a writer waiting lets it in first, but only for a while, and a marker left
    by a dead writer does not count."""
    path = str(tmp_path / "w.duckdb")
    with open_warehouse(path) as warehouse:
        warehouse.ensure_schema()
    with _a_writer_waits(path):
        opened, thread = _open_to_read(path, lock_timeout=30)
        assert not opened.wait(0.5)  # the file is free, but the writer goes first
    assert opened.wait(5)  # the writer got in (its marker went): now the reader's turn
    thread.join()
    with _a_writer_waits(path):  # a writer that does not come is not waited for long
        started = time.monotonic()
        opened, thread = _open_to_read(path, lock_timeout=1)
        assert opened.wait(5)
        assert 0.4 < time.monotonic() - started < 2  # half of its lock_timeout, then in
        thread.join()
        opened, thread = _open_to_read(path, lock_timeout=1)
        assert opened.wait(0.3)  # and a run that did not come is not waited for again
        thread.join()
    with _a_writer_waits(path), open_warehouse(path, read_only=True, lock_timeout=0):
        pass  # no patience, yet it tries once: the file is free
    stale = Path(f"{path}.waiting-writer-999999-1")
    stale.write_text("")  # as left by a run killed while it waited
    opened, thread = _open_to_read(path, lock_timeout=30)
    assert opened.wait(0.5)
    thread.join()
    assert not stale.exists()
