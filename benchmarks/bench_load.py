"""Throughput and memory of landing -> DuckDB star schema (run by `make bench`).

Generates 1,000,000 sales in 200 branch files (~140 MB) once into ./bench-data,
then measures, each in a fresh process so peak RSS is the process's own:

- bare ``polars.read_csv`` of every file (the floor: reading bytes into frames);
- the full pipeline into a new DuckDB file, without and with a PII key;
- the pipeline on the first 50, 100 and 200 files, to show memory stays flat;
- the pipeline into a throwaway PostgreSQL cluster, beside a bare ``COPY`` of the
  same fact rows (``fact_sale`` + ``fact_sale_line``) into the same tables.

Targets (on a 2-core machine): DuckDB <= 2 s end to end (>= 500k sales/s),
<= 10x the bare read, peak RSS <= 1 GiB, memory flat in the number of files;
PostgreSQL >= 200k sales/s and within 3x of the bare COPY.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data" / "landing-1m"
FILES, SALES_PER_FILE = 200, 5000

_BARE = """
import glob, json, resource, sys, time
import polars as pl
files = sorted(glob.glob(sys.argv[1] + "/*.csv"))
started = time.perf_counter()
rows = sum(pl.read_csv(f, has_header=False, infer_schema=False).height for f in files)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_PIPELINE = """
import json, resource, shutil, sys, time
from pathlib import Path
from brewline.config import Settings
from brewline.extract import discover
from brewline.pipeline import run
source, warehouse, limit, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] or None
paths = [f.path for f in discover([Path(source)])][:limit]
settings = Settings(landing=Path(source), warehouse=warehouse, quarantine=Path(warehouse + ".q"),
                    pii_key=key)
started = time.perf_counter()
report = run(settings, paths)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": report.rows_loaded,
                  "files": report.count("loaded"),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def ensure_data() -> None:
    if DATA.is_dir() and len(list(DATA.glob("*.csv"))) == FILES:
        return
    from brewline.synth import SynthSpec, generate_landing

    DATA.mkdir(parents=True, exist_ok=True)
    generate_landing(DATA, SynthSpec(branches=FILES, days=1, sales_per_branch_day=SALES_PER_FILE))


def measure(script: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def pipeline(limit: int, key: str = "", warehouse: str = "") -> dict[str, float]:
    if warehouse:
        return measure(_PIPELINE, str(DATA), warehouse, str(limit), key)
    with tempfile.TemporaryDirectory() as tmp:
        return measure(_PIPELINE, str(DATA), str(Path(tmp) / "bench.duckdb"), str(limit), key)


_BARE_COPY = """
import json, sys, time
import duckdb, polars as pl, psycopg
from brewline.load.postgres import binary_copy_payload
from brewline.schema import TABLES
source, url = sys.argv[1], sys.argv[2]
with duckdb.connect(source, read_only=True) as con:
    frames = {t: pl.from_arrow(con.sql(f"SELECT * FROM {t}").to_arrow_table())
              for t in ("fact_sale", "fact_sale_line")}
with psycopg.connect(url, autocommit=True) as pg:
    pg.execute("CREATE SCHEMA bare")
    for table in frames:
        pg.execute(TABLES[table].create_sql(f"bare.{table}"))  # no index at all
    started = time.perf_counter()
    with pg.transaction():
        for table, frame in frames.items():
            with pg.cursor().copy(f"COPY bare.{table} FROM STDIN (FORMAT binary)") as copy:
                copy.write(binary_copy_payload(frame))
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "rows": sum(f.height for f in frames.values())}))
"""


def postgres_figures() -> dict[str, object]:
    """Pipeline into PostgreSQL vs a bare COPY of the same fact rows (same server, fsync off)."""
    sys.path.insert(0, str(ROOT))
    from tests.pgcluster import PostgresServer

    server = PostgresServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            duck = str(Path(tmp) / "facts.duckdb")
            pipeline(FILES, warehouse=duck)
            bare = measure(_BARE_COPY, duck, server.database())
        loaded = pipeline(FILES, warehouse=server.database())
    finally:
        server.remove()
    return {
        "postgres_pipeline_s": round(loaded["seconds"], 3),
        "postgres_sales_per_s": round(loaded["rows"] / loaded["seconds"]),
        "postgres_bare_copy_of_fact_rows_s": round(bare["seconds"], 3),
        "postgres_pipeline_vs_bare_copy": round(loaded["seconds"] / bare["seconds"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    ensure_data()
    size_mb = sum(f.stat().st_size for f in DATA.glob("*.csv")) / 1e6
    bare = measure(_BARE, str(DATA))
    plain = pipeline(FILES)
    keyed = pipeline(FILES, key="benchmark-key-0123456789")
    scaling = {n: pipeline(n)["rss_mb"] for n in (50, 100, 200)}
    results = {
        "cores": os.cpu_count(),
        "input_mb": round(size_mb, 1),
        "sales": plain["rows"],
        "bare_read_csv_s": round(bare["seconds"], 3),
        "pipeline_s": round(plain["seconds"], 3),
        "pipeline_sales_per_s": round(plain["rows"] / plain["seconds"]),
        "pipeline_vs_bare_read": round(plain["seconds"] / bare["seconds"], 2),
        "pipeline_peak_rss_mb": round(plain["rss_mb"]),
        "pipeline_with_pii_key_s": round(keyed["seconds"], 3),
        "pipeline_with_pii_key_sales_per_s": round(keyed["rows"] / keyed["seconds"]),
        "peak_rss_mb_by_files": {n: round(v) for n, v in scaling.items()},
        **postgres_figures(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(k) for k in results)
    for name, value in results.items():
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
