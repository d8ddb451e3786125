"""Converters from raw export strings to typed values.

Each converter states its bad-value policy: **a value it cannot read becomes
null**, and the row rules in :mod:`brewline.validate.rules` turn nulls into
named reasons. Nothing here guesses: dates are day-first by rule, prices must
have at most two decimals.

Low-cardinality columns (a day has a few hundred distinct minutes, a menu ~80
items) are converted once per *distinct* value and mapped back with a hash
lookup, so parsing a million sales costs little more than reading them.

    >>> import polars as pl
    >>> pl.select(money(pl.lit("5.2"))).item()
    Decimal('5.20')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from brewline.extract.layouts import Layout
from brewline.keys import stable_key
from brewline.schema import MONEY as MONEY_TYPE

__all__ = [
    "MONEY",
    "BasketItems",
    "basket_items",
    "card_digits",
    "money",
    "per_distinct",
    "timestamps",
]

MONEY = MONEY_TYPE.polars_type()
"""Exact money type (the warehouse's one money type): pounds with two decimals. Never float."""

_MONEY_SHAPE = r"^-?[0-9]{1,7}(\.[0-9]{1,2})?$"
_STANDARD_ITEM = r"^(?:(?<size>Regular|Large) )?(?<name>.+?) - (?<price>[^ ]+)$"
_LEGACY_ITEM = r"^(?<size>[^,]*),(?<name>[^,]+),(?<price>[^,]+)$"
_NAME = r"^(?<product>.+?)(?: - (?<variant>.+))?$"
_CARD = r"^\s*[0-9](?:[ -]?[0-9]){11,18}\s*$"  # 12-19 digits, maybe grouped by spaces or -


def per_distinct(column: pl.Series, convert: Callable[[pl.Expr], pl.Expr]) -> pl.Series:
    """Apply ``convert`` once per distinct value of ``column`` and map the results back."""
    distinct = column.unique()
    converted = pl.select(convert(pl.lit(distinct))).to_series()
    kept = converted.is_not_null()
    if converted.dtype == column.dtype and distinct.filter(kept).equals(converted.filter(kept)):
        # Every value converts to itself or to null (a payment already "CASH", a branch
        # already stripped): a membership test of the kept values is cheaper than mapping.
        keep = pl.lit(column).is_in(distinct.filter(kept).implode())
        return pl.select(pl.when(keep).then(pl.lit(column))).to_series()
    return column.replace_strict(distinct, converted, default=None, return_dtype=converted.dtype)


def money(text: pl.Expr) -> pl.Expr:
    """Parse ``5.2``/``13.45``/``5`` into exact money; anything else (``1.234``, ``£5``) -> null."""
    text = text.str.strip_chars()
    return pl.when(text.str.contains(_MONEY_SHAPE)).then(text.cast(MONEY, strict=False))


def timestamps(text: pl.Expr, layout: Layout) -> pl.Expr:
    """Parse a layout's timestamps (local time); unparseable or impossible dates -> null.

    Day-first is the rule for the standard layout; ``8/8/2023 9:00`` (Excel's
    un-padded form) and an optional ``:SS`` are accepted.
    """
    text = text.str.strip_chars()
    fmt = layout.timestamp_format
    parsed = pl.coalesce(
        text.str.replace("T", " ").str.to_datetime(fmt, strict=False, time_unit="us", cache=False),
        text.str.to_datetime(f"{fmt}:%S", strict=False, time_unit="us", cache=False),
    )
    # %Y alone would read "25/08/21" as the year 21: the shape insists on four digits.
    return pl.when(text.str.contains(layout.timestamp_shape)).then(parsed)


def card_digits(text: pl.Expr, layout: Layout) -> pl.Expr:
    """The card number's digits, or null when absent or unusable.

    Standard layout: 12-19 digits (padding and digit groups like ``5494 1737 ...``
    allowed; the same card always gives the same digits). Excel-destroyed cards
    (``5.49E+15``) and anything else give null: no customer token, never a guess.
    Legacy layout: ``"visa,5494173772652516"``; ``None`` gives null.
    """
    if layout.basket == "triples":
        text = text.str.split(",").list.last()
    # One pass removing both separators: two replace_all passes each copy every string.
    digits = text.str.replace_many([" ", "-"], ["", ""])
    return pl.when(text.str.contains(_CARD)).then(digits)


@dataclass(frozen=True)
class BasketItems:
    """A file's basket items as integers into a small menu of distinct items.

    ``items``: ``row, item_id`` (one row per item in a basket);
    ``menu``: ``item_id, size, product, variant, price, product_key, product_index``,
    one row per distinct item string, with null ``product``/``price`` when
    unreadable; ``product_index`` numbers the distinct products densely from 0.
    """

    items: pl.DataFrame
    menu: pl.DataFrame


def basket_items(rows: pl.DataFrame, layout: Layout) -> BasketItems:
    """Split each row's basket into items; parse each distinct item once.

    ``rows`` needs ``row`` (any integer id, kept on each item) and ``basket``.
    """
    exploded = _item_strings(rows, layout)
    distinct = exploded["item"].unique()
    menu = _parse_items(distinct, layout)
    ids = exploded["item"].replace_strict(distinct, menu["item_id"], return_dtype=pl.UInt32)
    return BasketItems(exploded.select("row", item_id=ids), menu)


def _item_strings(rows: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    basket = pl.col("basket").fill_null("")
    separator = ", "
    if layout.basket == "triples":  # "size,name,price,size,..." -> split at every 3rd comma
        basket = basket.str.replace_all(r"([^,]*,[^,]*,[^,]*),", "${1}\x1e")
        separator = "\x1e"
    return rows.select("row", item=basket.str.split(separator)).explode("item")


def _parse_items(distinct: pl.Series, layout: Layout) -> pl.DataFrame:
    pattern = _STANDARD_ITEM if layout.basket == "items" else _LEGACY_ITEM
    item = pl.col("item").str.strip_chars()
    parts = (
        distinct.to_frame("item")
        .with_row_index("item_id")
        .with_columns(item.str.extract_groups(pattern).alias("p"))
        .unnest("p")
        .with_columns(pl.col("name").str.strip_chars().str.extract_groups(_NAME).alias("n"))
        .unnest("n")
        .select(
            "item_id",
            size=_blank_to_null(pl.col("size")),
            product=_blank_to_null(pl.col("product")),
            variant=_blank_to_null(pl.col("variant")),
            price=money(pl.col("price")),
        )
    )
    keys = [
        stable_key("product", *row) for row in parts.select("product", "size", "variant").rows()
    ]
    return parts.with_columns(product_key=pl.Series(keys, dtype=pl.Int64)).with_columns(
        product_index=pl.col("product_key").rank("dense").cast(pl.Int64) - 1
    )


def _blank_to_null(text: pl.Expr) -> pl.Expr:
    text = text.str.strip_chars()
    return pl.when(text != "").then(text)
