"""Every dashboard page at 10M and 100M sales, on DuckDB and PostgreSQL (not a timed test).

Warehouses, built once and cached under ./bench-data (each is reused while the
marker file written last says it is complete, of this schema version and of
these parameters; delete ``bench-data/scale-*`` to rebuild):

- ``10m duckdb``: 100 branches x 340 trading days of synthetic till exports
  (:mod:`brewline.synth`, realistic volumes: ~10M sales in 34,000 files), loaded
  through the pipeline by one whole ``brewline run`` process with a PII key;
  its wall time, throughput and peak RSS are recorded.
- ``100m duckdb``: 300 branches x ~1,110 days (~100M sales, ~250M lines) made
  straight as star rows in SQL, no CSV: the schema comes from the project's
  migrations, the baskets (products, quantities, prices, totals) and the
  intraday pattern from a sample the pipeline loaded, files, branches and keys
  from :mod:`brewline.synth` and :mod:`brewline.keys`, with the ledger rows
  (one file per branch-day, one run per day) the Operations page reads.
- ``100m postgres``: the same rows copied from that DuckDB file into a cluster
  kept in ./bench-data (default settings, fsync on), table by table through a
  FIFO (DuckDB writes CSV, the server's own ``COPY ... FREEZE`` reads it), then
  ``VACUUM ANALYZE``.

After a direct build, ``rebuild_marts()`` fills the marts from the made rows (a
load keeps them itself); a cached build of an older schema is upgraded in place.

Each page (see :func:`pages`) is then timed over HTTP by real uvicorn processes
(:mod:`dashboard_http`): ``first`` request on a fresh server, ``warm`` median
(cached), ``uncached`` median with the cache off. Targets (issue 11): every page
uncached < 300 ms at 10M on DuckDB, < 1 s at 100M on both engines.

    .venv/bin/python benchmarks/bench_scale.py [--scale 10m|100m|all]
        [--engine duckdb|postgres|all] [--sales N] [--repeats N] [--json]

``--sales 200000`` is a smoke test: 200k sales through the pipeline and 2M direct.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import duckdb
import numpy as np
import polars as pl

from bench_load import brewline_run
from brewline.keys import file_id, sale_key_base, stable_key
from brewline.load import open_warehouse
from brewline.load.migrations import SCHEMA_VERSION
from brewline.synth import SynthSpec, branch_profiles, file_name_for, generate_landing
from dashboard_http import machine, time_pages

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"
PII_KEY = "bench-scale-key-0123456789"  # synthetic data: a public key is fine
START = dt.date(2024, 11, 1)  # synth's default start: both warehouses end on the same day
PIPELINE_BRANCHES, PIPELINE_SALES_PER_DAY = 100, 29_400  # the chain's ~294 sales a branch-day
DIRECT_BRANCHES, DIRECT_PER_BRANCH_DAY = 300, 300
DAYS_PER_CHUNK = 10  # direct rows are made ~1M sales at a time, in date order
GENERATOR = 1  # bump when the direct generator changes, so cached warehouses are rebuilt
TARGETS_MS = {"10m": 300.0, "100m": 1000.0}
PG_BYTES_PER_SALE = 400  # ~330 B measured (sale + 2.5 lines + WAL); the disk check's margin


# -- cache markers ------------------------------------------------------------------------


def _marker(name: str) -> Path:
    return DATA / f"{name}.done"


def cached(name: str, params: dict[str, Any], upgrade: str | None = None) -> dict[str, Any] | None:
    """The figures recorded when ``name`` was built with ``params``, or None (rebuild).

    With ``upgrade`` (the warehouse's location), a build of an older schema is
    upgraded in place instead, as ``brewline init`` would (the migration fills
    new tables such as the marts from the facts), and the marker says so: made
    rows stay valid across schema versions, and remaking 100M of them is slow.
    """
    try:
        found: dict[str, Any] = json.loads(_marker(name).read_text())
    except (OSError, ValueError):
        return None
    built = found.get("params", {})
    if built == params:
        return found
    older = {**built, "schema_version": params.get("schema_version")} == params
    if upgrade is None or not older or built.get("schema_version", 0) > SCHEMA_VERSION:
        return None
    print(f"upgrading {name} to schema {SCHEMA_VERSION}...", file=sys.stderr)
    started = time.perf_counter()
    with open_warehouse(upgrade) as wh:
        wh.ensure_schema(upgrade=True)
    figures = {k: v for k, v in found.items() if k != "params"}
    figures["upgrade_s"] = round(time.perf_counter() - started, 1)
    return mark(name, params, figures)


def mark(name: str, params: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    """Written last: a build killed half-way leaves no marker and is rebuilt next time."""
    _marker(name).write_text(json.dumps({"params": params, **figures}, indent=2, default=str))
    return {"params": params, **figures}


def _label(sales: int) -> str:
    for unit, size in (("m", 1_000_000), ("k", 1_000)):
        if sales >= size and sales % size == 0:
            return f"{sales // size}{unit}"
    return str(sales)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- through the pipeline -----------------------------------------------------------------


def pipeline_warehouse(sales: int) -> dict[str, Any]:
    """~``sales`` synthetic till sales loaded by one whole ``brewline run`` into DuckDB."""
    days = max(1, round(sales / PIPELINE_SALES_PER_DAY))
    name = f"scale-{_label(sales)}"
    landing = landing_files(name, days)
    warehouse = DATA / f"{name}.duckdb"
    params = {"landing": landing["params"], "schema_version": SCHEMA_VERSION, "pii_key": True}
    found = cached(name, params)
    if found is not None:
        return {**found, "location": str(warehouse), "reused": True}
    for stale in (warehouse, warehouse.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    print(f"loading {landing['files']:,} files with `brewline run`...", file=sys.stderr)
    run = brewline_run(Path(landing["folder"]), str(warehouse), key=PII_KEY)
    figures = {
        "sales": run["rows"],
        "files": landing["files"],
        "input_mb": landing["mb"],
        "generate_s": landing["generate_s"],
        "build_s": round(run["seconds"], 1),
        "sales_per_s": round(run["rows"] / run["seconds"]),
        "peak_rss_mb": round(run["rss_mb"]),
        "size_mb": round(_size(warehouse) / 1e6),
    }
    return {**mark(name, params, figures), "location": str(warehouse), "reused": False}


def landing_files(name: str, days: int) -> dict[str, Any]:
    """The till exports of 100 branches x ``days``, written a month at a time (bounded memory)."""
    folder = DATA / f"{name}-landing"
    params = {"branches": PIPELINE_BRANCHES, "days": days, "start": START.isoformat()}
    found = cached(f"{name}-landing", params)
    if found is not None:
        return found
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    for first in range(0, days, 30):  # a branch-day is the same file whatever the spec's span
        print(f"generating till exports: day {first + 1} of {days}...", file=sys.stderr)
        spec = SynthSpec(
            branches=PIPELINE_BRANCHES,
            start=START + dt.timedelta(days=first),
            days=min(30, days - first),
        )
        generate_landing(folder, spec)
    files = list(folder.glob("*.csv"))
    figures = {
        "folder": str(folder),
        "files": len(files),
        "mb": round(sum(f.stat().st_size for f in files) / 1e6),
        "generate_s": round(time.perf_counter() - started, 1),
    }
    return mark(f"{name}-landing", params, figures)


# -- star rows made directly ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """What a real load looks like, from a small sample loaded by the pipeline.

    ``baskets``: one row per sample sale (``basket_no, total, items``); ``lines``:
    its lines (``basket_no, product_key, quantity, unit_price, line_amount``);
    ``products``: ``dim_product`` rows; ``intraday``: 101 quantiles of when in its
    branch's trading day a sale happens (0 = first sale, 1 = last).
    """

    baskets: pl.DataFrame
    lines: pl.DataFrame
    products: pl.DataFrame
    intraday: list[float]


def pipeline_sample() -> Sample:
    """12 branches x 28 days (~100k sales) generated and loaded by the project's own code."""
    from brewline.config import Settings
    from brewline.pipeline import run

    with tempfile.TemporaryDirectory(prefix="brewline-sample-") as tmp:
        landing, warehouse = Path(tmp) / "landing", str(Path(tmp) / "sample.duckdb")
        generate_landing(landing, SynthSpec(branches=12, days=28, seed=11))
        run(Settings(landing=landing, warehouse=warehouse, quarantine=Path(tmp) / "q"), alert=False)
        with duckdb.connect(warehouse, read_only=True) as con:
            numbered = "SELECT sale_key, row_number() OVER (ORDER BY sale_key) - 1 AS basket_no"
            baskets = con.sql(
                f"SELECT n.basket_no, s.total, s.items FROM fact_sale s "
                f"JOIN ({numbered} FROM fact_sale) n USING (sale_key) ORDER BY n.basket_no"
            ).pl()
            lines = con.sql(
                f"SELECT n.basket_no, l.product_key, l.quantity, l.unit_price, l.line_amount "
                f"FROM fact_sale_line l JOIN ({numbered} FROM fact_sale) n USING (sale_key)"
            ).pl()
            products = con.sql("SELECT * FROM dim_product").pl()
            (intraday,) = con.execute(
                """SELECT quantile_cont(f, [x / 100.0 FOR x IN range(101)]) FROM (
                       SELECT (epoch(sold_at) - min(epoch(sold_at)) OVER w)
                              / greatest(max(epoch(sold_at)) OVER w
                                         - min(epoch(sold_at)) OVER w, 1) AS f
                       FROM fact_sale WINDOW w AS (PARTITION BY file_id))"""
            ).fetchone() or ([],)
    return Sample(baskets, lines, products, [float(q) for q in intraday])


def plan_files(sales: int, branches: int, days: int, end: dt.date) -> pl.DataFrame:
    """One row per branch-day (a till file): its keys, opening hours and number of sales.

    Branch ``i`` is synth's branch ``i`` (name, size, card share, hours); a day's
    sales follow the branch's size, fewer at weekends, with some noise, scaled so
    the whole adds up to about ``sales``. Keys are the pipeline's: ``file_id`` of
    the file's name and a stand-in hash of its content, ``sale_key_base`` of its name.
    """
    profiles = branch_profiles(SynthSpec(branches=branches))
    start = end - dt.timedelta(days=days - 1)
    rng = np.random.default_rng(GENERATOR)
    rows: list[tuple[Any, ...]] = []
    for d in range(days):  # a loop over days and branches (333k files), not sales
        day = start + dt.timedelta(days=d)
        weekday = day.weekday()
        for b, profile in enumerate(profiles):
            opening, closing = profile.hours[weekday]
            name = file_name_for(profile.name, day, profile.opening(day))
            sha = hashlib.sha256(name.encode()).hexdigest()
            rows.append(
                (len(rows), b, d, day, int(day.strftime("%Y%m%d")), name, sha,
                 file_id(name, sha), sale_key_base(name), stable_key("branch", profile.name),
                 opening, closing - opening, profile.traffic * (0.85 if weekday >= 5 else 1.0),
                 round(profile.card_share * 1000))
            )  # fmt: skip
    columns = [
        "file_no", "branch_no", "day_no", "day", "date_key", "source_name", "sha256",
        "file_id", "sale_key_base", "branch_key", "open_min", "span_min", "traffic",
        "card_permille",
    ]  # fmt: skip
    files = pl.DataFrame(rows, schema=columns, orient="row")
    raw = files["traffic"].to_numpy() * rng.lognormal(0.0, 0.12, files.height)
    counts = np.maximum(1, np.round(raw * sales / raw.sum())).astype(np.int64)
    pools = np.array([np.clip(p.traffic * p.card_share * 15, 20, 3000) for p in profiles])
    return files.with_columns(
        sales=pl.Series(counts),
        date_key=pl.col("date_key").cast(pl.Int32),
        pool=pl.Series(pools[files["branch_no"].to_numpy()].astype(np.int64)),
    ).drop("traffic")


def _sales_sql(branches: int, baskets: int, intraday: list[float]) -> str:
    """One chunk of days' sales, in file then line order, with the basket each one bought.

    Every random choice is a slice of one 64-bit hash of (file, line), so the rows
    are the same on every build. Card sales are by regulars: a Zipf-like rank in
    their branch's pool, 4% of them visitors from one of the next 4 branches.
    """
    quantiles = "[" + ", ".join(f"{q:.4f}" for q in intraday) + "]"
    where = f"list_extract({quantiles}, CAST(floor(100.0 * (i + 0.5) / sales) AS INTEGER) + 1)"
    visitor = "CASE WHEN (h >> 20) % 100 < 4 THEN 1 + (h >> 27) % 4 ELSE 0 END"
    home = f"(branch_no + {visitor}) % {branches}"
    rank = "CAST(floor(exp(((h >> 32) % 1000000) / 1000000.0 * ln(pool))) AS BIGINT) - 1"
    return f"""
        SELECT sale_key_base + i + 1 AS sale_key, file_id, CAST(i + 1 AS INTEGER) AS source_line,
               branch_key, date_key,
               CAST(day AS TIMESTAMP) + to_minutes(open_min + CAST(floor(span_min * {where})
                                                   AS BIGINT)) AS sold_at,
               CASE WHEN h % 1000 < card_permille THEN 'CARD' ELSE 'CASH' END AS payment_method,
               CASE WHEN h % 1000 < card_permille
                    THEN CAST(hash({home}, {rank}, 'customer') >> 1 AS BIGINT) END AS customer_key,
               CAST((h >> 10) % {baskets} AS BIGINT) AS basket_no, file_no, i
        FROM (SELECT *, hash(file_no, i, 'sale') AS h
              FROM (SELECT *, unnest(range(sales)) AS i FROM gen_file
                    WHERE day_no >= $first AND day_no < $stop))
    """


def direct_duckdb(sales: int, sample: Sample | None = None) -> dict[str, Any]:
    """~``sales`` star rows made in DuckDB SQL, into a warehouse the migrations created."""
    name = f"scale-{_label(sales)}-direct"
    warehouse = DATA / f"{name}.duckdb"
    params = _direct_params(sales)
    found = cached(name, params, upgrade=str(warehouse))
    if found is not None:
        return {**found, "location": str(warehouse), "reused": True}
    for stale in (warehouse, warehouse.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    sample = sample or pipeline_sample()
    files = plan_files(sales, params["branches"], params["days"], _end())
    with open_warehouse(str(warehouse)) as wh:
        wh.ensure_schema(upgrade=True)
    planned = time.perf_counter()
    with duckdb.connect(str(warehouse)) as con:
        _generate(con, files, sample, params["branches"])
        generated = time.perf_counter()
        con.execute("CHECKPOINT")
        counts = _counts(con)
    figures = {
        **counts,
        "plan_s": round(planned - started, 1),
        "generate_s": round(generated - planned, 1),
        "marts_s": rebuild_marts(str(warehouse)),
        "build_s": round(time.perf_counter() - started, 1),
        "size_mb": round(_size(warehouse) / 1e6),
    }
    return {**mark(name, params, figures), "location": str(warehouse), "reused": False}


def _direct_params(sales: int) -> dict[str, Any]:
    days = max(1, round(sales / (DIRECT_BRANCHES * DIRECT_PER_BRANCH_DAY)))
    return {
        "sales": sales,
        "branches": DIRECT_BRANCHES,
        "days": days,
        "end": _end().isoformat(),
        "generator": GENERATOR,
        "schema_version": SCHEMA_VERSION,
    }


def _end() -> dt.date:
    """The last trading day of the 10M pipeline warehouse: every warehouse ends there."""
    return START + dt.timedelta(days=round(10_000_000 / PIPELINE_SALES_PER_DAY) - 1)


def _generate(
    con: duckdb.DuckDBPyConnection, files: pl.DataFrame, sample: Sample, branches: int
) -> None:
    from brewline.transform.star import calendar

    con.register("gen_file_frame", files.to_arrow())
    con.execute("CREATE TEMP TABLE gen_file AS SELECT * FROM gen_file_frame")
    con.register("basket", sample.baskets.to_arrow())
    con.register("basket_line", sample.lines.to_arrow())
    sql = _sales_sql(branches, sample.baskets.height, sample.intraday)
    days = files["day_no"].n_unique()
    for first in range(0, days, DAYS_PER_CHUNK):
        print(f"direct star rows: day {first + 1} of {days}...", file=sys.stderr)
        stop = first + DAYS_PER_CHUNK
        con.execute(f"CREATE OR REPLACE TEMP TABLE chunk AS {sql}", {"first": first, "stop": stop})
        con.execute(
            """INSERT INTO fact_sale BY NAME
               SELECT c.sale_key, c.file_id, c.source_line, c.branch_key, c.date_key, c.sold_at,
                      c.payment_method, b.total, b.items, c.customer_key
               FROM chunk c JOIN basket b USING (basket_no) ORDER BY c.file_no, c.i"""
        )
        con.execute(
            """INSERT INTO fact_sale_line BY NAME
               SELECT c.sale_key, l.product_key, c.file_id, c.branch_key, c.date_key,
                      l.quantity, l.unit_price, l.line_amount
               FROM chunk c JOIN basket_line l USING (basket_no)
               ORDER BY c.file_no, c.i, l.product_key"""
        )
    con.execute("DROP TABLE chunk")
    dates = calendar(files.select(pl.col("date_key").unique()))
    con.register("dates", dates.to_arrow())
    con.register("products", sample.products.to_arrow())
    con.register("branches", _branches(files).to_arrow())
    for statement in _DIMENSIONS_AND_LEDGER:
        con.execute(statement)


def _branches(files: pl.DataFrame) -> pl.DataFrame:
    names = [p.name for p in branch_profiles(SynthSpec(branches=files["branch_no"].n_unique()))]
    keys = [stable_key("branch", n) for n in names]
    return pl.DataFrame({"branch_key": keys, "branch_name": names})


_RUN_ID = "'bench-' || strftime(day, '%Y%m%d')"
_LOADED_AT = "CAST(day AS TIMESTAMP) + INTERVAL 30 HOUR"  # each day's files load at 06:00 next day
_DIMENSIONS_AND_LEDGER = [
    "INSERT INTO dim_branch BY NAME SELECT * FROM branches",
    "INSERT INTO dim_product BY NAME SELECT * FROM products",
    "INSERT INTO dim_date BY NAME SELECT * FROM dates",
    """INSERT INTO dim_customer BY NAME
       SELECT customer_key, MIN(sold_at) AS first_seen_at FROM fact_sale
       WHERE customer_key IS NOT NULL GROUP BY customer_key""",
    f"""INSERT INTO etl_run BY NAME
        SELECT {_RUN_ID} AS run_id, {_LOADED_AT} AS started_at,
               {_LOADED_AT} + INTERVAL 2 MINUTE AS finished_at, 'succeeded' AS status,
               'bench' AS host, 1 AS pid, COUNT(*) AS files_loaded, 0 AS files_skipped,
               0 AS files_replaced, 0 AS files_rejected, SUM(sales) AS rows_read,
               SUM(sales) AS rows_loaded, 0 AS rows_rejected, 120.0 AS seconds, 0 AS files_failed
        FROM gen_file GROUP BY day""",
    f"""INSERT INTO etl_file BY NAME
        SELECT file_id, source_name, sha256, sales * 92 AS size_bytes, 'standard' AS layout,
               'loaded' AS state, sales AS rows_read, sales AS rows_loaded, 0 AS rows_rejected,
               0 AS skipped_lines, {_RUN_ID} AS run_id,
               {_LOADED_AT} + to_seconds(branch_no % 120) AS recorded_at, 0.04 AS seconds
        FROM gen_file""",
    """INSERT INTO etl_file_branch_day BY NAME
       SELECT branch_key, date_key, file_id, sales FROM gen_file""",
]


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = ("fact_sale", "fact_sale_line", "dim_customer", "etl_file")
    row = con.execute(
        "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in tables)
    ).fetchone()
    sales, lines, customers, files = row or (0, 0, 0, 0)
    return {"sales": sales, "lines": lines, "customers": customers, "files": files}


def rebuild_marts(location: str) -> float:
    """Seconds ``rebuild_marts()`` took to fill the marts of rows made directly."""
    with open_warehouse(location) as wh:
        started = time.perf_counter()
        wh.rebuild_marts()
        return round(time.perf_counter() - started, 1)


# -- the same rows in PostgreSQL --------------------------------------------------------------

PG_TABLES = (
    "dim_branch", "dim_product", "dim_date", "dim_customer", "etl_run", "etl_file",
    "etl_file_branch_day", "fact_sale", "fact_sale_line",
)  # fmt: skip


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Any]:
    """The benchmark's cluster in ./bench-data/scale-pg, started, and stopped (kept) after."""
    from brewline.pgcluster import PostgresServer

    server = PostgresServer(durable=True, root=DATA / "scale-pg")
    try:
        yield server
    finally:
        server.stop()


def direct_postgres(sales: int, server: Any, source: dict[str, Any]) -> dict[str, Any]:
    """The rows of the DuckDB direct warehouse copied into PostgreSQL (built with migrations)."""
    name = f"scale-{_label(sales)}-direct-pg"
    database = f"brewline_{_label(sales)}"
    url = server.url.rsplit("/", 1)[0] + f"/{database}"
    params = {**_direct_params(sales), "source_build_s": source["build_s"]}
    found = cached(name, params, upgrade=url)
    if found is not None:
        return {**found, "location": url, "reused": True}
    _mark_stale(name)
    need = sales * PG_BYTES_PER_SALE
    free = shutil.disk_usage(DATA).free
    if free < need:
        raise SystemExit(f"PostgreSQL {name} needs ~{need / 1e9:.0f} GB, {free / 1e9:.0f} free")
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.execute(f"CREATE DATABASE {database}")
    started = time.perf_counter()
    with open_warehouse(url) as wh:
        wh.ensure_schema(upgrade=True)
    seconds = copy_tables(Path(source["location"]), url, server.root)
    copied = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM ANALYZE")
    analyzed = time.perf_counter()
    figures = {
        "sales": source["sales"],
        "lines": source["lines"],
        "copy_s": round(copied - started, 1),
        "copy_s_by_table": seconds,
        "vacuum_analyze_s": round(analyzed - copied, 1),
        "marts_s": rebuild_marts(url),
        "build_s": round(time.perf_counter() - started, 1),
        "size_mb": _pg_sizes(url),
        "wal_and_cluster_mb": round(_size(server.root) / 1e6),
    }
    return {**mark(name, params, figures), "location": url, "reused": False}


def _mark_stale(name: str) -> None:
    _marker(name).unlink(missing_ok=True)


def copy_tables(source: Path, url: str, folder: Path) -> dict[str, float]:
    """Every table from the DuckDB file into PostgreSQL; the two fact tables side by side.

    DuckDB writes each table as CSV into a FIFO that the server itself reads with
    ``COPY ... FREEZE`` after a ``TRUNCATE`` in the same transaction: no Python in
    the data path, and the rows land frozen so ``VACUUM`` has little left to do.
    """
    seconds: dict[str, float] = {}
    with duckdb.connect(str(source), read_only=True) as con:
        for table in PG_TABLES[:-2]:
            seconds[table] = _copy_table(con.cursor(), url, table, folder)
        threads = [
            threading.Thread(
                target=lambda t=table: seconds.__setitem__(
                    t, _copy_table(con.cursor(), url, t, folder)
                )
            )
            for table in PG_TABLES[-2:]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    missing = [t for t in PG_TABLES if t not in seconds]
    if missing:
        raise SystemExit(f"copying {missing} into PostgreSQL failed (see above)")
    return seconds


def _copy_table(con: duckdb.DuckDBPyConnection, url: str, table: str, folder: Path) -> float:
    import psycopg

    fifo = folder / f"{table}.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    columns = ", ".join(row[0] for row in con.execute(f"DESCRIBE {table}").fetchall())
    failed: list[BaseException] = []

    def server_reads() -> None:
        try:
            with psycopg.connect(url) as pg:  # one transaction: TRUNCATE lets COPY FREEZE
                pg.execute(f"TRUNCATE {table}")
                pg.execute(f"COPY {table} ({columns}) FROM '{fifo}' (FORMAT csv, FREEZE)")
        except psycopg.Error as exc:
            failed.append(exc)
            # Unblock DuckDB if it is still waiting for a reader: it then fails on the pipe.
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))

    started = time.perf_counter()
    reader = threading.Thread(target=server_reads)
    reader.start()
    try:
        con.execute(f"COPY (SELECT {columns} FROM {table}) TO '{fifo}' (FORMAT csv, HEADER false)")
    except duckdb.Error:
        if not failed:
            raise
    finally:
        reader.join()
        fifo.unlink(missing_ok=True)
    if failed:
        raise SystemExit(f"COPY {table} into PostgreSQL: {failed[0]}")
    print(f"copied {table} into PostgreSQL", file=sys.stderr)
    return round(time.perf_counter() - started, 1)


def _pg_sizes(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relname = ANY(%s) ORDER BY 2 DESC",
            (list(PG_TABLES),),
        ).fetchall()
        (database,) = con.execute("SELECT pg_database_size(current_database())").fetchone() or (0,)
    return {"database": round(database / 1e6), **{str(n): round(s / 1e6) for n, s in rows}}


# -- the pages ------------------------------------------------------------------------------------


def pages(last_day: dt.date) -> list[tuple[str, str]]:
    """Every page: sales unfiltered, for one branch and for one month; operations; the rest."""
    end = last_day.replace(day=1) - dt.timedelta(days=1)  # the last whole month
    start = end.replace(day=1)
    return [
        ("sales, all", "/"),
        ("sales, one branch", "/?branch=Chesterfield"),  # synth's branch 0: in every warehouse
        ("sales, one month", f"/?start={start}&end={end}"),
        ("operations", "/operations"),
        ("totesys", "/totesys"),  # reads only the totesys star (empty here): for completeness
        ("/metrics", "/metrics"),
    ]


@dataclass
class Measured:
    label: str
    target_ms: float
    build: dict[str, Any]
    pages: list[dict[str, object]] = field(default_factory=list)


def measure(label: str, build: dict[str, Any], last_day: dt.date, repeats: int) -> Measured:
    """Time the pages of one warehouse; its figures are saved and shown at once.

    Saved in ./bench-data/scale-results.json as each warehouse is done, so a
    long run (hours at 100M on PostgreSQL) that is stopped keeps what it measured.
    """
    print(f"timing the pages of {label}...", file=sys.stderr)
    target = TARGETS_MS["10m" if build["sales"] < 50_000_000 else "100m"]
    done = Measured(label, target, build, time_pages(build["location"], pages(last_day), repeats))
    _save(done)
    report([done], sys.stderr)
    return done


def _save(done: Measured) -> None:
    saved = DATA / "scale-results.json"
    try:
        previous = json.loads(saved.read_text())
    except (OSError, ValueError):
        previous = {}
    figures = {"nproc": os.cpu_count(), "load_average": os.getloadavg(), **_figures(done)}
    saved.write_text(json.dumps({**previous, done.label: figures}, indent=2, default=str))


def _figures(r: Measured) -> dict[str, Any]:
    return {"target_ms": r.target_ms, "build": r.build, "pages": r.pages}


def _last_day(sales: int) -> dt.date:
    return START + dt.timedelta(days=max(1, round(sales / PIPELINE_SALES_PER_DAY)) - 1)


def run(args: argparse.Namespace) -> list[Measured]:
    small = args.sales or 10_000_000
    big = 10 * small
    engines = ["duckdb", "postgres"] if args.engine == "all" else [args.engine]
    results: list[Measured] = []
    DATA.mkdir(exist_ok=True)
    if args.scale in ("10m", "all"):
        built = pipeline_warehouse(small)
        results.append(measure(f"{_label(small)} duckdb", built, _last_day(small), args.repeats))
    if args.scale in ("100m", "all"):
        source = direct_duckdb(big)
        if "duckdb" in engines:
            results.append(measure(f"{_label(big)} duckdb", source, _end(), args.repeats))
        if "postgres" in engines:
            with postgres_cluster() as server:
                built = direct_postgres(big, server, source)
                results.append(measure(f"{_label(big)} postgres", built, _end(), args.repeats))
    return results


def report(results: list[Measured], out: TextIO = sys.stdout) -> None:
    """The figures as a table that fits 80 columns."""
    print(f"nproc {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; {machine()}", file=out)
    for r in results:
        b = r.build
        how = "reused" if b.get("reused") else f"built in {b['build_s']} s"
        print(f"\n{r.label}: {b['sales']:,} sales, {b.get('size_mb')} MB, {how}", file=out)
        print(f"{'page':<18} {'KB':>4} {'first ms':>9} {'warm ms':>8} {'uncached':>9} "
              f"{'db ms':>8}  target <{r.target_ms:.0f}", file=out)  # fmt: skip
        for p in r.pages:
            worst = max(float(str(p["first_ms"])), float(str(p["uncached_ms"])))
            db = p["uncached_db_ms"]
            print(
                f"{p['page']:<18} {p['kb']:>4} {p['first_ms']:>9.0f} {p['warm_ms']:>8.1f} "
                f"{p['uncached_ms']:>9.0f} {'' if db is None else f'{db:.0f}':>8}  "
                f"{'ok' if worst < r.target_ms else 'SLOW'}",
                file=out,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["10m", "100m", "all"], default="all")
    parser.add_argument("--engine", choices=["duckdb", "postgres", "all"], default="all")
    parser.add_argument(
        "--sales", type=int, metavar="N", help="sales through the pipeline (10M); 10x made directly"
    )
    parser.add_argument("--repeats", type=int, default=5, metavar="N", help="samples per median")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args)
    if args.json:
        figures = {
            "nproc": os.cpu_count(),
            "machine": machine(),
            "load_average": os.getloadavg(),
            "seconds": round(time.perf_counter() - started),
            "warehouses": {r.label: _figures(r) for r in results},
        }
        print(json.dumps(figures, indent=2, default=str))
        return
    report(results)


if __name__ == "__main__":
    main()
