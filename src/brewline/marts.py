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
marts are small: a branch-day has three payment methods, ~14 trading hours and
~30 menu items, so ten million sales make ~100k, ~450k and ~1M rows.

    >>> print(MARTS["mart_sales_hour"].select())  # doctest: +NORMALIZE_WHITESPACE
    SELECT branch_key, date_key, CAST(EXTRACT(HOUR FROM sold_at) AS SMALLINT) AS hour,
           COUNT(*) AS sales, CAST(SUM(total) AS DECIMAL(18,2)) AS revenue
    FROM fact_sale WHERE TRUE
    GROUP BY branch_key, date_key, CAST(EXTRACT(HOUR FROM sold_at) AS SMALLINT)

SQL is the portable subset of DuckDB and PostgreSQL (``DISTINCT ON`` is in both).
"""

from __future__ import annotations

from dataclasses import dataclass

from brewline.schema import MONEY_SQL, TABLES

__all__ = [
    "BRANCH_DAY",
    "CUSTOMER",
    "DAY_SCOPE",
    "MARTS",
    "Mart",
    "mismatch_sql",
]

BRANCH_DAY = "branch_day"
"""Grain of marts whose rows belong to one (branch, trading day): refreshed per branch-day."""
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
    """The fact table it summarises."""
    aggregate: str
    """A SELECT of the table's columns, in order, from ``{source}``; ``{scope}`` restricts rows."""

    def select(self, scope: str = "TRUE", source: str | None = None) -> str:
        """The aggregate of ``scope``, from the fact table or ``source``, a relation of its rows."""
        return self.aggregate.format(scope=scope, source=source or self.source)

    def refresh(self, scope: str, source: str | None = None) -> list[str]:
        """Statements that make the mart's rows in ``scope`` equal their aggregate again.

        ``source`` may name a relation that holds every fact row in ``scope``
        (a batch's staged rows), which is cheaper to scan than the fact table.
        """
        columns = ", ".join(TABLES[self.table].names)
        return [
            f"DELETE FROM {self.table} WHERE {scope}",
            f"INSERT INTO {self.table} ({columns}) {self.select(scope, source)}",
        ]


_MONEY = f"AS {MONEY_SQL})"
_HOUR = "CAST(EXTRACT(HOUR FROM sold_at) AS SMALLINT)"

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
            f"""SELECT branch_key, date_key, {_HOUR} AS hour,
                   COUNT(*) AS sales, CAST(SUM(total) {_MONEY} AS revenue
            FROM {{source}} WHERE {{scope}}
            GROUP BY branch_key, date_key, {_HOUR}""",
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


def mismatch_sql(mart: Mart) -> str:
    """One row, one column: how many rows the mart and its aggregate of all facts do not share.

    Counted both ways with ``EXCEPT ALL``, so a missing, extra, duplicated or
    wrong row each count; zero means the mart is exact.
    """
    columns = ", ".join(TABLES[mart.table].names)
    stored = f"SELECT {columns} FROM {mart.table}"
    truth = f"SELECT {columns} FROM ({mart.select()}) AS truth"
    return (
        f"SELECT COUNT(*) AS rows FROM (({stored} EXCEPT ALL {truth}) "
        f"UNION ALL ({truth} EXCEPT ALL {stored})) AS differing"
    )
