"""Marts: summaries of the facts, kept exact by every load in the same transaction.

Each mart is a table declared in :mod:`brewline.schema` (``mart_*``) and, here,
the one aggregate over the fact tables that defines its rows. That single
definition serves three purposes, so the marts cannot drift from the facts:

- the loader refreshes a mart for the **scope** a batch touched (the
  branch-days it loaded or took over, the customers it saw or lost), inside the
  batch's transaction (:mod:`brewline.load.loader`);
- :meth:`~brewline.load.roles.Loader.rebuild_marts` and the schema migration
  that adds the marts fill them from all facts;
- ``brewline check`` counts the rows where a mart and its aggregate disagree
  (:func:`mismatch_sql`), which must always be zero.

Readers (``report``, ``check``, the dashboard, ``/metrics``, Grafana) read the
marts wherever one answers the question and the facts only for detail. The
day marts are small: a branch-day has a few payment methods, ~14 trading hours
and ~40 menu items, so ten million sales make ~100k, ~450k and ~1.4M rows. Each
has a month rollup (``mart_*_month``, keyed by ``month_key`` = yyyymm) that
answers long ranges from 30 times fewer rows; readers take whole months from
it and the edge days from the day mart.

    >>> print(MARTS["mart_product_day"].select())  # doctest: +NORMALIZE_WHITESPACE
    SELECT branch_key, date_key, product_key, CAST(SUM(quantity) AS BIGINT) AS units,
           CAST(SUM(line_amount) AS DECIMAL(18,2)) AS revenue, COUNT(*) AS sales
    FROM fact_sale_line WHERE TRUE
    GROUP BY branch_key, date_key, product_key

SQL is the portable subset of DuckDB and PostgreSQL (``DISTINCT ON`` is in both).
"""

from __future__ import annotations

from dataclasses import dataclass

from brewline.schema import MONEY_SQL, TABLES

__all__ = [
    "BRANCH_DAY",
    "BRANCH_MONTH",
    "CUSTOMER",
    "DAY_SCOPE",
    "MARTS",
    "MONTH_OF",
    "MONTH_SCOPE",
    "MONTH_SOURCE_SCOPE",
    "Mart",
    "mismatch_sql",
]

BRANCH_DAY = "branch_day"
"""Grain of marts whose rows belong to one (branch, trading day): refreshed per branch-day."""
BRANCH_MONTH = "branch_month"
"""Grain of the month rollups of branch-day marts: refreshed per branch-month, from the day mart."""
CUSTOMER = "customer"
"""Grain of marts whose rows belong to one customer token: refreshed per customer."""

DAY_SCOPE = (
    "date_key BETWEEN ? AND ? "
    "AND (branch_key, date_key) IN (SELECT branch_key, date_key FROM stage_mart_days)"
)
"""The branch-days a load touched (staged as ``stage_mart_days``), with their date range
as parameters so both engines prune by date (DuckDB zone maps, PostgreSQL BRIN)."""


@dataclass(frozen=True)
class Mart:
    table: str
    grain: str
    source: str
    """The table it summarises: a fact table, or (month marts) the day mart."""
    aggregate: str
    """A SELECT of the table's columns, in order, from ``{source}``; ``{scope}`` restricts rows."""

    def select(self, scope: str = "TRUE", source: str | None = None) -> str:
        """The aggregate of ``scope``, from :attr:`source` or a relation holding its rows."""
        return self.aggregate.format(scope=scope, source=source or self.source)

    def delete(self, scope: str) -> str:
        return f"DELETE FROM {self.table} WHERE {scope}"

    def insert(self, scope: str, source: str | None = None) -> str:
        """Insert the aggregate of ``scope``; ``source`` may name a smaller relation that
        holds every source row in ``scope`` (a batch's staged rows)."""
        columns = ", ".join(TABLES[self.table].names)
        return f"INSERT INTO {self.table} ({columns}) {self.select(scope, source)}"

    def rebuild(self) -> list[str]:
        """Statements that make the whole mart equal its aggregate again."""
        return [self.delete("TRUE"), self.insert("TRUE")]


_MONEY = f"AS {MONEY_SQL})"
_HOUR = "CAST(EXTRACT(HOUR FROM sold_at) AS SMALLINT)"
_WEEKDAY = "CAST(EXTRACT(ISODOW FROM sold_at) AS SMALLINT)"
MONTH_OF = "CAST((date_key - MOD(date_key, 100)) / 100 AS INTEGER)"
"""A date_key's month as yyyymm (exact integer arithmetic on both engines)."""

MONTH_SCOPE = (
    "month_key BETWEEN ? AND ? "
    "AND (branch_key, month_key) IN (SELECT branch_key, month_key FROM stage_mart_months)"
)
"""The branch-months a load touched (``stage_mart_months``), bounded for pruning."""
MONTH_SOURCE_SCOPE = (
    "date_key BETWEEN ? AND ? "
    f"AND (branch_key, {MONTH_OF}) IN (SELECT branch_key, month_key FROM stage_mart_months)"
)
"""The same branch-months, as rows of a day mart."""


def _sums(*measures: str) -> str:
    """``CAST(SUM(m) AS type) AS m`` for money (``revenue`` columns) and counts."""
    return ", ".join(
        f"CAST(SUM({m}) {_MONEY} AS {m}" if "revenue" in m else f"CAST(SUM({m}) AS BIGINT) AS {m}"
        for m in measures
    )


def _month(table: str, day: str, keys: str, *measures: str) -> Mart:
    """A month rollup of the day mart ``day``: the same keys, the same sums, per yyyymm."""
    return Mart(
        table,
        BRANCH_MONTH,
        day,
        f"""SELECT branch_key, {MONTH_OF} AS month_key, {keys}, {_sums(*measures)}
            FROM {{source}} WHERE {{scope}}
            GROUP BY branch_key, {MONTH_OF}, {keys}""",
    )


_SALES = ("sales", "revenue", "units", "customer_sales", "customer_revenue")
_PRODUCT = ("units", "revenue", "sales")

MARTS: dict[str, Mart] = {
    mart.table: mart
    for mart in (
        Mart(
            "mart_sales_day",
            BRANCH_DAY,
            "fact_sale",
            f"""SELECT branch_key, date_key, payment_method, COUNT(*) AS sales,
                   CAST(SUM(total) {_MONEY} AS revenue, CAST(SUM(items) AS BIGINT) AS units,
                   COUNT(customer_key) AS customer_sales,
                   CAST(COALESCE(SUM(CASE WHEN customer_key IS NOT NULL THEN total END), 0)
                        {_MONEY} AS customer_revenue
            FROM {{source}} WHERE {{scope}}
            GROUP BY branch_key, date_key, payment_method""",
        ),
        Mart(
            "mart_sales_hour",
            BRANCH_DAY,
            "fact_sale",
            f"""SELECT branch_key, date_key, {_WEEKDAY} AS weekday, {_HOUR} AS hour,
                   COUNT(*) AS sales, CAST(SUM(total) {_MONEY} AS revenue
            FROM {{source}} WHERE {{scope}}
            GROUP BY branch_key, date_key, {_WEEKDAY}, {_HOUR}""",
        ),
        Mart(
            "mart_product_day",
            BRANCH_DAY,
            "fact_sale_line",
            f"""SELECT branch_key, date_key, product_key, CAST(SUM(quantity) AS BIGINT) AS units,
                   CAST(SUM(line_amount) {_MONEY} AS revenue, COUNT(*) AS sales
            FROM {{source}} WHERE {{scope}}
            GROUP BY branch_key, date_key, product_key""",
        ),
        # Month rollups answer long ranges: three years are 37 rows a branch, not 1,100.
        _month("mart_sales_month", "mart_sales_day", "payment_method", *_SALES),
        _month("mart_sales_hour_month", "mart_sales_hour", "weekday, hour", "sales", "revenue"),
        _month("mart_product_month", "mart_product_day", "product_key", *_PRODUCT),
        # A customer's first sale: the earliest by sold_at, ties broken by sale_key
        # (the rule every new-vs-returning figure uses).
        Mart(
            "mart_customer_first",
            CUSTOMER,
            "fact_sale",
            """SELECT DISTINCT ON (customer_key) customer_key, sale_key, branch_key, date_key,
                   sold_at, total
            FROM {source} WHERE customer_key IS NOT NULL AND {scope}
            ORDER BY customer_key, sold_at, sale_key""",
        ),
    )
}
"""Every mart by table name, in the order the loader refreshes them."""


def mismatch_sql(mart: Mart, scope: str = "TRUE", source_scope: str | None = None) -> str:
    """One row, ``rows``: how many rows of ``scope`` the mart and its aggregate do not share.

    Counted both ways with ``EXCEPT ALL``, so a missing, extra, duplicated or
    wrong row each count; zero means the mart is exact. ``scope`` restricts the
    mart's rows and ``source_scope`` (default: the same) its source's rows; the
    placeholders of the result come in the order scope, source, source, scope.
    """
    columns = ", ".join(TABLES[mart.table].names)
    stored = f"SELECT {columns} FROM {mart.table} WHERE {scope}"
    truth = f"SELECT {columns} FROM ({mart.select(source_scope or scope)}) AS truth"
    return (
        f"SELECT COUNT(*) AS rows FROM (({stored} EXCEPT ALL {truth}) "
        f"UNION ALL ({truth} EXCEPT ALL {stored})) AS differing"
    )
