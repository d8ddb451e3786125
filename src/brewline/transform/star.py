"""Star-schema frames for one checked file: the pure heart of the transform.

    >>> from brewline.extract import read_export
    >>> from brewline.validate import check_rows
    >>> raw = read_export(b"25/08/2021 09:00,Leeds,A B,Large Latte - 2.45,2.45,CASH,\\n", "x.csv")
    >>> batch = build_star(check_rows(raw), FileFacts("x.csv", "ab" * 32, 57, "standard", 0))
    >>> batch.sales.select("source_line", "total").to_dicts()
    [{'source_line': 1, 'total': Decimal('2.45')}]

No customer name leaves this module: ``checked.sales`` has no name column, and
the card is consumed here to make the customer key.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from brewline.transform.keys import file_id, key_column, sale_key_base
from brewline.transform.parse import MONEY
from brewline.transform.pii import customer_keys
from brewline.validate.rules import CheckedExport

__all__ = ["FileFacts", "StarBatch", "build_star", "calendar"]

LINE_MONEY = pl.Decimal(12, 2)


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
    """Everything one file contributes to the warehouse, loaded in one transaction."""

    file: FileFacts
    branches: pl.DataFrame
    products: pl.DataFrame
    dates: pl.DataFrame
    customers: pl.DataFrame
    sales: pl.DataFrame
    lines: pl.DataFrame
    branch_days: pl.DataFrame
    rejects: pl.DataFrame

    @property
    def rows_loaded(self) -> int:
        return self.sales.height

    @property
    def rows_rejected(self) -> int:
        return self.rejects.height

    @property
    def rows_read(self) -> int:
        return self.rows_loaded + self.rows_rejected


def build_star(checked: CheckedExport, file: FileFacts, pii_key: bytes | None = None) -> StarBatch:
    """Turn a checked file into dimension and fact frames with deterministic keys."""
    fid = file.file_id
    sales = _sales(checked.sales, file, pii_key)
    lines = _lines(checked.lines, sales)
    return StarBatch(
        file=file,
        branches=sales.select("branch_key", branch_name="branch").unique("branch_key"),
        products=lines.select(
            "product_key", product_name="product", size="size", variant="variant"
        ).unique("product_key"),
        dates=calendar(sales.select("date_key").unique()),
        customers=sales.filter(pl.col("customer_key").is_not_null())
        .group_by("customer_key")
        .agg(first_seen_at=pl.col("sold_at").min()),
        sales=sales.select(
            "sale_key",
            pl.lit(fid, dtype=pl.Int64).alias("file_id"),
            pl.col("line_no").alias("source_line"),
            "branch_key",
            "date_key",
            "sold_at",
            "payment_method",
            "total",
            "items",
            "customer_key",
        ),
        lines=lines.select(
            "sale_key",
            "product_key",
            pl.lit(fid, dtype=pl.Int64).alias("file_id"),
            "branch_key",
            "date_key",
            "quantity",
            "unit_price",
            "line_amount",
        ),
        branch_days=sales.group_by("branch_key", "date_key").agg(sales=pl.len().cast(pl.Int32))
        .with_columns(file_id=pl.lit(fid, dtype=pl.Int64)),
        rejects=checked.rejects.with_columns(file_id=pl.lit(fid, dtype=pl.Int64)).select(
            "file_id", "line_no", "reason"
        ),
    )


def _sales(sales: pl.DataFrame, file: FileFacts, pii_key: bytes | None) -> pl.DataFrame:
    base = sale_key_base(file.source_name)
    keyed = key_column(sales, "branch", ["branch"], "branch_key")
    return keyed.with_columns(
        sale_key=pl.lit(base, dtype=pl.Int64) + pl.col("line_no"),
        date_key=_date_key(pl.col("sold_at")),
        customer_key=customer_keys(keyed["card"], pii_key),
        total=pl.col("total").cast(MONEY),
    ).drop("card")


def _lines(lines: pl.DataFrame, sales: pl.DataFrame) -> pl.DataFrame:
    keyed = key_column(lines, "product", ["product", "size", "variant"], "product_key")
    joined = keyed.join(
        sales.select("line_no", "sale_key", "branch_key", "date_key"), on="line_no", how="inner"
    )
    return joined.with_columns(
        unit_price=pl.col("unit_price").cast(MONEY),
        line_amount=pl.col("line_amount").cast(LINE_MONEY),
    )


def _date_key(timestamp: pl.Expr) -> pl.Expr:
    """``yyyymmdd`` as an integer: readable, sortable and deterministic."""
    year, month, day = (part.cast(pl.Int32) for part in _ymd(timestamp))
    return year * 10000 + month * 100 + day


def _ymd(timestamp: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    return timestamp.dt.year(), timestamp.dt.month(), timestamp.dt.day()


def calendar(date_keys: pl.DataFrame) -> pl.DataFrame:
    """Calendar attributes for each ``date_key`` (the rows of ``dim_date``)."""
    day = pl.col("date")
    key = pl.col("date_key")
    return date_keys.with_columns(
        date=pl.date(key // 10000, key // 100 % 100, key % 100)
    ).select(
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
