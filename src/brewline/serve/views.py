"""The dashboard's questions: sales under one filter, and the state of the ledger.

Every sales query takes :class:`Filters` (a date range on ``date_key`` and a
branch by ``branch_name``) and applies it to the fact table it reads, so every
sales view on a page answers for the same slice. SQL is the portable subset of
DuckDB and PostgreSQL (``?`` placeholders through :meth:`Warehouse.query`).

Every sales question is answered from the marts (:mod:`brewline.marts`), never
by scanning the facts: one pass over ``mart_sales_day`` with grouping sets gives
sales per branch, per day and per payment method (revenue by day, by month, by
branch, the payment mix and the basket figures); ``mart_product_day`` gives best
and worst sellers and each branch's best seller; ``mart_sales_hour`` the
weekday-by-hour heat map; ``mart_customer_first`` new customers. The small
answers are then shaped with Polars (pure functions below), which is cheaper
than asking the warehouse once per chart::

    >>> with open_warehouse("brewline.duckdb", read_only=True) as wh:  # doctest: +SKIP
    ...     view = sales_view(wh, Filters(branch="Leeds"))
    ...     totals(view.methods)["revenue"]
    Decimal('2050.35')

Money stays exact (``Decimal``); only shares are floats. Nothing here reads a
column that could hold personal data: the warehouse has none, and customers
appear only as counts of sales with a customer token.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl

from brewline import queries
from brewline.load import Warehouse
from brewline.load.roles import Params, Reader
from brewline.schema import MONEY_SQL
from brewline.vocabulary import date_key, due_day, key_date_expr, local_now

__all__ = [
    "FilterOptions",
    "Filters",
    "OperationsView",
    "SalesView",
    "avg_basket",
    "best_per_branch",
    "by_branch",
    "by_day",
    "by_month",
    "filter_options",
    "freshness",
    "ledger_version",
    "operations_view",
    "payments",
    "ranked_sellers",
    "sales_view",
    "sellers",
    "totals",
]

MONEY = queries.MONEY
_SQL_MONEY = MONEY_SQL
_CENT = Decimal("0.01")
_ITEM = ("product", "size", "variant")


@dataclass(frozen=True)
class Filters:
    """The slice every sales view answers for; ``None`` means "no limit".

    >>> Filters(start=dt.date(2024, 12, 18), end=dt.date(2024, 12, 31)).where("s")
    ('s.date_key >= ? AND s.date_key <= ?', [20241218, 20241231])
    """

    start: dt.date | None = None
    end: dt.date | None = None
    branch: str | None = None

    def where(self, alias: str) -> tuple[str, list[Any]]:
        """SQL conditions on a fact table aliased ``alias`` (``1 = 1`` when unfiltered)."""
        conditions: list[str] = []
        params: list[Any] = []
        if self.start is not None:
            conditions.append(f"{alias}.date_key >= ?")
            params.append(date_key(self.start))
        if self.end is not None:
            conditions.append(f"{alias}.date_key <= ?")
            params.append(date_key(self.end))
        if self.branch is not None:
            branch, chosen = self._branch(alias)
            conditions.append(branch)
            params += chosen
        return " AND ".join(conditions) or "1 = 1", params

    def _branch(self, alias: str) -> tuple[str, list[Any]]:
        if self.branch is None:
            return "1 = 1", []
        return (
            f"{alias}.branch_key IN (SELECT branch_key FROM dim_branch WHERE branch_name = ?)",
            [self.branch],
        )

    def spans(self) -> list[tuple[str, int, int]]:
        """The range cut into single days, whole months and whole years, each as
        ``(grain, first, last)`` with keys yyyymmdd, yyyymm or yyyy: the fewest mart
        rows that hold every day of it, once.

        >>> for span in Filters(dt.date(2023, 11, 15), dt.date(2025, 2, 10)).spans():
        ...     print(span)
        ('day', 20231115, 20231130)
        ('month', 202312, 202312)
        ('year', 2024, 2024)
        ('month', 202501, 202501)
        ('day', 20250201, 20250210)
        """
        begin = self.start or dt.date.min
        end = _UNBOUNDED if self.end is None or self.end >= _UNBOUNDED else self.end
        stop = end + dt.timedelta(days=1)  # exclusive from here on
        spans: list[tuple[str, int, int]] = []

        def take(grain: str, until: dt.date) -> dt.date:
            if until > begin:
                last = until - dt.timedelta(days=1)
                spans.append((grain, _PERIOD[grain](begin), _PERIOD[grain](last)))
                return until
            return begin

        if begin < stop and begin.day != 1:
            begin = take("day", min(_next_month(begin), stop))
        if begin < stop and begin.month != 1:
            begin = take("month", min(dt.date(begin.year + 1, 1, 1), stop.replace(day=1)))
        begin = take("year", stop.replace(month=1, day=1))
        begin = take("month", stop.replace(day=1))
        take("day", stop)
        return spans

    def read(self, alias: str, marts: tuple[str, str, str], columns: str) -> tuple[str, list[Any]]:
        """``SELECT columns`` of the slice's rows of a day mart and its month and year
        rollups (``marts``): whole years and months from the rollups, the days
        around them from the day mart (see :meth:`spans`)."""
        branch, chosen = self._branch(alias)
        tables = dict(zip(_KEYS, marts, strict=True))
        parts, params = [f"SELECT {columns} FROM {marts[0]} {alias} WHERE 1 = 0"], []
        for grain, low, high in self.spans():
            parts.append(
                f"SELECT {columns} FROM {tables[grain]} {alias} "
                f"WHERE {alias}.{_KEYS[grain]} BETWEEN ? AND ? AND {branch}"
            )
            params += [low, high, *chosen]
        return " UNION ALL ".join(parts), params

    def mask(self) -> pl.Expr:
        """The same filter as a Polars predicate on ``date`` and ``branch`` columns."""
        mask = pl.lit(True)
        if self.start is not None:
            mask &= pl.col("date") >= self.start
        if self.end is not None:
            mask &= pl.col("date") <= self.end
        if self.branch is not None:
            mask &= pl.col("branch") == self.branch
        return mask

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        return (self.start, self.end, self.branch) != (None, None, None)


_UNBOUNDED = dt.date(9998, 12, 31)
"""Where an open-ended range stops (no till has sold anything after it)."""


def _month_of(day: dt.date) -> int:
    return day.year * 100 + day.month


def _year_of(day: dt.date) -> int:
    return day.year


_PERIOD: dict[str, Callable[[dt.date], int]] = {
    "day": date_key,
    "month": _month_of,
    "year": _year_of,
}
_KEYS = {"day": "date_key", "month": "month_key", "year": "year_key"}
"""Each grain's key column in the marts."""


def _next_month(day: dt.date) -> dt.date:
    """The first day of the month after ``day``'s."""
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _ask(
    wh: Warehouse, sql: str, schema: Mapping[str, pl.DataType], params: Params = ()
) -> pl.DataFrame:
    """Run ``sql`` and cast the answer to ``schema`` (the engines differ in result types)."""
    return wh.query(sql, params).cast(pl.Schema(schema))


# -- what the filter form offers ----------------------------------------------------------


@dataclass(frozen=True)
class FilterOptions:
    """Branch names and the first and last trading day with sales (None when empty)."""

    branches: list[str]
    first: dt.date | None
    last: dt.date | None


def filter_options(wh: Warehouse) -> FilterOptions:
    """What the filter form offers, from the small dimension and ownership tables."""
    names = _ask(wh, "SELECT branch_name AS branch FROM dim_branch", {"branch": pl.String()})
    span = _ask(
        wh,
        "SELECT MIN(date_key) AS first, MAX(date_key) AS last FROM etl_file_branch_day",
        {"first": pl.Int32(), "last": pl.Int32()},
    ).select(
        key_date_expr(pl.col("first")).alias("first"), key_date_expr(pl.col("last")).alias("last")
    )
    first, last = span.row(0)
    return FilterOptions(sorted(names["branch"].to_list()), first, last)


def ledger_version(wh: Warehouse) -> tuple[Any, ...]:
    """A fingerprint that changes whenever a run commits anything: the cache key.

    Every committed batch inserts ``etl_file`` rows (recorded now); every run
    inserts and finishes an ``etl_run`` row; ``brewline init`` adds a schema version.
    """
    return wh.query(
        "SELECT (SELECT COUNT(*) FROM etl_file) AS files, "
        "(SELECT MAX(recorded_at) FROM etl_file) AS recorded, "
        "(SELECT COUNT(*) FROM etl_run) AS runs, "
        "(SELECT MAX(started_at) FROM etl_run) AS started, "
        "(SELECT MAX(finished_at) FROM etl_run) AS finished, "
        "(SELECT MAX(version) FROM schema_version) AS version"
    ).row(0)


# -- sales ----------------------------------------------------------------------------------

_MEASURE_TYPES = {
    "sales": pl.Int64(),
    "revenue": MONEY,
    "units": pl.Int64(),
    "tokens": pl.Int64(),
    "token_revenue": MONEY,
}
_CELLS = {"branch": pl.String(), "method": pl.String(), **_MEASURE_TYPES}
_DAYS = {"date_key": pl.Int32(), **_MEASURE_TYPES}
_ITEMS = {
    "branch": pl.String(),
    "product": pl.String(),
    "size": pl.String(),
    "variant": pl.String(),
    "units": pl.Int64(),
    "revenue": MONEY,
}
_HEAT = {"weekday": pl.Int32(), "hour": pl.Int32(), "sales": pl.Int64(), "revenue": MONEY}


@dataclass(frozen=True)
class SalesView:
    """The answers a sales page is drawn from, all under ``filters``.

    - ``branches``, ``days``, ``methods``: ``sales, revenue, units, tokens,
      token_revenue`` per ``branch``, per ``date`` and per payment ``method``
      (``tokens``: sales with a customer token); each sums to the slice's totals;
    - ``items``: ``branch, product, size, variant, units, revenue`` per branch and menu item;
    - ``heat``: ``weekday`` (ISO, 1 = Monday), ``hour``, ``sales, revenue``;
    - ``customers``: ``customer`` (new/returning), ``sales, revenue, share`` — empty
      when no sale in the slice has a customer token.
    """

    filters: Filters
    branches: pl.DataFrame
    days: pl.DataFrame
    methods: pl.DataFrame
    items: pl.DataFrame
    heat: pl.DataFrame
    customers: pl.DataFrame

    @property
    def empty(self) -> bool:
        return self.methods.is_empty()


def sales_view(wh: Warehouse, filters: Filters) -> SalesView:
    """Ask the warehouse everything a sales page shows: five small queries over the marts."""
    branches, days, methods = _sales_sums(wh, filters)
    return SalesView(
        filters,
        branches,
        days,
        methods,
        _item_cells(wh, filters),
        _heat(wh, filters),
        queries.split_customers(methods, _new_customers(wh, filters)),
    )


def _sales_sums(wh: Warehouse, filters: Filters) -> tuple[pl.DataFrame, ...]:
    """The slice's sales per branch, per day and per payment method."""
    rows, params = filters.read(
        "m",
        ("mart_sales_day", "mart_sales_month", "mart_sales_year"),
        "m.branch_key, m.payment_method, m.sales, m.revenue, m.units, m.customer_sales, "
        "m.customer_revenue",
    )
    # Aggregate first, then name the branch: the join touches a few hundred rows.
    # A grouping set leaves the other key null, which tells the two answers apart.
    sql = f"""
        SELECT b.branch_name AS branch, c.method, {_SUMS}
        FROM (
            SELECT m.branch_key, m.payment_method AS method, {_sums("m")}
            FROM ({rows}) AS m
            GROUP BY GROUPING SETS ((m.branch_key), (m.payment_method))
        ) AS c LEFT JOIN dim_branch b ON b.branch_key = c.branch_key
    """
    sums = _ask(wh, sql, _CELLS, params)
    where, params = filters.where("m")
    by_day = (
        f"SELECT m.date_key, {_sums('m')} FROM mart_sales_day m WHERE {where} GROUP BY m.date_key"
    )
    days = _ask(wh, by_day, _DAYS, params)
    return (
        sums.filter(pl.col("branch").is_not_null()).select("branch", *_MEASURE_TYPES),
        days.select(key_date_expr(pl.col("date_key")).alias("date"), *_MEASURE_TYPES).sort("date"),
        sums.filter(pl.col("method").is_not_null()).select("method", *_MEASURE_TYPES),
    )


_SUMS = ", ".join(f"c.{m}" for m in _MEASURE_TYPES)


def _sums(alias: str) -> str:
    """The sales measures of a mart's rows, summed, named as :data:`_MEASURES`."""
    return (
        f"CAST(SUM({alias}.sales) AS BIGINT) AS sales, "
        f"CAST(SUM({alias}.revenue) AS {_SQL_MONEY}) AS revenue, "
        f"CAST(SUM({alias}.units) AS BIGINT) AS units, "
        f"CAST(SUM({alias}.customer_sales) AS BIGINT) AS tokens, "
        f"CAST(SUM({alias}.customer_revenue) AS {_SQL_MONEY}) AS token_revenue"
    )


def _item_cells(wh: Warehouse, filters: Filters) -> pl.DataFrame:
    rows, params = filters.read(
        "m",
        ("mart_product_day", "mart_product_month", "mart_product_year"),
        "m.branch_key, m.product_key, m.units, m.revenue",
    )
    sql = f"""
        SELECT b.branch_name AS branch, p.product_name AS product, p.size, p.variant,
               c.units, c.revenue
        FROM (
            SELECT m.branch_key, m.product_key, CAST(SUM(m.units) AS BIGINT) AS units,
                   CAST(SUM(m.revenue) AS {_SQL_MONEY}) AS revenue
            FROM ({rows}) AS m
            GROUP BY m.branch_key, m.product_key
        ) AS c
        JOIN dim_branch b ON b.branch_key = c.branch_key
        JOIN dim_product p ON p.product_key = c.product_key
    """
    return _ask(wh, sql, _ITEMS, params)


def _heat(wh: Warehouse, filters: Filters) -> pl.DataFrame:
    rows, params = filters.read(
        "m",
        ("mart_sales_hour", "mart_sales_hour_month", "mart_sales_hour_year"),
        "m.weekday, m.hour, m.sales, m.revenue",
    )
    sql = f"""
        SELECT m.weekday, m.hour, CAST(SUM(m.sales) AS BIGINT) AS sales,
               CAST(SUM(m.revenue) AS {_SQL_MONEY}) AS revenue
        FROM ({rows}) AS m
        GROUP BY m.weekday, m.hour
    """
    return _ask(wh, sql, _HEAT, params)


def _new_customers(wh: Warehouse, filters: Filters) -> pl.DataFrame:
    return queries.new_customers(wh, *filters.where("m"))


def avg_basket(revenue: Decimal | None, sales: int) -> Decimal | None:
    """Revenue per sale, half-up to the penny; None without sales.

    >>> avg_basket(Decimal("10.00"), 3)
    Decimal('3.33')
    """
    if not sales or revenue is None:
        return None
    return (revenue / sales).quantize(_CENT, ROUND_HALF_UP)


def totals(methods: pl.DataFrame) -> dict[str, Any]:
    """Headline figures from the sums per payment ``method``: ``sales, revenue, units,
    avg_basket, avg_items, card_share``."""
    sales = int(methods["sales"].sum())
    revenue = Decimal(methods["revenue"].sum()) if sales else Decimal("0.00")
    units = int(methods["units"].sum())
    card = int(methods.filter(pl.col("method") == "CARD")["sales"].sum())
    return {
        "sales": sales,
        "revenue": revenue,
        "units": units,
        "avg_basket": avg_basket(revenue, sales),
        "avg_items": units / sales if sales else None,
        "card_share": card / sales if sales else None,
    }


def _sum_by(sums: pl.DataFrame, *keys: str) -> pl.DataFrame:
    return sums.group_by(*keys).agg(pl.col("sales", "revenue", "units").sum())


def by_day(days: pl.DataFrame) -> pl.DataFrame:
    """Per trading day, oldest first: ``date, sales, revenue, units``."""
    return _sum_by(days, "date").sort("date")


def by_month(days: pl.DataFrame) -> pl.DataFrame:
    """Per calendar month, oldest first: ``month`` (its first day), ``sales, revenue, units``."""
    months = days.with_columns(pl.col("date").dt.truncate("1mo").alias("month"))
    return _sum_by(months, "month").sort("month")


def by_branch(branches: pl.DataFrame) -> pl.DataFrame:
    """Branches ranked by revenue: ``rank, branch, sales, revenue, units, share``."""
    ranked = _sum_by(branches, "branch").sort(["revenue", "branch"], descending=[True, False])
    revenue = pl.col("revenue").cast(pl.Float64)
    return ranked.with_columns(
        pl.int_range(1, pl.len() + 1).alias("rank"), (revenue / revenue.sum()).alias("share")
    ).select("rank", "branch", "sales", "revenue", "units", "share")


def payments(methods: pl.DataFrame) -> pl.DataFrame:
    """Cash vs card: ``method, sales, revenue, share`` (share of sales), most used first."""
    mix = _sum_by(methods, "method").sort(["sales", "method"], descending=[True, False])
    return queries.with_share(mix, "sales").select("method", "sales", "revenue", "share")


_ITEM_ORDER = [*_ITEM]


def sellers(items: pl.DataFrame) -> pl.DataFrame:
    """Menu items (product, size, variant) with their ``units`` and ``revenue`` in the slice."""
    return items.group_by(_ITEM_ORDER).agg(pl.col("units", "revenue").sum())


def ranked_sellers(
    table: pl.DataFrame, by: str, *, worst: bool = False, limit: int = 10
) -> pl.DataFrame:
    """The ``limit`` best (or worst) menu items by ``units`` or ``revenue``.

    Ties break on the other measure, then on the item's name, so the order is stable.
    Worst sellers are items sold at least once in the slice: the warehouse records
    sales, not the menu, so an item nobody bought has no row to rank.
    """
    other = "revenue" if by == "units" else "units"
    order = table.sort(
        [by, other, *_ITEM_ORDER],
        descending=[not worst, not worst, False, False, False],
        nulls_last=False,
    )
    return order.head(limit).select(*_ITEM_ORDER, "units", "revenue")


def best_per_branch(items: pl.DataFrame) -> pl.DataFrame:
    """Each branch's best seller by units (ties: revenue, then name), by branch name."""
    order = items.sort(
        ["branch", "units", "revenue", *_ITEM_ORDER],
        descending=[False, True, True, False, False, False],
        nulls_last=False,
    )
    return order.group_by("branch", maintain_order=True).first()


# -- operations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperationsView:
    """The ledger as the operations page shows it (see :func:`operations_view`).

    ``as_of`` is the day the page looks from (today unless asked for a past day),
    ``due`` the last day every branch should have sent by then
    (:func:`~brewline.vocabulary.due_day`, the same as ``brewline check``).
    """

    late_after: int
    runs: pl.DataFrame
    files: pl.DataFrame
    rejects: pl.DataFrame
    rejected_files: pl.DataFrame
    freshness: pl.DataFrame
    as_of: dt.date
    due: dt.date
    newest: dt.date | None = None


def freshness(
    wh: Reader, late_after: int = 0, *, as_of: dt.date | None = None, due: dt.date | None = None
) -> pl.DataFrame:
    """The last trading day loaded per branch up to ``as_of``, and whether the branch is late.

    Columns: ``branch, last_day, days_behind, last_loaded_at`` (UTC), ``late``.
    ``as_of`` defaults to the branches' local today (:func:`~brewline.vocabulary.local_now`),
    so a warehouse nobody has fed for a year shows every branch late. ``days_behind``
    counts days from the branch's last trading day to the due day (``due``, by
    default :func:`~brewline.vocabulary.due_day` of ``as_of``; 0 when it is up to
    date); a branch is late when that exceeds ``late_after``.
    Most behind first, so late branches lead.

        >>> freshness(wh, 1, as_of=dt.date(2024, 12, 19))["late"].sum()  # doctest: +SKIP
        0
    """
    today = local_now().date() if as_of is None else as_of
    fresh = wh.branch_freshness(up_to=today).with_columns(
        key_date_expr(pl.col("last_key")).alias("last_day")
    )
    due = due_day(today) if due is None else due
    behind = (pl.lit(due) - pl.col("last_day")).dt.total_days().clip(lower_bound=0)
    return (
        fresh.with_columns(behind.cast(pl.Int64).alias("days_behind"))
        .with_columns((pl.col("days_behind") > late_after).alias("late"))
        .sort(["days_behind", "branch"], descending=[True, False])
        .select("branch", "last_day", "days_behind", "last_loaded_at", "late")
    )


def operations_view(
    wh: Warehouse,
    late_after: int = 0,
    *,
    as_of: dt.date | None = None,
    due: dt.date | None = None,
    runs: int = 20,
) -> OperationsView:
    """Recent runs, files by state, rejects by reason and freshness as of ``as_of`` (today)."""
    today = local_now().date() if as_of is None else as_of
    due = due_day(today) if due is None else due
    fresh = freshness(wh, late_after, as_of=today, due=due)
    return OperationsView(
        late_after=late_after,
        runs=queries.recent_runs(wh, runs),
        files=queries.files_by_state(wh),
        rejects=queries.rejects_by_reason(wh),
        rejected_files=queries.rejected_files(wh, runs),
        freshness=fresh,
        as_of=today,
        due=due,
        newest=fresh["last_day"].max() if fresh.height else None,  # type: ignore[arg-type]
    )
