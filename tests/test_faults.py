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
    """Every loaded file has exactly its rows; nothing else is visible. Returns (files, sales)."""
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
    assert sorted(r["loaded"] for r in results) == [0, 40]
    assert sum(r["rows_loaded"] for r in results) == 40 * 1500
    assert consistent(warehouse) == (40, 40 * 1500)
