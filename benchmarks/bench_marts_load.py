"""What keeping the marts costs a load (run by `make bench`; issue 11's "within 10%").

Whole ``brewline run`` processes on bench_load.py's shapes (generated there into
./bench-data), alternating two variants on the same files so machine noise
hits both alike:

- ``marts``: Brewline as shipped, which refreshes the marts in every batch's
  transaction;
- ``no marts``: the same process with the marts' aggregation and refresh
  switched off (the control; never a way to run Brewline).

Each variant runs ``--repeat`` times per shape (3 by default) into a new
DuckDB warehouse; the ratio uses the best run of each.

    .venv/bin/python benchmarks/bench_marts_load.py [--shape small|big|all] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"

_CONTROL = """
import sys
from brewline.load.loader import SqlLoader
import brewline.load.loader as loader
loader.of_batch = lambda sales, lines: {}  # the control: no marts
SqlLoader._refresh_marts = lambda self, fresh, **kw: None
from brewline.cli import app
sys.argv = ["brewline", *sys.argv[1:]]
app()
"""


def timed_run(landing: Path, marts: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        args = ["run", str(landing), "-w", f"{folder}/w.duckdb", "--quarantine", f"{folder}/q"]
        command = [sys.executable, "-m", "brewline", *args] if marts else [
            sys.executable, "-c", _CONTROL, *args
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=os.environ.copy())
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["small", "big", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    shapes = ["small", "big"] if args.shape == "all" else [args.shape]
    results = {}
    for shape in shapes:
        landing = DATA / f"landing-{shape}"
        if not landing.is_dir():
            raise SystemExit(f"{landing} is missing: run benchmarks/bench_load.py first")
        runs: dict[str, list[float]] = {"marts": [], "no marts": []}
        for _ in range(args.repeat):
            for variant, times in runs.items():
                times.append(timed_run(landing, variant == "marts"))
        best = {variant: min(times) for variant, times in runs.items()}
        results[shape] = {
            "runs": runs,
            "best": best,
            "cost": best["marts"] / best["no marts"] - 1,
        }
    if args.json:
        print(json.dumps({"nproc": os.cpu_count(), "shapes": results}, indent=2))
        return
    print(f"nproc {os.cpu_count()}; whole `brewline run` processes, best of {args.repeat}")
    print(f"{'shape':<8}{'marts s':>10}{'no marts s':>12}{'cost':>8}   target <= 10%")
    for shape, found in results.items():
        best = found["best"]
        print(f"{shape:<8}{best['marts']:>10.2f}{best['no marts']:>12.2f}{found['cost']:>8.1%}")


if __name__ == "__main__":
    main()
