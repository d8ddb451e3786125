"""Kill the loader at random moments and run two loaders at once, on real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from tests.marts import assert_marts_exact

from brewline.errors import WarehouseBusy
from brewline.load import open_warehouse
from brewline.synth import SynthSpec, generate_landing

RUNNER = """
import json, sys
from pathlib import Path
from brewline.config import Settings
from brewline.pipeline import run
landing, warehouse, quarantine = sys.argv[1:4]
settings = Settings(landing=Path(landing), warehouse=warehouse, quarantine=Path(quarantine),
                    batch_files=2, lock_timeout=120)
report = run(settings, on_start=lambda n: print("started", flush=True),
             on_file=lambda f: print("file", f.state, flush=True))
print("done", json.dumps({"loaded": report.count("loaded"), "skipped": report.count("skipped"),
                  "rows_loaded": report.rows_loaded}))
"""


@pytest.fixture(scope="module")
def busy_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("landing")
    generate_landing(folder, SynthSpec(branches=8, days=5, sales_per_branch_day=1500, seed=3))
    return folder


def start(landing: Path, warehouse: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", RUNNER, str(landing), str(warehouse), str(warehouse.parent / "q")]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def consistent(warehouse: Path) -> tuple[int, int]:
    """Every loaded file has exactly its rows, nothing else is visible and the marts agree.

    Returns (files, sales).
    """
    assert_marts_exact(str(warehouse))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        mismatched = con.execute(
            "SELECT f.source_name, f.rows_loaded, count(s.sale_key) FROM etl_file f "
            "LEFT JOIN fact_sale s USING (file_id) WHERE f.state = 'loaded' "
            "GROUP BY 1, 2 HAVING count(s.sale_key) <> f.rows_loaded"
        ).fetchall()
        orphans = con.execute(
            "SELECT count(*) FROM fact_sale WHERE file_id NOT IN "
            "(SELECT file_id FROM etl_file WHERE state = 'loaded')"
        ).fetchone()
        loaded = con.execute("SELECT count(*) FROM etl_file WHERE state = 'loaded'").fetchone()
        sales = con.execute("SELECT count(*) FROM fact_sale").fetchone()
        lines = con.execute(
            "SELECT count(*) FROM fact_sale_line WHERE sale_key NOT IN "
            "(SELECT sale_key FROM fact_sale)"
        ).fetchone()
    assert mismatched == []
    assert orphans == (0,)
    assert lines == (0,)
    assert loaded is not None
    assert sales is not None
    return loaded[0], sales[0]


def kill_after(runner: subprocess.Popen[str], files_done: int, delay: float) -> None:
    """SIGKILL once ``files_done`` files were reported, plus ``delay`` seconds."""
    assert runner.stdout is not None
    seen = -1
    for line in runner.stdout:
        if line.startswith("started"):
            seen = 0
        elif line.startswith("file"):
            seen += 1
        if seen >= files_done:
            break
    time.sleep(delay)
    runner.send_signal(signal.SIGKILL)
    runner.communicate()
    assert runner.returncode == -signal.SIGKILL, "the run finished before it could be killed"


@pytest.mark.parametrize(("files_done", "delay"), [(0, 0.0), (0, 0.05), (3, 0.0), (9, 0.02)])
def test_sigkill_mid_run_leaves_whole_files_and_the_next_run_finishes(
    busy_landing: Path, tmp_path: Path, files_done: int, delay: float
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    kill_after(start(busy_landing, warehouse), files_done, delay)
    partial = consistent(warehouse)
    assert partial[0] < 40
    survivor = start(busy_landing, warehouse)
    _out, err = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, err
    assert consistent(warehouse) == (40, 40 * 1500)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        statuses = dict(con.execute("SELECT status, count(*) FROM etl_run GROUP BY 1").fetchall())
    assert statuses.get("succeeded") == 1
    assert set(statuses) <= {"succeeded", "abandoned"}


def test_two_runners_at_once_load_every_file_exactly_once(
    busy_landing: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    runners = [start(busy_landing, warehouse) for _ in range(2)]
    results = []
    for runner in runners:
        out, err = runner.communicate(timeout=180)
        assert runner.returncode == 0, err
        results.append(json.loads(out.split("done ", 1)[1]))
    # The runners take turns at each commit (the file is held only while committing), so
    # both may load some files; together they load every file exactly once.
    assert sum(r["loaded"] for r in results) == 40
    assert sum(r["loaded"] + r["skipped"] for r in results) == 2 * 40
    assert sum(r["rows_loaded"] for r in results) == 40 * 1500
    assert consistent(warehouse) == (40, 40 * 1500)
    with duckdb.connect(str(warehouse), read_only=True) as con:  # neither took the other for dead
        assert con.execute("SELECT status FROM etl_run").fetchall() == [("succeeded",)] * 2


def test_readers_get_the_warehouse_between_a_runs_commits(
    busy_landing: Path, tmp_path: Path
) -> None:
    """A run keeps the DuckDB file only while it commits, and between commits lets go to
    whoever waits for it: dashboards and reports get turns, and a second runner's live run
    is never taken for a dead one."""
    warehouse = tmp_path / "warehouse.duckdb"
    runner = start(busy_landing, warehouse)
    assert runner.stdout is not None
    for line in runner.stdout:
        if line.startswith("file"):
            break
    opened = tried = 0
    while runner.poll() is None and tried < 400:
        tried += 1
        try:  # as the dashboard opens it
            with open_warehouse(str(warehouse), read_only=True, lock_timeout=1) as reader:
                running = reader.query("SELECT count(*) AS n FROM etl_run WHERE status = 'running'")
                opened += running["n"][0] == 1
        except WarehouseBusy:
            pass
        time.sleep(0.02)
    _, err = runner.communicate(timeout=180)
    assert runner.returncode == 0, err
    assert opened >= 1, f"no read got in during the run ({tried} tries)"
    second = start(busy_landing, warehouse)
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    with duckdb.connect(str(warehouse), read_only=True) as con:
        statuses = con.execute("SELECT status FROM etl_run").fetchall()
    assert statuses == [("succeeded",), ("succeeded",)]
    assert not list(tmp_path.glob("*.lock"))  # run locks are cleaned up
