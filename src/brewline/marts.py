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

``dim_customer`` is checked and rebuilt the same way (:data:`FIRST_SIGHTINGS`).

Readers (``report``, ``check``, the dashboard, ``/metrics``, Grafana) read the
marts wherever one answers the question and the facts only for detail. The
day marts are small: a branch-day has a few payment methods, ~14 trading hours
and ~40 menu items, so ten million sales make ~100k, ~450k and ~1.4M rows. Each
has month and year rollups (``mart_*_month`` keyed by ``month_key`` = yyyymm,
``mart_*_year`` by ``year_key`` = yyyy); readers take whole years and months
from them and the days around them from the day mart, so a long range reads
hundreds of times fewer rows.

    >>> print(MARTS["mart_product_day"].select())  # doctest: +NORMALIZE_WHITESPACE
    SELECT branch_key, date_key, product_key, CAST(SUM(quantity) AS BIGINT) AS units,
           CAST(SUM(line_amount) AS DECIMAL(18,2)) AS revenue, COUNT(*) AS sales
    FROM fact_sale_line WHERE TRUE
    GROUP BY branch_key, date_key, product_key

SQL is the portable subset of DuckDB and PostgreSQL.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from brewline.schema import MONEY_SQL, TABLES

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = [
    "BRANCH_DAY",
    "BRANCH_MONTH",
    "BRANCH_YEAR",
    "CUSTOMER",
    "DAY_SCOPE",
    "FIRST_SIGHTINGS",
    "MARTS",
    "ROLLUPS",
    "Mart",
    "Rollup",
    "mismatch_sql",
    "of_batch",
]

BRANCH_DAY = "branch_day"
"""Grain of marts whose rows belong to one (branch, trading day): refreshed per branch-day."""
BRANCH_MONTH = "branch_month"
"""Grain of the month rollups of branch-day marts: refreshed per branch-month, from the day mart."""
BRANCH_YEAR = "branch_year"
"""Grain of the year rollups: refreshed per branch-year, from the month rollup."""
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
    """The table it summarises: a fact table or, for a rollup, the next finer mart."""
    aggregate: str
    """A SELECT of the table's columns, in order, from ``{source}``; ``{scope}`` restricts rows."""

    def select(self, scope: str = "TRUE") -> str:
        """The aggregate of the source rows in ``scope``."""
        return self.aggregate.format(scope=scope, source=self.source)

    def delete(self, scope: str) -> str:
        return f"DELETE FROM {self.table} WHERE {scope}"

    def insert(self, scope: str) -> str:
        """Insert the aggregate of the source rows in ``scope``."""
        columns = ", ".join(TABLES[self.table].names)
        return f"INSERT INTO {self.table} ({columns}) {self.select(scope)}"

    def rebuild(self) -> list[str]:
        """Statements that make the whole mart equal its aggregate again."""
        return [self.delete("TRUE"), self.insert("TRUE")]


_MONEY = f"AS {MONEY_SQL})"
_HOUR = "CAST(EXTRACT(HOUR FROM sold_at) AS SMALLINT)"
_WEEKDAY = "CAST(EXTRACT(ISODOW FROM sold_at) AS SMALLINT)"


@dataclass(frozen=True)
class Rollup:
    """A coarser grain of the branch-day marts: months of days, years of months."""

    grain: str
    key: str
    """Its key column: ``month_key`` (yyyymm) or ``year_key`` (yyyy)."""
    finer: str
    """The key of the grain it rolls up: ``date_key`` or ``month_key``."""
    staged: str
    """The staged table of the branch-periods a load touched."""

    @property
    def of(self) -> str:
        """The finer key's period, in this grain (exact integer arithmetic on both engines)."""
        return f"CAST(({self.finer} - MOD({self.finer}, 100)) / 100 AS INTEGER)"

    @property
    def scope(self) -> str:
        """The touched branch-periods, bounded by ``?``..``?`` for pruning."""
        return (
            f"{self.key} BETWEEN ? AND ? AND (branch_key, {self.key}) IN "
            f"(SELECT branch_key, {self.key} FROM {self.staged})"
        )

    @property
    def source_scope(self) -> str:
        """The same branch-periods, as rows of the finer mart."""
        return (
            f"{self.finer} BETWEEN ? AND ? AND (branch_key, {self.of}) IN "
            f"(SELECT branch_key, {self.key} FROM {self.staged})"
        )


ROLLUPS = (
    Rollup(BRANCH_MONTH, "month_key", "date_key", "stage_mart_months"),
    Rollup(BRANCH_YEAR, "year_key", "month_key", "stage_mart_years"),
)
"""Finest first: each is refreshed from the one before."""


def _sums(*measures: str) -> str:
    """``CAST(SUM(m) AS type) AS m`` for money (``revenue`` columns) and counts."""
    return ", ".join(
        f"CAST(SUM({m}) {_MONEY} AS {m}" if "revenue" in m else f"CAST(SUM({m}) AS BIGINT) AS {m}"
        for m in measures
    )


def _rollups(day: str, keys: str, *measures: str) -> tuple[Mart, ...]:
    """The month and year rollups of the day mart ``day``: the same keys and sums per period."""
    stem = day.removesuffix("_day")
    marts, source = [], day
    for rollup in ROLLUPS:
        table = f"{stem}_{rollup.key.removesuffix('_key')}"
        marts.append(
            Mart(
                table,
                rollup.grain,
                source,
                f"""SELECT branch_key, {rollup.of} AS {rollup.key}, {keys}, {_sums(*measures)}
                    FROM {{source}} WHERE {{scope}}
                    GROUP BY branch_key, {rollup.of}, {keys}""",
            )
        )
        source = table
    return tuple(marts)


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
        # Rollups answer long ranges: three years are 3 rows a branch, or 37, not 1,100.
        *_rollups("mart_sales_day", "payment_method", *_SALES),
        *_rollups("mart_sales_hour", "weekday, hour", "sales", "revenue"),
        *_rollups("mart_product_day", "product_key", *_PRODUCT),
        # A customer's first sale: the earliest by sold_at, ties broken by sale_key
        # (the rule every new-vs-returning figure uses). Two aggregations rather than
        # DISTINCT ON, which sorts: half the time. {scope} must take whole customers.
        Mart(
            "mart_customer_first",
            CUSTOMER,
            "fact_sale",
            """SELECT s.customer_key, s.sale_key, s.branch_key, s.date_key, s.sold_at, s.total
            FROM {source} s JOIN (
                SELECT t.customer_key, MIN(t.sale_key) AS sale_key
                FROM {source} t JOIN (
                    SELECT customer_key, MIN(sold_at) AS sold_at FROM {source}
                    WHERE customer_key IS NOT NULL AND {scope} GROUP BY customer_key
                ) AS earliest
                  ON earliest.customer_key = t.customer_key AND earliest.sold_at = t.sold_at
                GROUP BY t.customer_key
            ) AS firsts ON firsts.sale_key = s.sale_key""",
        ),
    )
}
"""Every mart by table name, in the order the loader refreshes them."""

FIRST_SIGHTINGS = Mart(
    "dim_customer",
    CUSTOMER,
    "fact_sale",
    """SELECT customer_key, MIN(sold_at) AS first_seen_at FROM {source}
    WHERE customer_key IS NOT NULL AND {scope} GROUP BY customer_key""",
)
"""``dim_customer`` as the facts define it: each customer with a sale, first seen at their
earliest. The loader keeps it with its dimensions' statements, not as a mart, but
``check`` compares it and ``rebuild_marts`` rebuilds it as it does the marts."""


def of_batch(sales: pl.DataFrame, lines: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The branch-day marts' rows, and each customer's first sale, of a batch's own facts.

    Computed in-process by an in-memory DuckDB running the same definitions over
    the batch's Arrow frames (named as the fact tables), whatever the warehouse:
    PostgreSQL would aggregate the same rows several times slower, after
    storing them. Frames are typed as their tables.
    """
    import polars as pl

    con = _scratch().cursor()  # a cursor per call: its registrations are its own
    try:
        con.register("fact_sale", sales.to_arrow())
        con.register("fact_sale_line", lines.to_arrow())
        found = {}
        for mart in MARTS.values():
            if mart.grain in (BRANCH_DAY, CUSTOMER):
                rows = pl.DataFrame(con.sql(mart.select()).to_arrow_table())
                found[mart.table] = rows.cast(pl.Schema(TABLES[mart.table].polars_schema()))
        return found
    finally:
        con.close()


@functools.cache
def _scratch() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process for :func:`of_batch` (opening one costs ~30 ms)."""
    import duckdb

    return duckdb.connect()


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
