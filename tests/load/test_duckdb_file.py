"""Making a new DuckDB warehouse file: whole or not at all, and only in a folder that exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from brewline.errors import ConfigError
from brewline.load import open_warehouse

OPENER = """
import sys, time
from pathlib import Path
from brewline.load.duckdb import DuckDBWarehouse
warehouse, go = sys.argv[1:3]
while not Path(go).exists():  # every opener starts at once: the race is at the file's birth
    time.sleep(0.001)
with DuckDBWarehouse(warehouse, share=True, lock_timeout=120) as wh:
    wh.ensure_schema()
"""


def open_at_once(warehouse: Path, openers: int) -> list[str]:
    """Start ``openers`` processes opening one new warehouse together; their errors."""
    go = warehouse.with_suffix(".go")
    args = [sys.executable, "-c", OPENER, str(warehouse), str(go)]
    procs = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True) for _ in range(openers)]
    go.touch()
    return [err for p in procs if (err := p.communicate(timeout=180)[1]) and p.returncode]


def test_runners_opening_a_new_warehouse_together_never_see_it_half_written(
    tmp_path: Path,
) -> None:
    """Eight processes open one warehouse that does not exist yet, in several trials:
    each waits its turn (none reads a file another is still writing) and one schema results."""
    failures = []
    for trial in range(3):
        warehouse = tmp_path / f"trial{trial}" / "w.duckdb"
        warehouse.parent.mkdir()
        failures += open_at_once(warehouse, 8)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM etl_run").fetchone() == (0,)
        assert sorted(p.name for p in warehouse.parent.iterdir()) == ["w.duckdb", "w.go"]
    assert failures == []


def test_a_new_warehouse_needs_its_folder(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "deeper" / "w.duckdb"
    with pytest.raises(ConfigError, match=r"no folder .*typo/deeper for the DuckDB warehouse"):
        open_warehouse(str(missing))
    assert not (tmp_path / "typo").exists()


def test_a_creator_that_lost_the_race_keeps_the_winners_warehouse(tmp_path: Path) -> None:
    """The file appears under its name only whole (a hard link of a finished draft), and a
    creator that finds the name taken uses that file and leaves no draft behind."""
    from brewline.load.duckdb import _create

    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE winner AS SELECT 42 AS answer")
    _create(str(warehouse))  # as when another runner created it between the check and here
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT answer FROM winner").fetchall() == [(42,)]
    assert [p.name for p in tmp_path.iterdir()] == ["w.duckdb"]
