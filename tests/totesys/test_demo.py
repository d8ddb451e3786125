"""``brewline demo --source totesys`` as a new user runs it: its own throwaway cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from brewline.load import open_warehouse

pytestmark = pytest.mark.postgres


def test_the_totesys_demo_generates_syncs_twice_and_says_what_next(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "brewline", "demo", "--source", "totesys",
         "--sales-orders", "300", "-w", str(tmp_path / "w.duckdb"),
         "--folder", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "an incremental sync" in done.stdout
    assert "Revenue (current orders): GBP" in done.stdout
    assert "brewline report --source totesys" in done.stdout
    # The Next commands start brewline as this test did: `<python> -m brewline ...`.
    prose = [line for line in done.stdout.splitlines() if " -m brewline " not in line]
    assert all(len(line) <= 80 for line in prose)  # commands stay whole, to copy
    assert (tmp_path / "d" / "lake" / "star" / "_current.json").is_file()
    with open_warehouse(str(tmp_path / "w.duckdb"), read_only=True) as wh:
        orders = wh.query(
            "SELECT count(DISTINCT sales_order_id) AS n FROM totesys_fact_sales_order"
        )
    assert orders["n"][0] >= 300
