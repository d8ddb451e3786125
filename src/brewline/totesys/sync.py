"""One totesys sync: extract -> lake raw zone -> model -> lake star zone -> warehouse.

    >>> report = sync("postgresql://...", "lake", "brewline.duckdb")  # doctest: +SKIP
    >>> report.rows_extracted, report.star_rows["fact_sales_order"]  # doctest: +SKIP

The stages are also callable apart (:func:`extract_stage`, :func:`model_stage`,
:func:`load_stage`) for people who schedule them apart. Each is atomic and
idempotent on its own:

- extract writes immutable raw files and, last, a manifest; the watermarks
  move only after that (see :mod:`brewline.totesys.extract`);
- model rebuilds the star from every manifest's files and writes the star zone
  as a new generation of files, then ``star/_current.json`` naming them (last);
- load replaces the warehouse's ``totesys_*`` tables with the current star
  generation in one transaction, and records which generation it loaded, so
  loading the same lake twice changes nothing and a sync with nothing new
  stops after the extract.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brewline.schema import TOTESYS
from brewline.totesys.extract import TABLES, Extract, extract
from brewline.totesys.lake import Lake, open_lake
from brewline.totesys.model import STAR_TABLES, model, versions
from brewline.vocabulary import RunState

if TYPE_CHECKING:
    import polars as pl

    from brewline.load.roles import Warehouse

__all__ = ["SyncReport", "extract_stage", "load_stage", "model_stage", "sync"]

log = logging.getLogger("brewline")

CURRENT = "star/_current.json"
_LOADED_META = "totesys_star_generation"


@dataclass
class SyncReport:
    """What a sync did, stage by stage."""

    lake: str
    extract_id: str | None = None
    lag_seconds: float | None = None
    """How far the extract's bound was behind the source's clock (open transactions)."""
    rows_extracted: dict[str, int] = field(default_factory=dict)
    generation: str | None = None
    star_rows: dict[str, int] = field(default_factory=dict)
    loaded: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lake": self.lake,
            "extract_id": self.extract_id,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "rows_extracted": self.rows_extracted,
            "generation": self.generation,
            "star_rows": self.star_rows,
            "loaded": self.loaded,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def sync(
    source_url: str, lake_location: str | Path, warehouse: Warehouse, *, full: bool = False
) -> SyncReport:
    """Extract, model and load once; the model and load are skipped when nothing is new.

    Each sync is a run in the ledger (``etl_run``, id ``sync-…``): ``status`` lists
    it with the rows it extracted, and a sync that fails is recorded as failed.
    """
    lake = open_lake(lake_location)
    report = SyncReport(str(lake))
    run_id = f"sync-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    with warehouse.held():
        warehouse.ensure_schema()
        warehouse.begin_run(run_id, socket.gethostname(), os.getpid())
    try:
        _stages(source_url, lake, warehouse, report, full=full)
    except BaseException as exc:
        try:
            warehouse.finish_run(run_id, RunState.FAILED, {"error": str(exc)[:500]})
        except Exception as unrecorded:  # the failure being raised matters more
            log.warning("sync %s could not be recorded as failed: %s", run_id, unrecorded)
        raise
    rows = sum(report.rows_extracted.values())
    totals: dict[str, float] = {"rows_read": rows, "rows_loaded": rows, "rows_rejected": 0}
    totals["seconds"] = round(sum(report.seconds.values()), 3)
    warehouse.finish_run(run_id, RunState.SUCCEEDED, totals)
    return report


def _stages(
    source_url: str, lake: Lake, warehouse: Warehouse, report: SyncReport, *, full: bool
) -> None:
    # sync() made sure of the schema; the stage functions do it for callers using them apart
    done = _timed(report, "extract", lambda: extract(source_url, lake, warehouse, full=full))
    report.extract_id = done.extract_id
    report.lag_seconds = done.lag_seconds
    report.rows_extracted = {t: int(info["rows"]) for t, info in done.tables.items()}
    current = _current(lake)
    if done.rows or current is None:
        current = _timed(report, "model", lambda: model_stage(lake))
    report.generation = current["generation"]
    report.star_rows = dict(current["rows"])
    report.loaded = _timed(report, "load", lambda: load_stage(lake, warehouse))


def extract_stage(
    source_url: str, lake: Lake, warehouse: Warehouse, *, full: bool = False
) -> Extract:
    with warehouse.held():
        warehouse.ensure_schema()
    return extract(source_url, lake, warehouse, full=full)


def model_stage(lake: Lake) -> dict[str, Any]:
    """Rebuild the star from the raw zone; write it as a new generation; return its pointer."""
    frames: dict[str, list[pl.DataFrame]] = defaultdict(list)
    manifests = lake.manifests()
    for manifest in manifests:
        for table, info in manifest["tables"].items():
            if info["key"]:
                frames[table].append(lake.get_parquet(info["key"]))
    star = model({t: versions(frames[t], t) for t in TABLES if frames[t]})
    generation = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    keys = {}
    for table in STAR_TABLES:
        keys[table] = f"star/{table}/generation={generation}/{table}.parquet"
        lake.put_parquet(keys[table], star[table])
    current = {
        "generation": generation,
        "tables": keys,
        "rows": {t: star[t].height for t in STAR_TABLES},
        "manifests": len(manifests),
    }
    previous = _current(lake)
    lake.put_json(CURRENT, current)  # last: the generation is whole
    _prune(lake, keep={generation, previous["generation"] if previous else generation})
    return current


def _prune(lake: Lake, keep: set[str]) -> None:
    """Delete star generations older than the previous one (a load may still be reading it)."""
    old = [
        key
        for key in lake.keys("star/")
        if "/generation=" in key and key.split("/generation=")[1].split("/")[0] not in keep
    ]
    if old:
        lake.delete(old)


def load_stage(lake: Lake, warehouse: Warehouse) -> bool:
    """Load the current star generation unless the warehouse already has it; True if loaded."""
    current = _current(lake)
    if current is None:
        return False
    with warehouse.held():
        warehouse.ensure_schema()
        if warehouse.get_meta(_LOADED_META) == current["generation"]:
            return False
        frames = {
            f"{TOTESYS}_{table}": lake.get_parquet(key) for table, key in current["tables"].items()
        }
        warehouse.replace_tables(frames)
        warehouse.set_meta(_LOADED_META, current["generation"])
    return True


def _current(lake: Lake) -> dict[str, Any] | None:
    data = lake.get_optional(CURRENT)
    return None if data is None else dict(json.loads(data))


def _timed(report: SyncReport, stage: str, work: Any) -> Any:
    started = time.perf_counter()
    try:
        return work()
    finally:
        report.seconds[stage] = time.perf_counter() - started
