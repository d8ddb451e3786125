"""Read-only questions over the star schema and the ledger, answered as Polars frames.

Every function takes an open :class:`~brewline.load.Reader` and runs portable
SQL (the common subset of DuckDB and PostgreSQL, ``?`` placeholders), so the CLI,
the dashboard and notebooks ask the same questions the same way::

    >>> from brewline.load import open_warehouse
    >>> with open_warehouse("brewline.duckdb", read_only=True) as wh:  # doctest: +SKIP
    ...     wh.check_schema()
    ...     best_sellers(wh, limit=3)

Sales questions read the marts (:mod:`brewline.marts`), which every load keeps
equal to the facts; whole-history questions read the year rollups, so they
cost little more at a hundred million sales than at ten thousand.

Money comes back exact (``Decimal``, dtype :data:`MONEY`); only shares and
averages of counts are floats. Every frame is cast to a fixed schema, so both
engines return the same dtypes, empty results included. Averages of money are
divided in Python with ``Decimal`` because the two engines disagree on what
``/`` means for integers and decimals. Ledger views never hold row content:
only file names, states, reasons, counts and times.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl

from brewline.load import Reader
from brewline.load.ledger import COMMITTED_BY_RUN, COMMITTED_COLUMNS
from brewline.load.roles import Params
from brewline.schema import MONEY as MONEY_TYPE
from brewline.schema import MONEY_SQL
from brewline.vocabulary import RunState

__all__ = [
    "MONEY",
    "basket_stats",
    "best_sellers",
    "busiest_hours",
    "customer_mix",
    "files_by_state",
    "headline",
    "new_customers",
    "payment_mix",
    "recent_runs",
    "rejected_files",
    "rejects_by_reason",
    "revenue_by_branch",
    "revenue_by_day",
    "sales_report",
    "split_customers",
    "status_report",
    "with_share",
]

MONEY = MONEY_TYPE.polars_type()
"""The dtype of every money column: the warehouse's one money type (exact, two decimals)."""

_CENT = Decimal("0.01")
_SQL_MONEY = MONEY_SQL
_SHARE = "CAST(SUM(sales) AS DOUBLE PRECISION) / CAST(SUM(SUM(sales)) OVER () AS DOUBLE PRECISION)"
_TIME = pl.Datetime("us")

Schema = Mapping[str, pl.DataType]


def _ask(wh: Reader, sql: str, schema: Schema, params: Params = ()) -> pl.DataFrame:
    """Run ``sql`` and cast the answer to ``schema`` (engines differ in result types)."""
    return wh.query(sql, params).cast(pl.Schema(schema))


# -- sales -----------------------------------------------------------------------------

_BEST_SELLERS = {
    "product": pl.String(),
    "size": pl.String(),
    "variant": pl.String(),
    "units": pl.Int64(),
    "revenue": MONEY,
}


def best_sellers(wh: Reader, limit: int = 10) -> pl.DataFrame:
    """Menu items by units sold: ``product, size, variant, units, revenue``.

    Ties are broken by revenue, then by name, so the order is stable.

        >>> best_sellers(wh, limit=1).row(0)  # doctest: +SKIP
        ('Flavoured iced latte', 'Regular', 'Caramel', 1189, Decimal('3269.75'))
    """
    sql = f"""
        SELECT p.product_name AS product, p.size, p.variant,
               CAST(SUM(l.units) AS BIGINT) AS units,
               CAST(SUM(l.revenue) AS {_SQL_MONEY}) AS revenue
        FROM mart_product_year l JOIN dim_product p ON p.product_key = l.product_key
        GROUP BY p.product_name, p.size, p.variant
        ORDER BY units DESC, revenue DESC, product, p.size, p.variant NULLS FIRST
        LIMIT ?
    """
    return _ask(wh, sql, _BEST_SELLERS, (limit,))


_BY_BRANCH = {"branch": pl.String(), "sales": pl.Int64(), "revenue": MONEY, "share": pl.Float64()}


def revenue_by_branch(wh: Reader) -> pl.DataFrame:
    """Sales and revenue per branch, largest first: ``branch, sales, revenue, share``.

    ``share`` is the branch's fraction of all revenue (a float).

        >>> revenue_by_branch(wh)["branch"][0]  # doctest: +SKIP
        'Chesterfield'
    """
    sql = f"""
        SELECT b.branch_name AS branch, CAST(SUM(s.sales) AS BIGINT) AS sales,
               CAST(SUM(s.revenue) AS {_SQL_MONEY}) AS revenue,
               CAST(SUM(s.revenue) AS DOUBLE PRECISION)
                 / CAST(SUM(SUM(s.revenue)) OVER () AS DOUBLE PRECISION) AS share
        FROM mart_sales_year s JOIN dim_branch b ON b.branch_key = s.branch_key
        GROUP BY b.branch_name
        ORDER BY revenue DESC, branch
    """
    return _ask(wh, sql, _BY_BRANCH)


_BY_DAY = {"date": pl.Date(), "sales": pl.Int64(), "revenue": MONEY}


def revenue_by_day(wh: Reader, days: int | None = None) -> pl.DataFrame:
    """Sales and revenue per trading day, oldest first: ``date, sales, revenue``.

    ``days`` keeps only the latest that many dates with sales (all when None).

        >>> revenue_by_day(wh, days=14).columns  # doctest: +SKIP
        ['date', 'sales', 'revenue']
    """
    latest = "" if days is None else "ORDER BY d.date DESC LIMIT ?"
    sql = f"""
        SELECT * FROM (
            SELECT d.date AS date, CAST(SUM(s.sales) AS BIGINT) AS sales,
                   CAST(SUM(s.revenue) AS {_SQL_MONEY}) AS revenue
            FROM mart_sales_day s JOIN dim_date d ON d.date_key = s.date_key
            GROUP BY d.date {latest}
        ) AS per_day
        ORDER BY date
    """
    return _ask(wh, sql, _BY_DAY, () if days is None else (days,))


_BY_HOUR = {"hour": pl.Int32(), "sales": pl.Int64(), "revenue": MONEY}


def busiest_hours(wh: Reader) -> pl.DataFrame:
    """Sales per hour of the (branch-local) day, busiest first: ``hour, sales, revenue``.

    >>> busiest_hours(wh)["hour"][0]  # doctest: +SKIP
    14
    """
    sql = f"""
        SELECT hour, CAST(SUM(sales) AS BIGINT) AS sales,
               CAST(SUM(revenue) AS {_SQL_MONEY}) AS revenue
        FROM mart_sales_hour_year
        GROUP BY hour
        ORDER BY sales DESC, hour
    """
    return _ask(wh, sql, _BY_HOUR)


_PAYMENTS = {"method": pl.String(), "sales": pl.Int64(), "share": pl.Float64(), "revenue": MONEY}


def payment_mix(wh: Reader) -> pl.DataFrame:
    """Sales by payment method: ``method, sales, share, revenue`` (share of sales, a float).

    >>> payment_mix(wh).filter(pl.col("method") == "CARD")["share"][0]  # doctest: +SKIP
    0.714
    """
    sql = f"""
        SELECT payment_method AS method, CAST(SUM(sales) AS BIGINT) AS sales, {_SHARE} AS share,
               CAST(SUM(revenue) AS {_SQL_MONEY}) AS revenue
        FROM mart_sales_year
        GROUP BY payment_method
        ORDER BY sales DESC, method
    """
    return _ask(wh, sql, _PAYMENTS)


_BASKET_SUMS = {"sales": pl.Int64(), "revenue": MONEY, "units": pl.Int64()}


def basket_stats(wh: Reader) -> pl.DataFrame:
    """One row: ``sales, revenue, units, avg_basket, avg_items``.

    ``avg_basket`` is revenue per sale rounded half-up to the penny (a Decimal);
    ``avg_items`` is units per sale (a float). Both are null when there are no sales.

        >>> basket_stats(wh).row(0)  # doctest: +SKIP
        (10163, Decimal('63758.75'), 28107, Decimal('6.27'), 2.765...)
    """
    sql = f"""
        SELECT CAST(COALESCE(SUM(sales), 0) AS BIGINT) AS sales,
               CAST(SUM(revenue) AS {_SQL_MONEY}) AS revenue,
               CAST(SUM(units) AS BIGINT) AS units
        FROM mart_sales_year
    """
    sums = _ask(wh, sql, _BASKET_SUMS)
    sales, revenue, units = sums.row(0)
    avg_basket = (revenue / sales).quantize(_CENT, ROUND_HALF_UP) if sales else None
    return sums.with_columns(
        pl.Series("avg_basket", [avg_basket], dtype=MONEY),
        pl.Series("avg_items", [units / sales if sales else None], dtype=pl.Float64),
    )


_CUSTOMERS = {"customer": pl.String(), "sales": pl.Int64(), "share": pl.Float64(), "revenue": MONEY}


def customer_mix(wh: Reader) -> pl.DataFrame:
    """Sales by new vs returning customers: ``customer, sales, share, revenue``.

    Only sales with a customer token count (card sales loaded with a PII key); a
    sale is ``new`` when it is that customer's first by ``sold_at`` (ties broken
    by sale key), ``returning`` otherwise. ``share`` is of tokenised sales. The
    frame is empty when no sale has a token.

        >>> customer_mix(wh)["customer"].to_list()  # doctest: +SKIP
        ['new', 'returning']
    """
    sums = _ask(
        wh,
        "SELECT CAST(COALESCE(SUM(customer_sales), 0) AS BIGINT) AS tokens, "
        f"CAST(COALESCE(SUM(customer_revenue), 0) AS {_SQL_MONEY}) AS token_revenue "
        "FROM mart_sales_year",
        _TOKENS,
    )
    return split_customers(sums, new_customers(wh)).select(*_CUSTOMERS)


_TOKENS = {"tokens": pl.Int64(), "token_revenue": MONEY}
_NEW = {"sales": pl.Int64(), "revenue": MONEY}


def new_customers(wh: Reader, where: str = "1 = 1", params: Params = ()) -> pl.DataFrame:
    """One row, ``sales, revenue``: customers' first sales in a slice (all by default).

    A customer's first sale is the earliest by ``sold_at``, ties broken by
    ``sale_key``, anywhere in the chain (``mart_customer_first``, aliased ``m``
    in ``where``): a regular seen first at another branch or in an earlier week
    is *returning* in every slice.
    """
    sql = f"""
        SELECT COUNT(*) AS sales, CAST(COALESCE(SUM(m.total), 0) AS {_SQL_MONEY}) AS revenue
        FROM mart_customer_first m WHERE {where}
    """
    return _ask(wh, sql, _NEW, params)


def split_customers(sums: pl.DataFrame, firsts: pl.DataFrame) -> pl.DataFrame:
    """New vs returning customers in a slice: ``customer, sales, revenue, share``.

    ``sums`` (with ``tokens, token_revenue``: sales with a customer token) and
    ``firsts`` (customers' first sales: ``sales, revenue``) must cover the same
    slice; every tokenised sale that is not a customer's first is returning.
    Empty when the slice has no token.
    """
    tokens = int(sums["tokens"].sum())
    if not tokens:
        return pl.DataFrame(schema={**_MIX, "share": pl.Float64()})
    new_sales = int(firsts["sales"].sum())
    new_revenue = Decimal(firsts["revenue"].sum()) if new_sales else Decimal("0.00")
    token_revenue = Decimal(sums["token_revenue"].sum())
    mix = pl.DataFrame(
        {
            "customer": ["new", "returning"],
            "sales": [new_sales, tokens - new_sales],
            "revenue": [new_revenue, token_revenue - new_revenue],
        },
        schema=_MIX,
    )
    return with_share(mix, "sales")


_MIX = {"customer": pl.String(), "sales": pl.Int64(), "revenue": MONEY}


def with_share(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``frame`` with ``share``: each row's fraction of the column's total (a float)."""
    whole = pl.col(column).cast(pl.Float64)
    return frame.with_columns((whole / whole.sum()).alias("share"))


# -- ledger ----------------------------------------------------------------------------

_RUN_COUNTS = (
    "files_loaded",
    "files_skipped",
    "files_replaced",
    "files_rejected",
    "rows_read",
    "rows_loaded",
    "rows_rejected",
)
_RUNS = {
    "run_id": pl.String(),
    "started_at": _TIME,
    "finished_at": _TIME,
    "status": pl.String(),
    **dict.fromkeys(_RUN_COUNTS, pl.Int64()),
    "seconds": pl.Float64(),
    "error": pl.String(),
}


def recent_runs(wh: Reader, limit: int = 10) -> pl.DataFrame:
    """The latest runs, newest first, with their totals and any run-level error.

    Times are UTC. Columns: ``run_id, started_at, finished_at, status``, the
    file and row counts of :meth:`brewline.report.RunReport.totals`, ``seconds, error``.

        >>> recent_runs(wh, limit=1)["status"][0]  # doctest: +SKIP
        'succeeded'
    """
    sql = f"""
        SELECT {", ".join(_RUNS)}
        FROM etl_run ORDER BY started_at DESC, run_id DESC LIMIT ?
    """
    runs = _ask(wh, sql, _RUNS, (limit,))
    if not (runs["status"] == RunState.RUNNING).any():
        return runs
    return pl.concat(
        [
            _as_committed(wh, run_id) if status == RunState.RUNNING else run
            for run, run_id, status in zip(
                runs.iter_slices(1), runs["run_id"], runs["status"], strict=True
            )
        ]
    )


def _as_committed(wh: Reader, run_id: str) -> pl.DataFrame:
    """A run the ledger says is running: ``abandoned`` when its process is gone (killed,
    and no runner has marked it yet), and either way with what it has committed so far."""
    alive = wh.run_is_alive(run_id)
    # Read after asking: a run that finished meanwhile has recorded its end.
    run = _ask(wh, f"SELECT {', '.join(_RUNS)} FROM etl_run WHERE run_id = ?", _RUNS, (run_id,))
    if run["status"][0] != RunState.RUNNING:
        return run
    committed = _ask(wh, COMMITTED_BY_RUN, dict.fromkeys(COMMITTED_COLUMNS, pl.Int64()), (run_id,))
    status = RunState.RUNNING if alive else RunState.ABANDONED
    return run.with_columns(committed).with_columns(status=pl.lit(status.value))


_STATES = {
    "state": pl.String(),
    "files": pl.Int64(),
    "rows_read": pl.Int64(),
    "rows_loaded": pl.Int64(),
    "rows_rejected": pl.Int64(),
}


def files_by_state(wh: Reader) -> pl.DataFrame:
    """File versions per ledger state: ``state, files, rows_read, rows_loaded, rows_rejected``.

    States come in the order loaded, skipped, replaced, rejected.

        >>> files_by_state(wh)["state"].to_list()  # doctest: +SKIP
        ['loaded', 'skipped']
    """
    sql = """
        SELECT state, COUNT(*) AS files, CAST(SUM(rows_read) AS BIGINT) AS rows_read,
               CAST(SUM(rows_loaded) AS BIGINT) AS rows_loaded,
               CAST(SUM(rows_rejected) AS BIGINT) AS rows_rejected
        FROM etl_file
        GROUP BY state
        ORDER BY CASE state WHEN 'loaded' THEN 1 WHEN 'skipped' THEN 2
                 WHEN 'replaced' THEN 3 WHEN 'rejected' THEN 4 ELSE 5 END, state
    """
    return _ask(wh, sql, _STATES)


_REJECTS = {
    "level": pl.String(),
    "reason": pl.String(),
    "rows_rejected": pl.Int64(),
    "files": pl.Int64(),
}


def rejects_by_reason(wh: Reader) -> pl.DataFrame:
    """Why rows were kept out of the warehouse: ``level, reason, rows_rejected, files``.

    ``level`` is ``row`` (single rows rejected from a loaded file) or ``file``
    (a whole file rejected). Versions that were later replaced are not counted:
    this is what is missing from the warehouse now.

        >>> rejects_by_reason(wh).columns  # doctest: +SKIP
        ['level', 'reason', 'rows_rejected', 'files']
    """
    sql = """
        SELECT level, reason, rows_rejected, files FROM (
            SELECT 'row' AS level, r.reason, COUNT(*) AS rows_rejected,
                   COUNT(DISTINCT r.file_id) AS files
            FROM etl_rejected_row r JOIN etl_file f ON f.file_id = r.file_id
            WHERE f.state <> 'replaced'
            GROUP BY r.reason
            UNION ALL
            SELECT 'file' AS level, reason, CAST(SUM(rows_rejected) AS BIGINT) AS rows_rejected,
                   COUNT(*) AS files
            FROM etl_file WHERE state = 'rejected'
            GROUP BY reason
        ) AS rejects
        ORDER BY rows_rejected DESC, level, reason
    """
    return _ask(wh, sql, _REJECTS)


_REJECTED_FILES = {
    "source_name": pl.String(),
    "reason": pl.String(),
    "message": pl.String(),
    "recorded_at": _TIME,
}


def rejected_files(wh: Reader, limit: int = 20) -> pl.DataFrame:
    """The latest whole-file rejections: ``source_name, reason, message, recorded_at`` (UTC).

    >>> rejected_files(wh)["reason"].to_list()  # doctest: +SKIP
    ['unrecognised_layout']
    """
    sql = """
        SELECT source_name, reason, message, recorded_at FROM etl_file
        WHERE state = 'rejected'
        ORDER BY recorded_at DESC, source_name LIMIT ?
    """
    return _ask(wh, sql, _REJECTED_FILES, (limit,))


# -- bundles for clients ---------------------------------------------------------------


def sales_report(wh: Reader, *, limit: int = 10, days: int = 14) -> dict[str, pl.DataFrame]:
    """Every sales view a report shows, after :meth:`~brewline.load.Reader.check_schema`.

    ``limit`` bounds the best sellers, ``days`` the latest trading days shown.

        >>> list(sales_report(wh))  # doctest: +SKIP
        ['best_sellers', 'revenue_by_branch', 'revenue_by_day', 'busiest_hours', ...]
    """
    wh.check_schema()
    return {
        "best_sellers": best_sellers(wh, limit),
        "revenue_by_branch": revenue_by_branch(wh),
        "revenue_by_day": revenue_by_day(wh, days),
        "busiest_hours": busiest_hours(wh),
        "payment_mix": payment_mix(wh),
        "customer_mix": customer_mix(wh),
        "basket": basket_stats(wh),
    }


def status_report(wh: Reader, *, limit: int = 10) -> dict[str, pl.DataFrame]:
    """Every ledger view a status shows, after :meth:`~brewline.load.Reader.check_schema`.

    >>> list(status_report(wh))  # doctest: +SKIP
    ['recent_runs', 'files_by_state', 'rejects_by_reason', 'rejected_files', 'source_watermarks']
    """
    wh.check_schema()
    return {
        "recent_runs": recent_runs(wh, limit),
        "files_by_state": files_by_state(wh),
        "rejects_by_reason": rejects_by_reason(wh),
        "rejected_files": rejected_files(wh, limit),
        "source_watermarks": source_watermarks(wh),
    }


def source_watermarks(wh: Reader) -> pl.DataFrame:
    """Incremental sources (totesys): each table's watermark and when a sync last moved it.

    The watermark is the time a cursor covers (every commit before it is extracted):
    a totesys cursor's ``watermark`` (see :mod:`brewline.totesys.cursor`), else the
    cursor's value as it is."""
    found = wh.query(
        "SELECT source || '.' || name AS source_table, value AS watermark, "
        "updated_at AS synced_at FROM etl_cursor ORDER BY source, name"
    )
    value = pl.col("watermark")
    return found.with_columns(pl.coalesce(value.str.json_path_match("$.watermark"), value))


def headline(wh: Reader) -> dict[str, Any]:
    """A handful of figures for a one-screen summary (``None`` where there is no data).

    Keys: ``sales, revenue, avg_basket, best_seller`` (product, size, variant),
    ``busiest_hour, top_branch, card_share`` and ``returning_share`` (of tokenised
    sales; None when no sale has a customer token).

        >>> headline(wh)["sales"]  # doctest: +SKIP
        10163
    """
    wh.check_schema()
    basket = basket_stats(wh).row(0, named=True)
    top = best_sellers(wh, 1)
    cards = payment_mix(wh).filter(pl.col("method") == "CARD")
    return {
        "sales": basket["sales"],
        "revenue": basket["revenue"],
        "avg_basket": basket["avg_basket"],
        "best_seller": top.select("product", "size", "variant").row(0) if top.height else None,
        "busiest_hour": _first(busiest_hours(wh), "hour", None),
        "top_branch": _first(revenue_by_branch(wh), "branch", None),
        "card_share": _first(cards, "share", 0.0 if basket["sales"] else None),
        "returning_share": _returning_share(customer_mix(wh)),
    }


def _returning_share(mix: pl.DataFrame) -> float | None:
    if mix.is_empty():
        return None
    return float(_first(mix.filter(pl.col("customer") == "returning"), "share", 0.0))


def _first(frame: pl.DataFrame, column: str, default: Any) -> Any:
    return frame[column][0] if frame.height else default
