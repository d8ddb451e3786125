"""The marts, recomputed independently of Brewline's SQL: a test's own definition of each.

:func:`assert_marts_exact` checks both that every mart equals its aggregate as
``brewline.marts`` defines it (the check ``brewline check`` runs) and that it
equals a recomputation in Polars from the fact tables written here from the
README's description, so a wrong definition cannot pass by agreeing with itself.
"""

from __future__ import annotations

import polars as pl

from brewline.load import open_warehouse
from brewline.load.roles import Reader
from brewline.marts import MARTS, mismatch_sql
from brewline.schema import TABLES


def recomputed(wh: Reader) -> dict[str, pl.DataFrame]:
    periods = (
        (pl.col("date_key") // 100).alias("month_key"),
        (pl.col("date_key") // 10000).alias("year_key"),
    )
    sales = wh.query("SELECT * FROM fact_sale").with_columns(*periods)
    lines = wh.query("SELECT * FROM fact_sale_line").with_columns(*periods)
    tokenised = pl.col("customer_key").is_not_null()
    sums = {
        "sales": pl.len(),
        "revenue": pl.col("total").sum(),
        "units": pl.col("items").sum(),
        "customer_sales": tokenised.sum(),
        "customer_revenue": pl.when(tokenised).then(pl.col("total")).otherwise(0).sum(),
    }
    hours = (
        pl.col("sold_at").dt.weekday().alias("weekday"),
        pl.col("sold_at").dt.hour().alias("hour"),
    )
    hourly = {"sales": pl.len(), "revenue": pl.col("total").sum()}
    items = {
        "units": pl.col("quantity").sum(),
        "revenue": pl.col("line_amount").sum(),
        "sales": pl.len(),
    }
    return {
        "mart_sales_day": sales.group_by("branch_key", "date_key", "payment_method").agg(**sums),
        "mart_sales_hour": sales.group_by("branch_key", "date_key", *hours).agg(**hourly),
        "mart_product_day": lines.group_by("branch_key", "date_key", "product_key").agg(**items),
        **{
            f"mart_{name}_{period}": frame.group_by("branch_key", f"{period}_key", *keys).agg(
                **sums_
            )
            for period in ("month", "year")
            for name, frame, keys, sums_ in (
                ("sales", sales, ("payment_method",), sums),
                ("sales_hour", sales, hours, hourly),
                ("product", lines, ("product_key",), items),
            )
        },
        "mart_customer_first": sales.filter(tokenised)
        .sort("sold_at", "sale_key")
        .group_by("customer_key", maintain_order=True)
        .first(),
    }


def _rows(frame: pl.DataFrame, table: str) -> list[tuple[object, ...]]:
    schema = TABLES[table].polars_schema()
    typed = frame.select(list(schema)).cast(pl.Schema(schema))
    return sorted(typed.rows(), key=repr)


def assert_marts_exact(url: str) -> None:
    """Every mart equals its aggregate of the facts, by Brewline's definition and by ours."""
    with open_warehouse(url, read_only=True) as wh:
        for mart in MARTS.values():
            assert wh.query(mismatch_sql(mart))["rows"][0] == 0, mart.table
        for table, expected in recomputed(wh).items():
            stored = wh.query(f"SELECT * FROM {table}")
            assert _rows(stored, table) == _rows(expected, table), table
