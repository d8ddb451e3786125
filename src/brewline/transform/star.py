"""Star-schema frames for a batch of checked files: the pure heart of the transform.

    >>> from brewline.extract import read_export
    >>> from brewline.validate import validate_rows
    >>> raw = read_export(b"25/08/2021 09:00,Leeds,A B,Large Tea - 2.45,2.45,CASH,\\n", "leeds.csv")
    >>> batch = build_star(validate_rows(raw), [FileFacts("x.csv", "ab" * 32, 57, "standard", 0)])
    >>> batch.sales.select("source_line", "total").to_dicts()
    [{'source_line': 1, 'total': Decimal('2.45')}]

No customer name leaves this module: the checked sales have no name column,
and the card is consumed here to make the customer key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from brewline.extract.converters import MONEY, per_distinct
from brewline.keys import file_id, sale_key_base, stable_key
from brewline.schema import TABLES
from brewline.transform.pii import customer_keys
from brewline.validate.rules import ValidatedExport
from brewline.vocabulary import date_key_expr, key_date_expr

__all__ = ["FileFacts", "StarBatch", "build_star", "calendar"]


@dataclass(frozen=True)
class FileFacts:
    """What the ledger records about one version of a landing file."""

    source_name: str
    sha256: str
    size_bytes: int
    layout: str
    skipped_lines: int

    @property
    def file_id(self) -> int:
        return file_id(self.source_name, self.sha256)


@dataclass(frozen=True)
class StarBatch:
    """Everything a batch of files contributes to the warehouse.

    Every fact frame has ``file_id``; ``files`` has one row per file with its
    ledger counts. A batch is loaded in one transaction, so each of its files
    is either wholly visible or not at all.
    """

    files: pl.DataFrame
    branches: pl.DataFrame
    products: pl.DataFrame
    dates: pl.DataFrame
    customers: pl.DataFrame
    sales: pl.DataFrame
    lines: pl.DataFrame
    branch_days: pl.DataFrame
    rejects: pl.DataFrame
    marts: dict[str, pl.DataFrame] | None = None
    """This batch's own mart rows (:func:`brewline.marts.of_batch`) when worked out
    ahead of loading; a part of the batch (:meth:`only`) has none."""

    @classmethod
    def without_data(cls, files: pl.DataFrame) -> StarBatch:
        """A batch that only records ledger rows (every file rejected or skipped)."""
        empty: dict[str, Any] = {name: pl.DataFrame(schema=s) for name, s in SCHEMAS.items()}
        return cls(files=files, **empty)

    def only(self, file_ids: list[int]) -> StarBatch:
        """The part of this batch that belongs to ``file_ids``.

        Branches, products and dates are those the part's sales and lines use: a
        dimension row comes only from rows that load, never from a file left out
        (refused, or committed apart). Customers are those of the part's sales,
        seen first when the part's sales say: another file's sale must not date a
        first sighting.
        """
        if set(file_ids) == set(self.files["file_id"].to_list()):
            return self
        keep = pl.col("file_id").is_in(file_ids)
        sales = self.sales.filter(keep)
        lines = self.lines.filter(keep)
        return StarBatch(
            files=self.files.filter(keep),
            branches=_used(self.branches, sales, "branch_key"),
            products=_used(self.products, lines, "product_key"),
            dates=_used(self.dates, sales, "date_key"),
            customers=_customers(sales),
            sales=sales,
            lines=lines,
            branch_days=self.branch_days.filter(keep),
            rejects=self.rejects.filter(keep),
        )


SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    frame: TABLES[table].polars_schema()
    for frame, table in (
        ("branches", "dim_branch"),
        ("products", "dim_product"),
        ("dates", "dim_date"),
        ("customers", "dim_customer"),
        ("sales", "fact_sale"),
        ("lines", "fact_sale_line"),
        ("branch_days", "etl_file_branch_day"),
        ("rejects", "etl_rejected_row"),
    )
}
"""The columns and types of every frame a batch carries to the warehouse (bar ``files``):
each is the row of a declared table (:mod:`brewline.schema`)."""

FILE_COLUMNS = {
    "file_index": pl.Int32,
    "file_id": pl.Int64,
    "source_name": pl.String,
    "sha256": pl.String,
    "size_bytes": pl.Int64,
    "layout": pl.String,
    "skipped_lines": pl.Int32,
    "sale_key_base": pl.Int64,
}


def build_star(
    checked: ValidatedExport, files: list[FileFacts], pii_key: bytes | None = None
) -> StarBatch:
    """Turn checked files into dimension and fact frames with deterministic keys.

    ``files[i]`` describes the file with ``file_index == i`` in ``checked``.
    """
    file_table = _file_table(files)
    sales = _sales(checked.sales, file_table, pii_key)
    lines = _lines(checked.lines, sales)
    rejects = checked.rejects.join(
        file_table.select("file_index", "file_id"), on="file_index"
    ).select("file_id", pl.col("line_no").cast(pl.Int32), "reason")
    return StarBatch(
        files=_file_counts(file_table, sales, rejects),
        branches=sales.select("branch_key", branch_name="branch").unique("branch_key"),
        products=checked.products.select(
            "product_key", product_name="product", size="size", variant="variant"
        ),
        dates=calendar(sales.select("date_key").unique()),
        customers=_customers(sales),
        sales=sales.select(
            "sale_key",
            "file_id",
            pl.col("line_no").alias("source_line"),
            "branch_key",
            "date_key",
            "sold_at",
            "payment_method",
            "total",
            "items",
            "customer_key",
        ),
        lines=lines,
        branch_days=sales.group_by("file_id", "branch_key", "date_key").agg(
            sales=pl.len().cast(pl.Int32)
        ),
        rejects=rejects,
    )


def _used(dimension: pl.DataFrame, facts: pl.DataFrame, key: str) -> pl.DataFrame:
    """The rows of a dimension that some fact row refers to."""
    return dimension.filter(pl.col(key).is_in(facts[key].unique().implode()))


def _customers(sales: pl.DataFrame) -> pl.DataFrame:
    """``dim_customer`` rows of some sales: each customer token, first seen at its earliest."""
    return (
        sales.filter(pl.col("customer_key").is_not_null())
        .group_by("customer_key")
        .agg(first_seen_at=pl.col("sold_at").min())
    )


def _file_table(files: list[FileFacts]) -> pl.DataFrame:
    rows = [
        (
            i,
            f.file_id,
            f.source_name,
            f.sha256,
            f.size_bytes,
            f.layout,
            f.skipped_lines,
            sale_key_base(f.source_name),
        )
        for i, f in enumerate(files)
    ]
    return pl.DataFrame(rows, schema=FILE_COLUMNS, orient="row")


def _file_counts(
    file_table: pl.DataFrame, sales: pl.DataFrame, rejects: pl.DataFrame
) -> pl.DataFrame:
    loaded = sales.group_by("file_id").agg(rows_loaded=pl.len().cast(pl.Int32))
    rejected = rejects.group_by("file_id").agg(rows_rejected=pl.len().cast(pl.Int32))
    return (
        file_table.drop("file_index", "sale_key_base")
        .join(loaded, on="file_id", how="left", maintain_order="left")
        .join(rejected, on="file_id", how="left", maintain_order="left")
        .with_columns(pl.col("rows_loaded", "rows_rejected").fill_null(0))
        .with_columns(rows_read=pl.col("rows_loaded") + pl.col("rows_rejected"))
    )


def _sales(sales: pl.DataFrame, file_table: pl.DataFrame, pii_key: bytes | None) -> pl.DataFrame:
    index = sales["file_index"]
    return sales.with_columns(
        file_id=file_table["file_id"].gather(index),
        sale_key=file_table["sale_key_base"].gather(index) + pl.col("line_no"),
        branch_key=_per_run(sales["branch"], _branch_key),
        date_key=per_distinct(sales["sold_at"].dt.date(), date_key_expr),
        customer_key=customer_keys(sales["card"], pii_key),
        total=pl.col("total").cast(MONEY),
    ).drop("card")


def _lines(lines: pl.DataFrame, sales: pl.DataFrame) -> pl.DataFrame:
    """Sale lines with their sale's keys.

    Both frames come in ``row`` order and every line's row is a valid sale, so
    each line's sale is found by position (:func:`_positions`), not a hash join.
    """
    at = _positions(sales["row"], lines["row"])
    sale_columns = sales.select("sale_key", "file_id", "branch_key", "date_key")
    return pl.concat([lines, sale_columns[at]], how="horizontal").select(
        "sale_key",
        "product_key",
        "file_id",
        "branch_key",
        "date_key",
        "quantity",
        pl.col("unit_price").cast(MONEY),
        pl.col("line_amount").cast(MONEY),
    )


def _positions(sorted_rows: pl.Series, rows: pl.Series) -> pl.Series:
    """``sorted_rows.search_sorted(rows)`` (leftmost) for small non-negative row numbers.

    A row's position is how many sorted rows lie below it: one running count over
    the row numbers (at most the batch's rows), where a binary search per line costs
    several times more.
    """
    sales = sorted_rows.to_numpy()
    wanted = rows.to_numpy()
    size = int(max(np.max(sales, initial=0), np.max(wanted, initial=0))) + 1
    # below[r]: how many sorted rows are < r (bincount counts a repeated row each time).
    below = np.cumsum(np.bincount(sales.astype(np.int64) + 1, minlength=size + 1))
    return pl.Series(below[wanted.astype(np.int64)])


def _per_run(column: pl.Series, convert: Callable[[pl.Expr], pl.Expr]) -> pl.Series:
    """``per_distinct`` for a column whose equal values come in runs (a file's branch).

    Only each run's first value is converted, then repeated over its run: comparing
    each value with the one before is cheaper than hashing every value into a mapping.
    """
    if column.is_empty():
        return per_distinct(column, convert)
    starts = column.ne_missing(column.shift(1)).scatter(0, True)
    converted = per_distinct(column.filter(starts), convert)
    return converted.gather(starts.cast(pl.UInt32).cum_sum() - 1)


def _branch_key(branch: pl.Expr) -> pl.Expr:
    return branch.map_batches(
        lambda names: pl.Series([stable_key("branch", n) for n in names], dtype=pl.Int64),
        return_dtype=pl.Int64,
    )


def calendar(date_keys: pl.DataFrame) -> pl.DataFrame:
    """Calendar attributes for each ``date_key`` (the rows of ``dim_date``)."""
    key = pl.col("date_key")
    day = pl.col("date")
    return date_keys.with_columns(date=key_date_expr(key)).select(
        "date_key",
        "date",
        year=day.dt.year().cast(pl.Int16),
        quarter=day.dt.quarter().cast(pl.Int16),
        month=day.dt.month().cast(pl.Int16),
        month_name=day.dt.strftime("%B"),
        day_of_month=day.dt.day().cast(pl.Int16),
        day_of_week=day.dt.weekday().cast(pl.Int16),
        day_name=day.dt.strftime("%A"),
        iso_week=day.dt.week().cast(pl.Int16),
        is_weekend=day.dt.weekday() >= 6,
    )
