"""Prometheus metrics read from the warehouse ledger, for the dashboard and batch tools.

:class:`LedgerCollector` reads the ledger afresh on every scrape (a read-only
connection that is closed straight after), so the numbers are whatever the
warehouse says now, whichever process loaded it::

    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> registry = CollectorRegistry()
    >>> registry.register(LedgerCollector.for_location("brewline.duckdb"))  # doctest: +SKIP
    >>> print(generate_latest(registry).decode())  # doctest: +SKIP
    brewline_up 1.0
    brewline_files{state="loaded"} 33.0
    ...

Metrics (all derived from ``etl_file``, ``etl_run`` and ``etl_file_branch_day``):

- ``brewline_up`` — 1 when the ledger could be read, else 0 (and nothing else is reported);
- ``brewline_files{state}`` — file versions in the ledger per state (loaded,
  skipped, replaced, rejected; always all four);
- ``brewline_rows_read_total``, ``brewline_rows_loaded_total``,
  ``brewline_rows_rejected_total`` — rows over every file version ever recorded
  (ledger rows are never deleted, so these only grow);
- ``brewline_run_duration_seconds{status}`` — histogram of finished runs' durations;
- ``brewline_last_load_timestamp_seconds{branch}`` — when the newest file that
  still supplies the branch's sales was committed (Unix time, UTC);
- ``brewline_last_trading_day_timestamp_seconds{branch}`` — midnight (UTC) of the
  newest trading day loaded for the branch, for freshness alerts.

Labels are ledger states, run statuses and branch names only: no file content,
no customer data, and the warehouse location never appears (it may hold a password).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from brewline.errors import BrewlineError
from brewline.load import Warehouse, open_warehouse
from brewline.totesys.cursor import watermark as cursor_watermark
from brewline.vocabulary import LEDGER_STATES, key_date

__all__ = ["RUN_BUCKETS", "LedgerCollector", "ledger_metrics"]

log = logging.getLogger("brewline.metrics")

RUN_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Upper bounds (seconds) of the run-duration histogram; ``+Inf`` is added."""

OpenLedger = Callable[[], AbstractContextManager[Warehouse]]


class LedgerCollector(Collector):
    """A Prometheus collector that reads the ledger on each scrape.

    ``open_ledger`` returns a context manager yielding an open warehouse; it is
    entered once per scrape and closed straight after. Any Brewline error while
    opening or reading (busy, unreachable, no warehouse yet) gives ``brewline_up 0``.
    """

    def __init__(self, open_ledger: OpenLedger):
        self._open = open_ledger

    @classmethod
    def for_location(cls, location: str, *, lock_timeout: float = 1.0) -> LedgerCollector:
        """A collector opening ``location`` (DuckDB path or PostgreSQL URL) read-only."""
        return cls(lambda: open_warehouse(location, read_only=True, lock_timeout=lock_timeout))

    def collect(self) -> Iterator[Metric]:
        families: list[Metric] = []
        up = 0
        try:
            with self._open() as wh:
                families, up = ledger_metrics(wh), 1
        except BrewlineError as exc:
            # Messages name the (redacted) warehouse, never a row; say why we are down.
            log.warning("metrics: cannot read the ledger: %s", exc)
        yield GaugeMetricFamily("brewline_up", "1 when the warehouse ledger could be read.", up)
        yield from families

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: describing would make registration read the warehouse."""
        return iter(())


def ledger_metrics(wh: Warehouse) -> list[Metric]:
    """Every ledger metric but ``brewline_up``, from an open warehouse (see module doc)."""
    return [
        _files_by_state(wh),
        *_row_counters(wh),
        _run_durations(wh),
        *_branch_freshness(wh),
        *_source_watermarks(wh),
    ]


def _files_by_state(wh: Warehouse) -> Metric:
    found = dict(wh.query("SELECT state, COUNT(*) AS n FROM etl_file GROUP BY state").rows())
    family = GaugeMetricFamily(
        "brewline_files", "File versions in the ledger, by state.", labels=["state"]
    )
    # Every ledger state is reported, even with no file in it: absent series confuse alerts.
    for state in sorted(set(LEDGER_STATES) | set(found), key=_state_order):
        family.add_metric([str(state)], float(found.get(state, 0)))
    return family


def _state_order(state: str) -> tuple[int, str]:
    return (LEDGER_STATES.index(state) if state in LEDGER_STATES else len(LEDGER_STATES), state)


def _row_counters(wh: Warehouse) -> list[Metric]:
    sums = wh.query(
        "SELECT CAST(COALESCE(SUM(rows_read), 0) AS BIGINT) AS rows_read, "
        "CAST(COALESCE(SUM(rows_loaded), 0) AS BIGINT) AS rows_loaded, "
        "CAST(COALESCE(SUM(rows_rejected), 0) AS BIGINT) AS rows_rejected FROM etl_file"
    ).row(0, named=True)
    return [
        CounterMetricFamily(f"brewline_{name}", text, value=float(sums[name]))
        for name, text in (
            ("rows_read", "Data rows read from every file version recorded in the ledger."),
            ("rows_loaded", "Rows loaded into the warehouse, over every file version."),
            ("rows_rejected", "Rows rejected (quarantined or whole file refused)."),
        )
    ]


def _run_durations(wh: Warehouse) -> Metric:
    """Cumulative bucket counts computed in SQL: one row per status, whatever the run count."""
    buckets = ", ".join(
        f"SUM(CASE WHEN seconds <= {bound!r} THEN 1 ELSE 0 END) AS le_{i}"
        for i, bound in enumerate(RUN_BUCKETS)
    )
    rows = wh.query(
        f"SELECT status, COUNT(*) AS runs, SUM(seconds) AS seconds, {buckets} FROM etl_run "
        "WHERE finished_at IS NOT NULL AND seconds IS NOT NULL GROUP BY status ORDER BY status"
    ).rows(named=True)
    family = HistogramMetricFamily(
        "brewline_run_duration_seconds",
        "Wall-clock duration of finished runs (etl_run.seconds), by status.",
        labels=["status"],
    )
    for row in rows:
        counts = [(repr(b), float(row[f"le_{i}"])) for i, b in enumerate(RUN_BUCKETS)]
        family.add_metric(
            [row["status"]], [*counts, ("+Inf", float(row["runs"]))], float(row["seconds"])
        )
    return family


def _branch_freshness(wh: Warehouse) -> list[Metric]:
    rows = wh.branch_freshness().select("branch", "last_loaded_at", "last_key").rows()
    loaded = GaugeMetricFamily(
        "brewline_last_load_timestamp_seconds",
        "When the newest file still supplying the branch's sales was committed (Unix time).",
        labels=["branch"],
    )
    trading = GaugeMetricFamily(
        "brewline_last_trading_day_timestamp_seconds",
        "Midnight UTC of the newest trading day loaded for the branch (Unix time).",
        labels=["branch"],
    )
    for branch, loaded_at, last_key in rows:
        loaded.add_metric([branch], _unix(loaded_at))
        midnight = dt.datetime.combine(key_date(int(last_key)), dt.time())
        trading.add_metric([branch], _unix(midnight))
    return [loaded, trading]


def _source_watermarks(wh: Warehouse) -> list[Metric]:
    """Where each incremental source's tables got to, and when a sync last moved them."""
    watermark = GaugeMetricFamily(
        "brewline_source_watermark_timestamp_seconds",
        "An incremental source's watermark per table (Unix time; the source's UTC clock).",
        labels=["source", "table"],
    )
    synced = GaugeMetricFamily(
        "brewline_source_synced_timestamp_seconds",
        "When a sync last advanced the table's watermark (Unix time).",
        labels=["source", "table"],
    )
    for source, name, value, updated_at in wh.query(
        "SELECT source, name, value, updated_at FROM etl_cursor ORDER BY 1, 2"
    ).rows():
        covered = cursor_watermark(str(value))
        if covered is not None:  # else a cursor that is not a time
            watermark.add_metric([source, name], _unix(covered))
        if updated_at is not None:
            synced.add_metric([source, name], _unix(updated_at))
    return [watermark, synced]


def _unix(moment: dt.datetime) -> float:
    """Ledger times are naive UTC."""
    return moment.replace(tzinfo=dt.UTC).timestamp()
