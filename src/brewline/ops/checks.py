"""Data checks over a loaded warehouse: is every branch's data in, plausible and clean?

``run_checks`` asks five questions of the warehouse and answers each with
:class:`CheckResult` rows (``ok``, ``warn`` or ``fail``, per branch where that
makes sense), so a cron job can alert on failures and a person can read a table:

- ``freshness``: every branch has data for the *due day* (yesterday once the
  cut-off hour has passed, else the day before, by the clock or ``as_of``); a
  branch silent for longer than ``check_closed_after_days`` is a warning
  (closed?), not a failure, but when *no* branch has data for the due day the
  warehouse as a whole fails (deliveries or runs have stopped);
- ``volume``: no branch-day in the window is far below the branch's trailing mean;
  a window without any data is a warning, "nothing to compare", naming the
  ``--as-of`` that fits the data (as is the marts check's);
- ``new_branches`` / ``new_products``: what was first seen within the window
  (warnings: a new till, a typo, a new menu item);
- ``reject_rate``: rejected rows / rows read over the latest runs stays under a threshold;
- ``source_freshness``: each incremental source (totesys) had synced recently
  enough at ``as_of``;
- ``marts``: every mart equals its aggregate of the facts (see :mod:`brewline.marts`),
  and ``dim_customer`` its customers' first sightings, over the latest
  ``check_marts_days``; a difference means something wrote the tables outside
  the loader (or a loader defect);
- ``totesys_reconciliation`` (with ``check_totesys_source`` and ``check_totesys_lake``):
  per totesys table, the source's row count and newest ``last_updated`` equal the
  lake's current versions and the warehouse's distinct ids.

The window is the ``check_window_days`` trading days ending on the due day.
Thresholds are :class:`brewline.ops.settings.CheckSettings` (kept apart from
this module, so reading settings never needs Polars or a warehouse).
Results name branches, products, files, reasons and counts only, never row content.

    >>> from brewline.load import open_warehouse
    >>> with open_warehouse("brewline.duckdb", read_only=True) as wh:  # doctest: +SKIP
    ...     results = run_checks(wh, CheckSettings(), dt.date(2024, 11, 11))
    >>> [r.status for r in results if r.name == "freshness"]  # doctest: +SKIP
    ['ok', 'fail', 'ok']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import polars as pl

from brewline.load import Warehouse
from brewline.marts import BRANCH_DAY, CUSTOMER, FIRST_SIGHTINGS, MARTS, ROLLUPS, mismatch_sql
from brewline.ops.settings import CheckSettings
from brewline.totesys.cursor import watermark as cursor_watermark
from brewline.vocabulary import (
    BRANCH_TIMEZONE,
    branch_local,
    counted,
    date_key,
    due_day,
    item_label,
    key_date,
    local_now,
)

__all__ = [
    "CHECKS",
    "CheckResult",
    "Status",
    "due_day",
    "fitting_as_of",
    "local_now",
    "run_checks",
    "totesys_reconciliation",
]

Status = Literal["ok", "warn", "fail"]

CHECKS = (
    "freshness",
    "volume",
    "new_branches",
    "new_products",
    "reject_rate",
    "source_freshness",
    "marts",
    "totesys_reconciliation",
)
"""Check names, in the order results are returned."""


@dataclass(frozen=True)
class CheckResult:
    """One answer of one check: ``name`` (see :data:`CHECKS`), ``status``, ``subject``, ``detail``.

    ``subject`` is a branch, a product, a run id, or None for the warehouse as a
    whole; ``detail`` says what was found in words, without any row content.
    """

    name: str
    status: Status
    subject: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- dates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """The days a check run looks at: ``first..due``, and ``today`` (the as-of day)."""

    first: dt.date
    due: dt.date
    today: dt.date

    def __str__(self) -> str:
        return f"on {self.due}" if self.first == self.due else f"from {self.first} to {self.due}"


def fitting_as_of(warehouse: Warehouse) -> dt.date | None:
    """The ``as_of`` whose due day is the newest trading day loaded (None: nothing loaded).

    What to check a warehouse of old data with, e.g. the demo's, which is from 2024.
    """
    newest = warehouse.query("SELECT MAX(date_key) AS k FROM etl_file_branch_day")["k"][0]
    return None if newest is None else key_date(int(newest)) + dt.timedelta(days=1)


def _nothing_to_compare(warehouse: Warehouse, name: str, window: _Window) -> CheckResult:
    """A warning, not "ok": a check that compared nothing has not found the data right.

    Not a failure either: missing data is the freshness check's to fail.
    """
    fits = fitting_as_of(warehouse)
    hint = (
        "none loaded yet"
        if fits is None
        else f"newest trading day loaded {fits - dt.timedelta(days=1)}: try --as-of {fits}"
    )
    return CheckResult(name, "warn", None, f"nothing to compare: no data {window} ({hint})")


def _window(settings: CheckSettings, as_of: dt.date | dt.datetime) -> _Window:
    due = due_day(as_of, settings.check_cutoff_hour)
    today = branch_local(as_of).date() if isinstance(as_of, dt.datetime) else as_of
    return _Window(due - dt.timedelta(days=settings.check_window_days - 1), due, today)


# -- the checks --------------------------------------------------------------------------------


def run_checks(
    warehouse: Warehouse, settings: CheckSettings, as_of: dt.date | dt.datetime
) -> list[CheckResult]:
    """Run every check at ``as_of`` (see :func:`due_day`); results in :data:`CHECKS` order.

    Raises :class:`~brewline.errors.WarehouseError` when ``warehouse`` holds no
    Brewline schema (or one this Brewline cannot read).

        >>> run_checks(wh, CheckSettings(), dt.date(2024, 11, 11))[0]  # doctest: +SKIP
        CheckResult(name='freshness', status='ok', subject='Chesterfield', detail='...')
    """
    warehouse.check_schema()
    window = _window(settings, as_of)
    return [
        *_freshness_results(warehouse, settings, window),
        *_volume_results(warehouse, settings, window),
        *_new_branches(warehouse, window),
        *_new_products(warehouse, window),
        *_reject_rate(warehouse, settings),
        *_source_freshness(warehouse, settings, _judged_at(as_of, settings.check_cutoff_hour)),
        *_marts(warehouse, settings, window.due),
        *_reconciliation(warehouse, settings),
    ]


def _reconciliation(warehouse: Warehouse, settings: CheckSettings) -> list[CheckResult]:
    source, lake = settings.check_totesys_source, settings.check_totesys_lake
    if source is None or lake is None:
        return []
    return totesys_reconciliation(warehouse, source.get_secret_value(), lake)


def _marts(warehouse: Warehouse, settings: CheckSettings, due: dt.date) -> list[CheckResult]:
    """A failure per mart that differs from its aggregate of the facts, lately.

    The ``check_marts_days`` up to the due day, their months, and the customers
    who bought then: what the latest loads touched, at a cost that does not grow
    with the history (comparing all of 100M sales takes minutes and gigabytes).
    """
    window = _Window(due - dt.timedelta(days=settings.check_marts_days - 1), due, due)
    first, last = date_key(window.first), date_key(window.due)
    days = ("date_key BETWEEN ? AND ?", (first, last))
    buyers = "customer_key IN (SELECT customer_key FROM fact_sale WHERE date_key BETWEEN ? AND ?)"
    scopes = {BRANCH_DAY: (days, days), CUSTOMER: ((buyers, (first, last)),) * 2}
    finer = days
    for rollup in ROLLUPS:  # the periods around the window, and their rows one grain finer
        first, last = first // 100, last // 100
        periods = (f"{rollup.key} BETWEEN ? AND ?", (first, last))
        scopes[rollup.grain] = (periods, (finer[0], (first * 100, last * 100 + 99)))
        finer = periods
    if _no_data(warehouse, window):
        return [_nothing_to_compare(warehouse, "marts", window)]
    results = []
    for mart in (*MARTS.values(), FIRST_SIGHTINGS):
        (scope, own), (source, of_source) = scopes[mart.grain]
        found = warehouse.query(
            mismatch_sql(mart, scope, source), (*own, *of_source, *of_source, *own)
        )
        differing = int(found["rows"][0])
        if differing:
            detail = (
                f"{counted(differing, 'row')} differ from the facts {window}; "
                "`brewline init --rebuild-marts` fixes it"
            )
            results.append(CheckResult("marts", "fail", mart.table, detail))
    return results or [
        CheckResult(
            "marts", "ok", None, f"all {len(MARTS)} marts and dim_customer equal the facts {window}"
        )
    ]


def _no_data(warehouse: Warehouse, window: _Window) -> bool:
    """Whether no branch-day in ``window`` is loaded (then neither facts nor marts hold any)."""
    found = warehouse.query(
        "SELECT COUNT(*) AS n FROM etl_file_branch_day WHERE date_key BETWEEN ? AND ?",
        (date_key(window.first), date_key(window.due)),
    )
    return int(found["n"][0]) == 0


def _freshness_results(
    warehouse: Warehouse, settings: CheckSettings, window: _Window
) -> list[CheckResult]:
    """One result per branch: is its latest trading day the due day (or later)?

    The due day comes from the clock (or ``as_of``), never from the data: when no
    branch at all is fresh, a warehouse-wide failure comes first, so a warehouse
    whose every branch looks closed does not pass on warnings alone.
    """
    latest = warehouse.branch_freshness(up_to=window.today).select("branch", "last_key")
    if latest.is_empty():
        return [CheckResult("freshness", "warn", None, "no branch has any data loaded yet")]
    closed_before = window.due - dt.timedelta(days=settings.check_closed_after_days)
    days = [(str(branch), key_date(int(key))) for branch, key in latest.iter_rows()]
    results = [_freshness(branch, day, window.due, closed_before) for branch, day in days]
    newest = max(day for _, day in days)
    return results if newest >= window.due else [_none_fresh(newest, window.due), *results]


def _utc(as_of: dt.date | dt.datetime, cutoff_hour: int) -> dt.datetime:
    """``as_of`` as naive UTC, the clock of source watermarks: a naive datetime is branch
    local time, and a date means its cut-off hour (as it does for the due day)."""
    if not isinstance(as_of, dt.datetime):
        as_of = dt.datetime.combine(as_of, dt.time(cutoff_hour))
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=BRANCH_TIMEZONE)
    return as_of.astimezone(dt.UTC).replace(tzinfo=None)


def _judged_at(as_of: dt.date | dt.datetime, cutoff_hour: int) -> dt.datetime:
    """The instant a source's freshness is judged at: ``as_of`` (see :func:`_utc`), but never
    later than now; today's cut-off hour, still to come, would find a sync a minute old stale."""
    return min(_utc(as_of, cutoff_hour), dt.datetime.now(dt.UTC).replace(tzinfo=None))


def _source_freshness(
    warehouse: Warehouse, settings: CheckSettings, at: dt.datetime
) -> list[CheckResult]:
    """Per table of an incremental source: was its watermark close enough to ``at`` (UTC)?

    A watermark after ``at`` is ok: the source's data up to ``at`` is in, as a
    branch's later trading days count as fresh for an earlier due day.
    """
    rows = warehouse.query(
        "SELECT source, name, value FROM etl_cursor ORDER BY source, name"
    ).rows()
    limit = dt.timedelta(minutes=settings.check_source_stale_minutes)
    results = []
    for source, name, value in rows:
        watermark = cursor_watermark(str(value))
        if watermark is None:
            continue  # a cursor that is not a time (an id, an offset): nothing to judge
        behind = at - watermark
        status: Status = "fail" if behind > limit else "ok"
        where = f"watermark {watermark:%Y-%m-%d %H:%M:%S} UTC, "
        if behind < dt.timedelta(0):
            detail = f"{where}synced past {at:%Y-%m-%d %H:%M} UTC"
        else:
            detail = (
                f"{where}{behind.total_seconds() / 60:,.0f} min behind {at:%Y-%m-%d %H:%M} UTC "
                f"(limit {settings.check_source_stale_minutes} min)"
            )
        results.append(CheckResult("source_freshness", status, f"{source}.{name}", detail))
    return results


def _none_fresh(newest: dt.date, due: dt.date) -> CheckResult:
    """The warehouse as a whole is stale: no branch has data for the due day."""
    return CheckResult(
        "freshness",
        "fail",
        None,
        f"no branch has data for {due}: the newest trading day loaded is {newest}, "
        f"{counted((due - newest).days, 'day')} before; are deliveries or runs stopped?",
    )


def _freshness(branch: str, latest: dt.date, due: dt.date, closed_before: dt.date) -> CheckResult:
    if latest >= due:
        return CheckResult("freshness", "ok", branch, f"latest trading day {latest}, due {due}")
    if latest < closed_before:
        return CheckResult(
            "freshness",
            "warn",
            branch,
            f"no data since {latest} ({counted((due - latest).days, 'day')} before {due}): "
            "closed or renamed?",
        )
    missing = (due - latest).days
    first_missing = latest + dt.timedelta(days=1)
    span = f"{due}" if missing == 1 else f"{first_missing} to {due}"
    return CheckResult(
        "freshness",
        "fail",
        branch,
        f"{counted(missing, 'day')} missing ({span}): latest trading day {latest}, due {due}",
    )


_BRANCH_DAYS = """
    SELECT b.branch_name AS branch, o.date_key, o.sales
    FROM etl_file_branch_day o JOIN dim_branch b ON b.branch_key = o.branch_key
    WHERE o.date_key BETWEEN ? AND ?
"""


def _volume_results(
    warehouse: Warehouse, settings: CheckSettings, window: _Window
) -> list[CheckResult]:
    """One result per branch with data in the window: is any of its days far below normal?"""
    since = window.first - dt.timedelta(days=settings.check_volume_trailing_days)
    days = warehouse.query(_BRANCH_DAYS, (date_key(since), date_key(window.due)))
    judged = _trailing(days, settings.check_volume_trailing_days).filter(
        pl.col("date") >= window.first
    )
    if judged.is_empty():
        return [_nothing_to_compare(warehouse, "volume", window)]
    return [
        _volume(str(branch), part, settings)
        for (branch,), part in judged.partition_by("branch", as_dict=True).items()
    ]


def _trailing(days: pl.DataFrame, trailing_days: int) -> pl.DataFrame:
    """Each branch-day with the mean and count of the branch's sales in the days before it."""
    frame = days.select(
        pl.col("branch").cast(pl.String),
        pl.col("date_key").cast(pl.String).str.to_date("%Y%m%d").alias("date"),
        pl.col("sales").cast(pl.Int64),
    ).sort("branch", "date")
    history = frame.rolling(
        index_column="date", period=f"{trailing_days}d", closed="left", group_by="branch"
    ).agg(mean=pl.col("sales").mean(), history=pl.len())
    return frame.join(history, on=["branch", "date"], how="left").sort("branch", "date")


def _volume(branch: str, days: pl.DataFrame, settings: CheckSettings) -> CheckResult:
    ratio = settings.check_volume_ratio
    notes, low = [], []
    for day, sales, mean, history in days.select("date", "sales", "mean", "history").iter_rows():
        if history < settings.check_volume_min_days:
            notes.append(
                f"{day}: {counted(sales, 'sale')}; not enough history to judge "
                f"({history} of {counted(settings.check_volume_min_days, 'day')})"
            )
        elif sales < ratio * mean:
            low.append(
                f"{day}: {counted(sales, 'sale')}, {sales / mean:.0%} of the trailing "
                f"{settings.check_volume_trailing_days}-day mean {mean:,.1f} "
                f"(threshold {ratio:.0%})"
            )
        else:
            notes.append(f"{day}: {counted(sales, 'sale')}, trailing mean {mean:,.1f}")
    if low:
        return CheckResult("volume", "fail", branch, "; ".join(low))
    return CheckResult("volume", "ok", branch, "; ".join(notes))


_FIRST_BRANCH_DAYS = """
    SELECT b.branch_name AS subject, MIN(o.date_key) AS first_key
    FROM etl_file_branch_day o JOIN dim_branch b ON b.branch_key = o.branch_key
    WHERE o.date_key <= ?
    GROUP BY b.branch_name
    HAVING MIN(o.date_key) >= ?
    ORDER BY b.branch_name
"""


def _new_branches(warehouse: Warehouse, window: _Window) -> list[CheckResult]:
    """A warning per branch whose first trading day falls in the window."""
    found = warehouse.query(_FIRST_BRANCH_DAYS, (date_key(window.due), date_key(window.first)))
    return _news(warehouse, "new_branches", "branch", found, window)


_FIRST_PRODUCT_DAYS = """
    SELECT p.product_name, p.size, p.variant, MIN(l.date_key) AS first_key
    FROM mart_product_day l JOIN dim_product p ON p.product_key = l.product_key
    WHERE l.date_key <= ?
    GROUP BY p.product_name, p.size, p.variant
    HAVING MIN(l.date_key) >= ?
"""


def _new_products(warehouse: Warehouse, window: _Window) -> list[CheckResult]:
    """A warning per menu item (product, size, variant) first sold in the window."""
    found = warehouse.query(_FIRST_PRODUCT_DAYS, (date_key(window.due), date_key(window.first)))
    labelled = pl.DataFrame(
        {
            "subject": [
                item_label(*row) for row in found.select("product_name", "size", "variant").rows()
            ],
            "first_key": found["first_key"].cast(pl.Int64),
        },
        schema={"subject": pl.String, "first_key": pl.Int64},
    ).sort("subject")
    return _news(warehouse, "new_products", "product", labelled, window)


def _news(
    warehouse: Warehouse, name: str, noun: str, found: pl.DataFrame, window: _Window
) -> list[CheckResult]:
    """Warnings for ``found`` (``subject, first_key``) when there is history to compare with."""
    earliest = warehouse.query("SELECT MIN(date_key) AS k FROM etl_file_branch_day")["k"][0]
    if earliest is None or key_date(int(earliest)) >= window.first:
        return [
            CheckResult(name, "ok", None, f"nothing loaded before {window.first} to compare with")
        ]
    if found.is_empty():
        return [CheckResult(name, "ok", None, f"no {noun} first seen {window}")]
    return [
        CheckResult(name, "warn", str(subject), f"first seen on {key_date(int(key))}")
        for subject, key in found.select("subject", "first_key").iter_rows()
    ]


_RECENT_RUNS = """
    SELECT run_id, rows_read, rows_rejected FROM etl_run
    WHERE status <> 'running' AND rows_read > 0
    ORDER BY started_at DESC, run_id DESC LIMIT ?
"""


def _reject_rate(warehouse: Warehouse, settings: CheckSettings) -> list[CheckResult]:
    """One result: rejected rows / rows read over the latest ``check_reject_runs`` runs."""
    runs = warehouse.query(_RECENT_RUNS, (settings.check_reject_runs,))
    if runs.is_empty():
        return [CheckResult("reject_rate", "ok", None, "no run has read any rows yet")]
    read = int(runs["rows_read"].sum())
    rejected = int(runs["rows_rejected"].sum())
    rate = rejected / read
    limit = settings.check_max_reject_rate
    subject = str(runs["run_id"][0]) if runs.height == 1 else f"latest {runs.height} runs"
    detail = f"{rejected:,} of {counted(read, 'row')} rejected ({rate:.1%}; limit {limit:.1%})"
    if rate <= limit:
        return [CheckResult("reject_rate", "ok", subject, detail)]
    causes = _reject_causes(warehouse, runs["run_id"].cast(pl.String).to_list())
    return [CheckResult("reject_rate", "fail", subject, f"{detail}: {causes}")]


def _reject_causes(warehouse: Warehouse, run_ids: Sequence[str]) -> str:
    """Rejected files with their reasons, then row-level rejects counted by reason."""
    marks = ", ".join("?" for _ in run_ids)
    files = warehouse.query(
        f"SELECT source_name, reason, rows_rejected FROM etl_file "
        f"WHERE state = 'rejected' AND run_id IN ({marks}) ORDER BY source_name",
        tuple(run_ids),
    )
    rows = warehouse.query(
        f"SELECT r.reason, COUNT(*) AS n FROM etl_rejected_row r "
        f"JOIN etl_file f ON f.file_id = r.file_id "
        f"WHERE f.run_id IN ({marks}) AND f.state <> 'replaced' "
        f"GROUP BY r.reason ORDER BY n DESC, r.reason",
        tuple(run_ids),
    )
    parts = []
    if files.height:
        listed = ", ".join(
            f"{name} ({reason}, {counted(n, 'row')})" for name, reason, n in files.iter_rows()
        )
        parts.append(f"files rejected: {listed}")
    if rows.height:
        parts.append(
            "rows rejected by reason: " + ", ".join(f"{r} {n:,}" for r, n in rows.iter_rows())
        )
    return "; ".join(parts) or "no rejected files or rows are left in the ledger"


# -- totesys: the source against the lake and the warehouse ------------------------------------

_STAR_OF = {
    "address": ("dim_location", "location_id"),
    "counterparty": ("dim_counterparty", "counterparty_id"),
    "currency": ("dim_currency", "currency_id"),
    "design": ("dim_design", "design_id"),
    "staff": ("dim_staff", "staff_id"),
    "sales_order": ("fact_sales_order", "sales_order_id"),
    "purchase_order": ("fact_purchase_order", "purchase_order_id"),
    "payment_type": ("dim_payment_type", "payment_type_id"),
    "transaction": ("dim_transaction", "transaction_id"),
    "payment": ("fact_payment", "payment_id"),
}
"""Each source table's star table and its id (department is folded into dim_staff)."""


def totesys_reconciliation(
    warehouse: Warehouse, source_url: str, lake_location: str
) -> list[CheckResult]:
    """Per totesys table: do the source's rows (count and newest ``last_updated``, cheap
    and read-only) equal the lake's current versions and the warehouse's distinct ids?

    A difference means rows the syncs did not bring (or that the source deleted).
    """
    from brewline.totesys import SOURCE_TABLES
    from brewline.totesys.lake import open_lake
    from brewline.totesys.model import current, versions

    source = _source_counts(source_url, SOURCE_TABLES)
    lake = open_lake(lake_location)
    frames: dict[str, list[pl.DataFrame]] = {t: [] for t in SOURCE_TABLES}
    for manifest in lake.manifests():
        for table, info in manifest["tables"].items():
            if info["key"] and table in frames:
                frames[table].append(
                    lake.get_parquet(info["key"]).select(f"{table}_id", "last_updated")
                )
    results = []
    for table in SOURCE_TABLES:
        rows, newest = source[table]
        held = current(versions(frames[table], table), table) if frames[table] else None
        lake_rows = 0 if held is None else held.height
        lake_newest: Any = None if held is None else held["last_updated"].max()
        found = [
            f"source {rows:,} rows (newest {newest}), lake {lake_rows:,} (newest {lake_newest})"
        ]
        differs = rows != lake_rows or newest != lake_newest
        if table in _STAR_OF:
            star, key = _STAR_OF[table]
            loaded = int(
                warehouse.query(f"SELECT count(DISTINCT {key}) AS n FROM totesys_{star}")["n"][0]
            )
            found.append(f"warehouse {loaded:,}")
            differs = differs or loaded != rows
        status: Status = "fail" if differs else "ok"
        detail = ", ".join(found) + ("; `brewline sync --full` re-reads it" if differs else "")
        results.append(CheckResult("totesys_reconciliation", status, f"totesys.{table}", detail))
    return results


def _source_counts(source_url: str, tables: Sequence[str]) -> dict[str, tuple[int, Any]]:
    """Each table's ``count(*)`` and ``max(last_updated)`` (to the millisecond, as the lake
    keeps it), in one read-only snapshot."""
    import psycopg
    from psycopg import sql

    from brewline.errors import TransientError, first_line

    try:
        with psycopg.connect(source_url, connect_timeout=10) as con:
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            found = {}
            for table in tables:
                query = sql.SQL("SELECT count(*), max(last_updated)::timestamp(3) FROM {}").format(
                    sql.Identifier(table)
                )
                row = con.execute(query).fetchone()
                assert row is not None
                found[table] = (int(row[0]), row[1])
            return found
    except psycopg.Error as exc:
        raise TransientError(f"cannot read the totesys source: {first_line(exc)}") from None
