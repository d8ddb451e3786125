"""Throughput and memory of `brewline run`, timed as a user runs it (run by `make bench`).

Every figure is a whole `brewline run` process (start-up, discovery, parsing,
loading, the ledger; default settings and durability): the median of
``--repeat`` runs (3), alternated with the same runs with a PII key, beside
floors measured in the same run on the same files:

- ``floor_one_buffer``: read every file's bytes and parse them as one CSV
  buffer with Polars (the least any loader must do);
- ``floor_read_csv``: one ``polars.read_csv`` per file.

Shapes (generated once into ./bench-data):

- ``big``: 1,000,000 sales in 200 files of 5,000 (the old benchmark);
- ``small``: 1,020,000 sales in 3,400 files of 300 (100 branches x 34 days: the
  real shape of a till export);
- ``many`` (with ``--all``): 2,400,000 sales in 8,000 files of 300, for memory.

PostgreSQL (a throwaway cluster at default durability, fsync on): the whole
run into it beside two floors: a bare ``COPY`` of the raw CSV bytes into a
7-column text table (what ``psql \\copy`` does), and a binary ``COPY`` of the
fact rows the run stored (1M sales and their ~2.5M lines) into bare copies of
the fact tables in one transaction: what the server must do to store a star
schema's rows, whoever sends them.

Targets on this 2-core machine (issue 8): big >= 500k sales/s; small >= 300k
sales/s; with a PII key <= 15% slower; peak RSS <= 1 GiB whatever the number of
files; PostgreSQL <= 2x the bare copy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"
KEY = "benchmark-key-0123456789"
SHAPES = {  # name: (branches, days, sales per file)
    "big": (200, 1, 5000),
    "small": (100, 34, 300),
    "many": (100, 80, 300),
}

_FLOORS = """
import glob, json, sys, time
import polars as pl
files = sorted(glob.glob(sys.argv[1] + "/*.csv"))
started = time.perf_counter()
rows = sum(pl.read_csv(f, has_header=False, infer_schema=False).height for f in files)
per_file = time.perf_counter() - started
started = time.perf_counter()
buffer = b"".join(open(f, "rb").read() for f in files)
one = pl.read_csv(buffer, has_header=False, infer_schema=False).height
print(json.dumps({"read_csv": per_file, "one_buffer": time.perf_counter() - started,
                  "rows": rows, "rows_one": one}))
"""

_BARE_COPY = """
import glob, json, sys, time
import psycopg
files, url = sorted(glob.glob(sys.argv[1] + "/*.csv")), sys.argv[2]
with psycopg.connect(url, autocommit=True) as pg:
    pg.execute("CREATE TABLE raw_sales (ts text, branch text, customer text, basket text, "
               "total text, payment text, card text)")
    started = time.perf_counter()
    with pg.transaction(), pg.cursor().copy("COPY raw_sales FROM STDIN (FORMAT csv)") as copy:
        for name in files:
            copy.write(open(name, "rb").read())
    print(json.dumps({"seconds": time.perf_counter() - started}))
"""

_FACTS_COPY = """
import json, sys, time
import psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as pg:
    payload = {}
    for table in ("fact_sale", "fact_sale_line"):
        pg.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING INDEXES)")
        with pg.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
            payload[table] = b"".join(bytes(chunk) for chunk in copy)
    started = time.perf_counter()
    with pg.transaction():
        for table, data in payload.items():
            with pg.cursor().copy(f"COPY floor_{table} FROM STDIN (FORMAT binary)") as copy:
                for at in range(0, len(data), 1 << 20):
                    copy.write(data[at : at + (1 << 20)])
    print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def landing(shape: str) -> Path:
    branches, days, sales = SHAPES[shape]
    folder = DATA / f"landing-{shape}"
    if folder.is_dir() and len(list(folder.glob("*.csv"))) == branches * days:
        return folder
    from brewline.synth import SynthSpec, generate_landing

    folder.mkdir(parents=True, exist_ok=True)
    spec = SynthSpec(branches=branches, days=days, sales_per_branch_day=sales)
    generate_landing(folder, spec)
    return folder


def python(script: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def brewline_run(folder: Path, warehouse: str, *, key: str | None = None) -> dict[str, float]:
    """One whole `brewline run` process: wall seconds, peak RSS, rows loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    if key:
        env["BREWLINE_PII_KEY"] = key
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "/usr/bin/time", "-f", "%M", "-o", f"{tmp}/rss",
            str(Path(sys.executable).parent / "brewline"), "run", str(folder),
            "-w", warehouse, "--quarantine", f"{tmp}/q", "--json", "--no-alert",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        seconds = time.perf_counter() - started
        rss_mb = int(Path(f"{tmp}/rss").read_text().split()[-1]) / 1024
    if done.returncode != 0:
        raise SystemExit(f"brewline run failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return {"seconds": seconds, "rss_mb": rss_mb, "rows": report["rows_loaded"]}


def duckdb_figures(shape: str, repeat: int) -> dict[str, object]:
    """Runs without and with a PII key, alternated ``repeat`` times: on a shared machine
    speed drifts from minute to minute, so a median of alternated runs compares fairly."""
    folder = landing(shape)
    floors = python(_FLOORS, str(folder))
    plain, keyed = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            plain.append(brewline_run(folder, f"{tmp}/plain.duckdb"))
            keyed.append(brewline_run(folder, f"{tmp}/keyed.duckdb", key=KEY))
    seconds = statistics.median(r["seconds"] for r in plain)
    keyed_seconds = statistics.median(r["seconds"] for r in keyed)
    return {
        "files": len(list(folder.glob("*.csv"))),
        "sales": plain[0]["rows"],
        "input_mb": round(sum(f.stat().st_size for f in folder.glob("*.csv")) / 1e6, 1),
        "floor_one_buffer_s": round(floors["one_buffer"], 2),
        "floor_read_csv_s": round(floors["read_csv"], 2),
        "run_s": round(seconds, 2),
        "run_s_range": _range(r["seconds"] for r in plain),
        "run_sales_per_s": round(plain[0]["rows"] / seconds),
        "run_vs_one_buffer": round(seconds / floors["one_buffer"], 1),
        "run_peak_rss_mb": round(max(r["rss_mb"] for r in plain + keyed)),
        "run_with_pii_key_s": round(keyed_seconds, 2),
        "run_with_pii_key_s_range": _range(r["seconds"] for r in keyed),
        "pii_key_slowdown": f"{keyed_seconds / seconds - 1:+.0%}",
    }


def _range(values: Iterable[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]:.2f}-{ordered[-1]:.2f}"


def postgres_figures(shape: str) -> dict[str, object]:
    """The whole run into PostgreSQL at default durability vs a bare COPY of the raw files."""
    sys.path.insert(0, str(ROOT))
    from tests.pgcluster import PostgresServer

    folder = landing(shape)
    server = PostgresServer(durable=True)
    try:
        bare = python(_BARE_COPY, str(folder), server.database())
        warehouse = server.database()
        loaded = brewline_run(folder, warehouse)
        facts = python(_FACTS_COPY, warehouse)
    finally:
        server.remove()
    return {
        "postgres_bare_copy_s": round(bare["seconds"], 2),
        "postgres_facts_copy_s": round(facts["seconds"], 2),
        "postgres_run_s": round(loaded["seconds"], 2),
        "postgres_run_sales_per_s": round(loaded["rows"] / loaded["seconds"]),
        "postgres_run_vs_bare_copy": round(loaded["seconds"] / bare["seconds"], 2),
        "postgres_run_vs_facts_copy": round(loaded["seconds"] / facts["seconds"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--all", action="store_true", help="also the 8,000-file memory shape")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="only this shape")
    parser.add_argument(
        "--repeat", type=int, default=3, help="alternated runs per shape (medians are shown)"
    )
    args = parser.parse_args()
    shapes = [args.shape] if args.shape else ["big", "small", *(["many"] if args.all else [])]
    results: dict[str, object] = {"cores": os.cpu_count()}
    for shape in shapes:
        results[shape] = duckdb_figures(shape, args.repeat)
    results["postgres_big"] = postgres_figures("big")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, value in results.items():
        if isinstance(value, dict):
            print(f"{name}:")
            for key, figure in value.items():
                print(f"  {key:<25} {figure}")
        else:
            print(f"{name}: {value}")


if __name__ == "__main__":
    main()
