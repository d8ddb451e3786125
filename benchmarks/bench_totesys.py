"""The totesys sync, timed as a user runs it (run by `make bench`).

A throwaway PostgreSQL cluster at default durability (fsync on) holds a
generated totesys source: 1,000,000 sales orders and proportional other tables
(``fill``: 500k purchase orders, 1.5M transactions, 1.5M payments, ...), then
``VACUUM ANALYZE`` (``fill`` uses plain ``COPY``: without it the first reader
would pay the hint-bit writes, the floor or the extract, whichever ran first).

Every figure is a whole process, run ``--repeat`` times (2 by default; every
run is printed, ratios use the best of each), beside floors measured in the
same run against the same tables:

- ``floor_copy_text``: ``COPY (SELECT * FROM <table>) TO STDOUT`` of every
  table with psycopg, reading every byte and discarding it;
- ``floor_copy_csv``: the same in ``(FORMAT csv)``, what the extractor reads.

Figures:

- ``extract``: the first sync's extract stage alone
  (``brewline sync URL --lake L -w W --stage extract``, a new lake and warehouse
  each run), against the floors (target <= 1.5x the bare COPY);
- ``first_sync``: the whole first sync (extract, model, load) into DuckDB,
  with its peak RSS and the seconds of each stage;
- ``noop_sync``: a sync with nothing new into that warehouse (target <= 1 s);
- with PostgreSQL as the warehouse (a database on the same cluster): the first
  sync and a no-op sync (``--no-postgres`` skips them).
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_FLOOR = """
import json, sys, time
import psycopg
from brewline.totesys.generate import SOURCE_TABLES
url, options = sys.argv[1], sys.argv[2]
started = time.perf_counter()
size = 0
with psycopg.connect(url, autocommit=True) as con:
    for table in SOURCE_TABLES:
        with con.cursor().copy(f'COPY (SELECT * FROM "{table}") TO STDOUT {options}') as copy:
            for chunk in copy:
                size += len(chunk)
print(json.dumps({"seconds": time.perf_counter() - started, "bytes": size}))
"""


def timed(command: list[str]) -> dict[str, Any]:
    """One whole process: wall seconds, peak RSS (MB) and its stdout parsed as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", f"{tmp}/rss", *command],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        rss_mb = int(Path(f"{tmp}/rss").read_text().split()[-1]) / 1024
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"seconds": seconds, "rss_mb": rss_mb, "out": json.loads(done.stdout)}


def floor(url: str, options: str) -> dict[str, Any]:
    return timed([sys.executable, "-c", _FLOOR, url, options])


def brewline_sync(url: str, lake: Path, warehouse: str, *stage: str) -> dict[str, Any]:
    brewline = str(Path(sys.executable).parent / "brewline")
    return timed([brewline, "sync", url, "--lake", str(lake), "-w", warehouse, "--json", *stage])


def source(sales_orders: int) -> tuple[Any, str, dict[str, float]]:
    """A durable cluster, its filled source database and how long filling it took."""
    sys.path.insert(0, str(ROOT))
    import psycopg
    from tests.pgcluster import PostgresServer

    from brewline.totesys.generate import create_source, fill

    server = PostgresServer(durable=True)
    url = server.database()
    create_source(url)
    started = time.perf_counter()
    rows = fill(url, sales_orders=sales_orders)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM ANALYZE")
    vacuumed = time.perf_counter() - started
    return server, url, {"rows": sum(rows.values()), "fill_s": filled, "vacuum_s": vacuumed}


def seconds(runs: list[dict[str, Any]]) -> list[float]:
    return [round(run["seconds"], 2) for run in runs]


def best(runs: list[dict[str, Any]]) -> float:
    return min(float(run["seconds"]) for run in runs)


def figures(
    sales_orders: int, repeat: int, *, postgres: bool, syncs: bool = True
) -> dict[str, object]:
    server, url, made = source(sales_orders)
    results: dict[str, object] = {
        "cores": os.cpu_count(),
        "sales_orders": sales_orders,
        "source_rows": made["rows"],
        "fill_s": round(made["fill_s"], 1),
        "vacuum_analyze_s": round(made["vacuum_s"], 1),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="brewline-bench-") as tmp:
            work = Path(tmp)
            text, csv, extracts = [], [], []
            for n in range(repeat):  # interleaved, so a busy moment hits all three alike
                text.append(floor(url, ""))
                csv.append(floor(url, "(FORMAT csv)"))
                extracts.append(
                    brewline_sync(
                        url, work / f"x{n}", str(work / f"x{n}.duckdb"), "--stage", "extract"
                    )
                )
            rows = extracts[0]["out"]["rows"]
            results["copy_mb"] = round(csv[0]["out"]["bytes"] / 1e6)
            results["floor_copy_text_s"] = seconds(text)
            results["floor_copy_csv_s"] = seconds(csv)
            results["extract_s"] = seconds(extracts)
            results["extract_rows"] = rows
            results["extract_rows_per_s"] = round(rows / best(extracts))
            results["extract_vs_copy_text"] = round(best(extracts) / best(text), 2)
            results["extract_vs_copy_csv"] = round(best(extracts) / best(csv), 2)
            results["extract_peak_rss_mb"] = round(max(run["rss_mb"] for run in extracts))
            if not syncs:
                return results

            firsts, noops = [], []
            for n in range(repeat):
                lake, warehouse = work / f"s{n}", str(work / f"s{n}.duckdb")
                firsts.append(brewline_sync(url, lake, warehouse))
                noops.append(brewline_sync(url, lake, warehouse))
                noops.append(brewline_sync(url, lake, warehouse))
            assert all(not sum(run["out"]["rows_extracted"].values()) for run in noops)
            results["first_sync_s"] = seconds(firsts)
            results["first_sync_stages_s"] = [run["out"]["seconds"] for run in firsts]
            results["first_sync_vs_copy_csv"] = round(best(firsts) / best(csv), 2)
            results["first_sync_peak_rss_mb"] = [round(run["rss_mb"]) for run in firsts]
            results["noop_sync_s"] = seconds(noops)
            results["noop_sync_stages_s"] = [run["out"]["seconds"] for run in noops]

            if postgres:
                pg_firsts, pg_noops = [], []
                for n in range(repeat):
                    lake, warehouse = work / f"p{n}", server.database()
                    pg_firsts.append(brewline_sync(url, lake, warehouse))
                    pg_noops.append(brewline_sync(url, lake, warehouse))
                results["postgres_first_sync_s"] = seconds(pg_firsts)
                results["postgres_first_sync_stages_s"] = [r["out"]["seconds"] for r in pg_firsts]
                results["postgres_first_sync_peak_rss_mb"] = [round(r["rss_mb"]) for r in pg_firsts]
                results["postgres_noop_sync_s"] = seconds(pg_noops)
    finally:
        server.remove()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--sales-orders", type=int, default=1_000_000, metavar="N")
    parser.add_argument("--repeat", type=int, default=2, metavar="N", help="runs of each figure")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL warehouse")
    parser.add_argument(
        "--extract-only", action="store_true", help="the extract and its floors, no whole syncs"
    )
    args = parser.parse_args()
    results = figures(
        args.sales_orders,
        max(args.repeat, 1),
        postgres=not args.no_postgres,
        syncs=not args.extract_only,
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, value in results.items():
        print(f"{name:<32} {value}")


if __name__ == "__main__":
    main()
