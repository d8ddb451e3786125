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
  each run), against the floors (target <= 1.5x the bare COPY). The floors read
  on one connection; the extract reads two tables at a time on two (one shared
  snapshot). On a machine others share, wall times vary two- or threefold, so
  the CPU seconds of the csv floor and the extract are given too, as
  ``client+source`` (the process's, and the source's ended backends');
- ``first_sync``: the whole first sync (extract, model, load) into DuckDB,
  with its peak RSS and the seconds of each stage;
- ``noop_sync``: a sync with nothing new into that warehouse (target <= 1 s);
- with PostgreSQL as the warehouse (a database on the same cluster): the first
  sync and a no-op sync (``--no-postgres`` skips them).

``--extract-only`` stops after the extract and its floors.
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
    """One whole process: wall seconds, peak RSS (MB), CPU seconds (user and system)
    and its stdout parsed as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", "-o", f"{tmp}/rss", *command],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        rss, user, system = Path(f"{tmp}/rss").read_text().split()[-3:]
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return {
        "seconds": seconds,
        "rss_mb": int(rss) / 1024,
        "cpu_s": float(user) + float(system),
        "out": json.loads(done.stdout),
    }


def source_cpu(server: Any) -> float:
    """CPU seconds the cluster's ended backends used (the postmaster's reaped children):
    on a machine others share, what the source spent is steadier than a wall time."""
    pid = (server.data / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def with_source_cpu(server: Any, run: dict[str, Any], before: float) -> dict[str, Any]:
    time.sleep(0.3)  # the run's backends have exited; let the postmaster reap them
    return {**run, "source_cpu_s": source_cpu(server) - before}


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


def cpu(runs: list[dict[str, Any]]) -> list[str]:
    """Each run's CPU seconds as ``client+source``."""
    return [f"{run['cpu_s']:.2f}+{run['source_cpu_s']:.2f}" for run in runs]


def least_cpu(runs: list[dict[str, Any]]) -> float:
    return min(float(run["cpu_s"]) + float(run["source_cpu_s"]) for run in runs)


def extract_figures(
    server: Any, url: str, work: Path, repeat: int, results: dict[str, object]
) -> list[dict[str, Any]]:
    """The extract and its floors into ``results``; the csv floor's runs."""
    text, csv, extracts = [], [], []
    for n in range(repeat):  # interleaved, so a busy moment hits all three alike
        before = source_cpu(server)
        text.append(with_source_cpu(server, floor(url, ""), before))
        before = source_cpu(server)
        csv.append(with_source_cpu(server, floor(url, "(FORMAT csv)"), before))
        before = source_cpu(server)
        extract = brewline_sync(
            url, work / f"x{n}", str(work / f"x{n}.duckdb"), "--stage", "extract"
        )
        extracts.append(with_source_cpu(server, extract, before))
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
    results["floor_copy_csv_cpu_s"] = cpu(csv)
    results["extract_cpu_s"] = cpu(extracts)
    results["extract_vs_copy_csv_cpu"] = round(least_cpu(extracts) / least_cpu(csv), 2)
    return csv


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
            csv = extract_figures(server, url, work, repeat, results)
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
