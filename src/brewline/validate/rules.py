"""Row rules: every row of an export is either valid or carries one named reason.

    >>> from brewline.extract import read_export
    >>> raw = read_export(b"25/08/2021 09:00,Leeds,A B,Large Latte - 2.45,9.99,CASH,\\n", "x.csv")
    >>> check_rows(raw).rejects.to_dicts()
    [{'line_no': 1, 'reason': 'total_mismatch'}]

Rules run in the order of :data:`REASONS`; a row gets the first reason that
applies. Reasons name the rule, never the content (which may be personal data).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from brewline.errors import FileRejected
from brewline.extract.layouts import RawExport
from brewline.transform.parse import card_digits, explode_basket, money, timestamps

__all__ = ["REASONS", "CheckedExport", "check_rows"]

REASONS: dict[str, str] = {
    "unbalanced_quotes": "the line has an unclosed quote, so its fields cannot be told apart",
    "too_many_fields": "the line has more than the export's 7 fields",
    "missing_branch": "the branch field is empty",
    "bad_timestamp": "the timestamp is not a real day-first date and time",
    "bad_payment_method": "payment method is not CASH or CARD",
    "bad_total": "the total is not an amount like 5.2 or 13.45",
    "empty_basket": "the basket has no items",
    "bad_basket_item": "a basket item is not '<Size> <Product>[ - <Variant>] - <Price>'",
    "bad_price": "an item price is zero or negative",
    "absurd_price": "an item price is above the configured max_item_price",
    "conflicting_prices": "the same product appears at two prices in one basket",
    "total_mismatch": "the item prices do not add up to the total",
}
"""Every reason a row can be rejected for, in the order rules are applied."""

_RANK = {reason: rank for rank, reason in enumerate(REASONS)}


@dataclass(frozen=True)
class CheckedExport:
    """A file after the row rules.

    ``sales``: valid rows (``line_no, branch, sold_at, payment_method, total, items, card``);
    ``lines``: one row per (sale, product) with ``quantity, unit_price, line_amount``;
    ``rejects``: ``line_no, reason`` for every other row.
    """

    sales: pl.DataFrame
    lines: pl.DataFrame
    rejects: pl.DataFrame

    @property
    def rows_read(self) -> int:
        return self.sales.height + self.rejects.height


def check_rows(raw: RawExport, *, max_item_price: Decimal = Decimal("50.00")) -> CheckedExport:
    """Apply every row rule to a raw export; raise FileRejected if dates are month-first."""
    typed = _typed(raw)
    _refuse_month_first(typed, raw)
    lines = _sale_lines(explode_basket(raw.rows, raw.layout), max_item_price)
    checked = typed.join(_per_sale(lines), on="line_no", how="left").with_columns(
        reason=_row_reason()
    )
    good = checked.filter(pl.col("reason").is_null())
    return CheckedExport(
        sales=good.select(
            "line_no", "branch", "sold_at", "payment_method", "total", "items", "card"
        ),
        lines=lines.join(good.select("line_no"), on="line_no", how="semi").select(
            "line_no", "size", "product", "variant", "quantity", "unit_price", "line_amount"
        ),
        rejects=checked.filter(pl.col("reason").is_not_null()).select(
            pl.col("line_no").cast(pl.Int32), "reason"
        ),
    )


def _typed(raw: RawExport) -> pl.DataFrame:
    payment = pl.col("payment_method").str.to_uppercase()
    return raw.rows.select(
        "line_no",
        "line_problem",
        "timestamp",
        branch=pl.col("branch"),
        sold_at=timestamps(pl.col("timestamp"), raw.layout),
        payment_method=pl.when(payment.is_in(["CASH", "CARD"])).then(payment),
        total=money(pl.col("total")),
        card=pl.when(payment == "CARD").then(card_digits(pl.col("card_number"))),
        has_basket=pl.col("basket").is_not_null(),
    )


def _sale_lines(items: pl.DataFrame, max_item_price: Decimal) -> pl.DataFrame:
    """Fold items into one row per (sale, product): quantity, unit price, line amount.

    Also carries each item's worst reason rank and how many prices the product
    had in that basket, so the row rules can see them.
    """
    item_rank = (
        pl.when(pl.col("product").is_null() | pl.col("price").is_null())
        .then(_RANK["bad_basket_item"])
        .when(pl.col("price") <= 0)
        .then(_RANK["bad_price"])
        .when(pl.col("price") > max_item_price)
        .then(_RANK["absurd_price"])
    )
    return (
        items.with_columns(item_rank=item_rank)
        .group_by("line_no", "size", "product", "variant")
        .agg(
            quantity=pl.len().cast(pl.Int32),
            unit_price=pl.col("price").min(),
            line_amount=pl.col("price").sum(),
            prices=pl.col("price").n_unique(),
            item_rank=pl.col("item_rank").min(),
        )
    )


def _per_sale(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.group_by("line_no").agg(
        item_rank=pl.col("item_rank").min(),
        item_sum=pl.col("line_amount").sum(),
        items=pl.col("quantity").sum().cast(pl.Int32),
        conflicting=(pl.col("prices") > 1).any(),
    )


def _row_reason() -> pl.Expr:
    rank_to_reason = dict(enumerate(REASONS))
    checks = [
        (pl.col("line_problem").is_not_null(), pl.col("line_problem")),
        (pl.col("branch").is_null(), pl.lit("missing_branch")),
        (pl.col("sold_at").is_null(), pl.lit("bad_timestamp")),
        (pl.col("payment_method").is_null(), pl.lit("bad_payment_method")),
        (pl.col("total").is_null(), pl.lit("bad_total")),
        (~pl.col("has_basket"), pl.lit("empty_basket")),
        (
            pl.col("item_rank").is_not_null(),
            pl.col("item_rank").replace_strict(rank_to_reason, return_dtype=pl.String),
        ),
        (pl.col("conflicting"), pl.lit("conflicting_prices")),
        (pl.col("item_sum") != pl.col("total"), pl.lit("total_mismatch")),
    ]
    expr = pl.when(checks[0][0]).then(checks[0][1])
    for condition, reason in checks[1:]:
        expr = expr.when(condition).then(reason)
    return expr.otherwise(pl.lit(None, dtype=pl.String))


def _refuse_month_first(typed: pl.DataFrame, raw: RawExport) -> None:
    """Reject a file whose dates only make sense month-first (12/25/2024).

    Day-first is the rule, so ``05/12/2024`` is 5 December. A file where some
    dates are impossible day-first but valid month-first, and none prove
    day-first (a day above 12), was exported with US dates: reading the rest
    day-first would silently misdate them, so the whole file is refused.
    """
    failed = typed.filter(pl.col("sold_at").is_null() & pl.col("timestamp").is_not_null())
    if raw.layout.name != "standard" or failed.height == 0:
        return
    if typed.select((pl.col("sold_at").dt.day() > 12).any()).item():
        return
    swapped = pl.col("timestamp").str.replace(r"^(\d{1,2})/(\d{1,2})/", "${2}/${1}/")
    month_first = failed.filter(timestamps(swapped, raw.layout).is_not_null())
    if month_first.height:
        raise FileRejected(
            "month_first_dates",
            f"dates look month-first (line {month_first['line_no'][0]} is only a valid date "
            "as mm/dd/yyyy); Brewline reads dd/mm/yyyy. Re-export the file with day-first dates",
        )
