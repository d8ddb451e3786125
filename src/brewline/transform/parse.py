"""Converters from raw export strings to typed values.

Every converter is a Polars expression or a frame-in/frame-out function, and
states its bad-value policy: **a value it cannot read becomes null**; the row
rules in :mod:`brewline.validate.rules` turn nulls into named reasons. Nothing
here guesses: dates are day-first by rule, prices must have at most two decimals.

Work is done once per *distinct* string (a day has a few hundred distinct
minutes and a menu has ~80 distinct items), then joined back, so parsing a
million sales costs little more than reading them.

    >>> import polars as pl
    >>> pl.select(money(pl.lit("5.2"))).item()
    Decimal('5.20')
"""

from __future__ import annotations

import polars as pl

from brewline.extract.layouts import Layout

__all__ = [
    "ITEM_COLUMNS",
    "MONEY",
    "card_digits",
    "explode_basket",
    "money",
    "timestamps",
]

MONEY = pl.Decimal(10, 2)
"""Exact money type: pounds with two decimals. Never float."""

_MONEY_SHAPE = r"^-?\d{1,7}(\.\d{1,2})?$"
_STANDARD_ITEM = r"^(?:(?<size>Regular|Large) )?(?<name>.+?) - (?<price>[^ ]+)$"
_LEGACY_ITEM = r"^(?<size>[^,]*),(?<name>[^,]+),(?<price>[^,]+)$"
_NAME = r"^(?<product>.+?)(?: - (?<variant>.+))?$"
_DESTROYED_CARD = r"(?i)^\d(\.\d+)?E\+?\d+$"

ITEM_COLUMNS = ("line_no", "size", "product", "variant", "price")


def money(text: pl.Expr) -> pl.Expr:
    """Parse ``5.2``/``13.45``/``5`` into exact money; anything else (``1.234``, ``£5``) -> null."""
    return pl.when(text.str.contains(_MONEY_SHAPE)).then(text.cast(MONEY, strict=False))


def timestamps(text: pl.Expr, layout: Layout) -> pl.Expr:
    """Parse a layout's timestamps (local time); unparseable or impossible dates -> null.

    Day-first is the rule for the standard layout; ``8/8/2023 9:00`` (Excel's
    un-padded form) and an optional ``:SS`` are accepted.
    """
    fmt = layout.timestamp_format
    return pl.coalesce(
        text.str.to_datetime(fmt, strict=False, time_unit="us"),
        text.str.to_datetime(f"{fmt}:%S", strict=False, time_unit="us"),
    )


def card_digits(text: pl.Expr) -> pl.Expr:
    """The card number's digits, or null when absent or destroyed.

    Accepts ``5494173772652516`` and the legacy ``"visa,5494173772652516"``;
    ``None``, empty and Excel-destroyed ``5.49E+15`` give null (no customer token).
    """
    number = text.str.split(",").list.last().str.replace_all(r"[ -]", "")
    usable = number.str.contains(r"^\d{12,19}$") & ~text.str.contains(_DESTROYED_CARD)
    return pl.when(usable).then(number)


def explode_basket(rows: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """One row per basket item: ``line_no, position, size, product, variant, price``.

    Items that cannot be read keep their ``line_no`` with null ``product`` or
    ``price``; ``price`` is exact money, possibly zero or negative (rules decide).
    ``rows`` needs ``line_no`` and ``basket``.
    """
    raw = _item_strings(rows, layout)
    distinct = raw.select("item").unique()
    parsed = _parse_items(distinct, layout)
    return raw.join(parsed, on="item", how="left").select(
        "line_no", "position", "size", "product", "variant", "price"
    )


def _item_strings(rows: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    basket = pl.col("basket").fill_null("")
    if layout.basket == "triples":  # "size,name,price,size,..." -> items split at every 3rd comma
        basket = basket.str.replace_all(r"([^,]*,[^,]*,[^,]*),", "${1}\x1e")
    separator = ", " if layout.basket == "items" else "\x1e"
    return (
        rows.select("line_no", basket.str.split(separator).alias("item"))
        .with_columns(position=pl.int_ranges(pl.col("item").list.len(), dtype=pl.Int16))
        .explode("item", "position")
        .with_columns(pl.col("item").str.strip_chars())
    )


def _parse_items(distinct: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    pattern = _STANDARD_ITEM if layout.basket == "items" else _LEGACY_ITEM
    parts = distinct.with_columns(pl.col("item").str.extract_groups(pattern).alias("p")).unnest("p")
    return parts.with_columns(
        size=pl.col("size").str.strip_chars().replace("", None),
        price=money(pl.col("price").str.strip_chars()),
        name=pl.col("name").str.strip_chars().str.extract_groups(_NAME),
    ).unnest("name").with_columns(
        product=pl.col("product").str.strip_chars().replace("", None),
        variant=pl.col("variant").str.strip_chars().replace("", None),
    )
