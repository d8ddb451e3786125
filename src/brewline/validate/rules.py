"""Row rules: every row of an export is either valid or carries one named reason.

    >>> from brewline.extract import read_export
    >>> raw = read_export(b"25/08/2021 09:00,Leeds,A B,Large Tea - 2.45,9.99,CASH,\\n", "leeds.csv")
    >>> validate_rows(raw).rejects.select("line_no", "reason").to_dicts()
    [{'line_no': 1, 'reason': 'total_mismatch'}]

Rules run in the order of :data:`REASONS`; a row gets the first reason that
applies. Reasons name the rule, never the content (which may be personal data).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import polars as pl

from brewline.errors import FileRejected
from brewline.extract.converters import (
    BasketItems,
    basket_items,
    card_digits,
    money,
    per_distinct,
    timestamps,
)
from brewline.extract.layouts import FIELDS, Layout, RawExport

__all__ = [
    "EARLIEST_SALE",
    "FILE_REASONS",
    "REASONS",
    "ValidatedExport",
    "validate_exports",
    "validate_rows",
]

REASONS: dict[str, str] = {
    "unbalanced_quotes": "the line has an unclosed quote, so its fields cannot be told apart",
    "too_many_fields": "the line has more than the export's 7 fields",
    "too_few_fields": "the line has fewer than 5 of the export's 7 fields filled",
    "unreadable_line": "the line's quoting cannot be read as CSV (e.g. text after a closing quote)",
    "missing_branch": "the branch field is empty",
    "bad_branch": "the branch field holds a long run of digits (a card number?), not a name",
    "bad_timestamp": "the timestamp is not a real day-first date and time",
    "implausible_date": "the sale is dated before the earliest plausible day or in the future",
    "bad_payment_method": "payment method is not CASH or CARD",
    "bad_total": "the total is not an amount like 5.2 or 13.45",
    "empty_basket": "the basket has no items",
    "bad_basket_item": "a basket item is not '<Size> <Product>[ - <Variant>] - <Price>'",
    "personal_data_in_basket": (
        "a basket item's product or variant looks like a card number (13-19 digits) "
        "or is the name of a customer in the same file"
    ),
    "bad_price": "an item price is negative (free items, priced 0, are fine)",
    "absurd_price": "an item price is above the configured max_item_price",
    "conflicting_prices": "the same product appears at two prices in one basket",
    "total_mismatch": "the item prices do not add up to the total",
    "other_branch": "the row names another branch than the rest of its file",
}
"""Every reason a row can be rejected for, in the order rules are applied."""

FILE_REASONS: dict[str, str] = {
    "several_branches": "the branch column holds more than one branch: not one branch's export",
    "swapped_columns": "the customer column holds the branch the file is named after",
    "month_first_dates": "the dates only make sense month-first (mm/dd/yyyy)",
    "unknown_branch": (
        "one branch and one customer throughout, the branch is several words like a "
        "person's name, and nothing vouches for it (not in the file's name, not a branch "
        "already loaded): the branch and customer columns may be swapped"
    ),
}
"""Reasons the row rules refuse a whole file for (the reader's are in the extract stage)."""

EARLIEST_SALE = dt.datetime(2000, 1, 1)
"""Sales dated before this are implausible (a year 1, 1899 or an Excel epoch date)."""

_RANK = {reason: rank for rank, reason in enumerate(REASONS)}
_MIN_FIELDS = 5  # timestamp, branch, basket, total, payment: name and card may be empty
_ONE_BRANCH_SHARE = 0.9
"""A file is one branch's export when one branch names at least this share of its rows."""
_NAMED_EXPORT = re.compile(r"^(?P<branch>.+?)_[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}_")


@dataclass(frozen=True)
class ValidatedExport:
    """Files after the row rules.

    ``sales``: valid rows (``row, file_index, line_no, branch, sold_at,
    payment_method, total, items, card``), where ``file_index`` is the file's
    position in the checked list and ``row`` numbers rows across the batch;
    ``lines``: one row per (sale, product): ``row, product_key, quantity,
    unit_price, line_amount``; ``products``: ``product_key, size, product, variant``;
    ``rejects``: ``file_index, line_no, reason`` for every other row; ``refused``: file index ->
    :class:`FileRejected` for files that cannot be read as a whole.
    """

    sales: pl.DataFrame
    lines: pl.DataFrame
    products: pl.DataFrame
    rejects: pl.DataFrame
    refused: dict[int, FileRejected]


def validate_rows(
    raw: RawExport,
    *,
    max_item_price: Decimal = Decimal("50.00"),
    sold_between: tuple[dt.datetime, dt.datetime | None] = (EARLIEST_SALE, None),
    known_branches: Collection[str] = (),
) -> ValidatedExport:
    """Apply every row rule to one file; raise FileRejected if it is refused whole."""
    checked = validate_exports(
        [raw],
        max_item_price=max_item_price,
        sold_between=sold_between,
        known_branches=known_branches,
    )
    if checked.refused:
        raise checked.refused[0]
    return checked


def validate_exports(
    raws: list[RawExport],
    *,
    max_item_price: Decimal = Decimal("50.00"),
    sold_between: tuple[dt.datetime, dt.datetime | None] = (EARLIEST_SALE, None),
    known_branches: Collection[str] = (),
) -> ValidatedExport:
    """Apply the row rules to several files at once (one vectorised pass per layout).

    Checking files together costs far less than one by one: the fixed cost of
    each frame operation is paid once per batch, not once per file.
    ``sold_between`` is the plausible window of sale times (local, naive); the
    caller sets its end, e.g. a day after the run started (None: no end).
    ``known_branches`` are the chain's branches already in the warehouse: each
    vouches for a file whose branch column names it (see ``unknown_branch``).
    """
    parts = []
    offset = 0  # `row` must stay unique across the layouts of one batch
    known = frozenset(_squeezed(name) for name in known_branches)
    rules = _Limits(max_item_price, *sold_between, known)
    for layout in {raw.layout: None for raw in raws}:
        members = [(i, raw) for i, raw in enumerate(raws) if raw.layout is layout]
        parts.append(_check_layout(members, rules, offset))
        offset += sum(raw.rows.height for _, raw in members)
    if len(parts) == 1:
        return parts[0]
    return ValidatedExport(
        sales=pl.concat([p.sales for p in parts]),
        lines=pl.concat([p.lines for p in parts]),
        products=pl.concat([p.products for p in parts]).unique("product_key"),
        rejects=pl.concat([p.rejects for p in parts]),
        refused={k: v for p in parts for k, v in p.refused.items()},
    )


@dataclass(frozen=True)
class _Limits:
    max_item_price: Decimal
    earliest: dt.datetime
    latest: dt.datetime | None
    known_branches: frozenset[str]
    """Squeezed (:func:`_squeezed`) names of the branches already loaded."""


def _check_layout(
    raws: list[tuple[int, RawExport]], limits: _Limits, row_offset: int
) -> ValidatedExport:
    layout = raws[0][1].layout
    file_index = pl.Series(
        "file_index", np.repeat([i for i, _ in raws], [raw.rows.height for _, raw in raws])
    ).cast(pl.Int32)
    # Files arrive as slices of their batch's frame: one contiguous copy, not thousands of chunks.
    rows = (
        pl.concat([raw.rows for _, raw in raws], rechunk=True)
        .with_columns(file_index)
        .with_row_index("row")
    )
    typed = _typed(rows, layout, limits)
    refused = _refuse_month_first(typed, layout)
    sources = {i: raw.source for i, raw in raws}
    branches = _file_branches(typed, rows, sources, limits.known_branches)
    refused |= _refuse_other_than_one_branch(branches, sources)
    basket = basket_items(rows, layout)
    items = _priced_items(basket, limits.max_item_price, rows)
    # Every frame here is in `row` order, one row per row: columns are laid side by side
    # (a gather by file, a stack of per-sale columns), which hash joins on `row` only redo.
    checked = typed.with_columns(
        _file_branch(branches, typed["file_index"]),
        total_cents=_cents(typed["total"]),
    ).hstack(_per_sale(items, basket.menu, rows.height))
    good = checked.select(
        _all_rules_pass() & ~pl.col("file_index").is_in(list(refused))
    ).to_series()
    good_rows = checked.filter(good)
    lines = _sale_lines(items.filter(good.gather(items["row"])))
    # Products come from the sales that load only: a rejected row's basket may hold
    # anything (a card, a name), and a refused file's rows are not the chain's menu.
    products = basket.menu.filter(pl.col("product_key").is_in(lines["product_key"].implode()))
    return ValidatedExport(
        sales=good_rows.select(
            pl.col("row") + row_offset,
            "file_index",
            "line_no",
            "branch",
            "sold_at",
            "payment_method",
            "total",
            "items",
            "card",
        ),
        lines=lines.with_columns(pl.col("row") + row_offset),
        products=products.select("product_key", "size", "product", "variant").unique("product_key"),
        rejects=checked.filter(~good & ~pl.col("file_index").is_in(list(refused))).select(
            "file_index", "line_no", reason=_row_reason()
        ),
        refused=refused,
    )


def _typed(rows: pl.DataFrame, layout: Layout, limits: _Limits) -> pl.DataFrame:
    payment = per_distinct(rows["payment_method"], _payment)
    sold_at = per_distinct(rows["timestamp"], lambda t: timestamps(t, layout))
    plausible = sold_at >= limits.earliest
    if limits.latest is not None:
        plausible &= sold_at <= limits.latest
    return rows.select(
        "row",
        "file_index",
        "line_no",
        "line_problem",
        "timestamp",
        branch=per_distinct(rows["branch"], _branch),
        branch_text="branch",  # raw, for the missing_branch reason (failing rows only)
        sold_at=sold_at,
        plausible_date=plausible,
        payment_method=payment,
        total=per_distinct(rows["total"], money),
        card=pl.when(payment == "CARD").then(card_digits(pl.col("card_number"), layout)),
        has_basket=pl.col("basket").str.contains(r"[^\s]").fill_null(False),
        fields=pl.sum_horizontal(pl.col(FIELDS).is_not_null()),
    )


def _payment(text: pl.Expr) -> pl.Expr:
    word = text.str.strip_chars().str.to_uppercase()
    return pl.when(word.is_in(["CASH", "CARD"])).then(word)


def _branch(text: pl.Expr) -> pl.Expr:
    """The branch name, or null when empty or when it looks like a card number.

    The branch column is the one free-text field that reaches the warehouse, so
    a shifted or mistyped row must not carry a card number into ``dim_branch``.
    """
    name = text.str.strip_chars()
    return pl.when((name != "") & ~name.str.contains(r"[0-9]{12}") & ~_card_like(name)).then(name)


def _card_like(text: pl.Expr) -> pl.Expr:
    """Does the text hold a card number: 13-19 digits in a row, maybe grouped by spaces or -?

    ``5494 1737 7265 2516`` is how a card is printed and read out, so spaced and
    dashed groups count too; a longer run is no menu item or branch either.
    """
    return text.str.contains(_CARD_LIKE).fill_null(False)


_CARD_LIKE = r"[0-9](?:[ -]?[0-9]){12,}"


def _priced_items(basket: BasketItems, max_item_price: Decimal, rows: pl.DataFrame) -> pl.DataFrame:
    """Items (``row`` order) with product, price and the rank of what is wrong with them.

    ``rows`` (``row`` order, with ``file_index`` and ``customer_name``) say whose
    names may not be a product: a customer's name typed into a basket is personal data.
    """
    menu = basket.menu.with_columns(
        item_rank=pl.when(pl.col("product").is_null() | pl.col("price").is_null())
        .then(_RANK["bad_basket_item"])
        .when(_card_like(pl.col("product")) | _card_like(pl.col("variant")))
        .then(_RANK["personal_data_in_basket"])
        .when(pl.col("price") < 0)
        .then(_RANK["bad_price"])
        .when(pl.col("price") > max_item_price)
        .then(_RANK["absurd_price"])
    )
    item_id = basket.items["item_id"]
    columns = ("product_key", "product_index", "price", "item_rank")
    items = basket.items.select(
        pl.col("row").set_sorted(), "item_id", *(menu[name].gather(item_id) for name in columns)
    )
    named = _items_naming_customers(items, menu, rows)
    if named.is_empty():
        return items
    personal = pl.int_range(pl.len()).is_in(named.implode())
    return items.with_columns(
        item_rank=pl.when(personal)
        .then(pl.min_horizontal("item_rank", pl.lit(_RANK["personal_data_in_basket"])))
        .otherwise("item_rank")
    )


def _items_naming_customers(
    items: pl.DataFrame, menu: pl.DataFrame, rows: pl.DataFrame
) -> pl.Series:
    """Positions of the items whose product or variant is a customer's name in the same file.

    Names are compared stripped and case-blind. Only menu entries that equal some
    customer's name are followed to their items, so usually no item is looked at.
    """
    words = (
        menu.select("item_id", word=pl.concat_list(_folded("product"), _folded("variant")))
        .explode("word")
        .drop_nulls("word")
    )
    vocabulary = words["word"].unique()
    # A substring search of every name is cheap; folding is paid only by the names it finds.
    maybe = pl.col("customer_name").str.contains_any(
        vocabulary.to_list(), ascii_case_insensitive=True
    )
    people = (
        rows.select("file_index", "customer_name")
        .filter(maybe.fill_null(False))
        .select("file_index", word=_folded("customer_name"))
        .filter(pl.col("word").is_in(vocabulary.implode()))
    )
    if people.is_empty():
        return pl.Series("position", [], dtype=pl.Int64)
    suspects = words.filter(pl.col("word").is_in(people["word"].unique().implode()))
    candidates = items.with_row_index("position").filter(
        pl.col("item_id").is_in(suspects["item_id"].unique().implode())
    )
    return (
        candidates.with_columns(file_index=rows["file_index"].gather(candidates["row"]))
        .join(suspects, on="item_id")
        .join(people.unique(), on=["file_index", "word"], how="semi")["position"]
        .unique()
        .cast(pl.Int64)
    )


def _folded(column: str) -> pl.Expr:
    """A name as compared for personal data: stripped, lower case, null when empty."""
    text = pl.col(column).str.strip_chars().str.to_lowercase()
    return pl.when(text != "").then(text)


def _per_sale(items: pl.DataFrame, menu: pl.DataFrame, n_rows: int) -> pl.DataFrame:
    """Per sale, in row order: worst item rank, item count and cents, and whether a product
    has two prices.

    Items come in row order, so each sale's items are one run: numpy folds the runs
    (a running sum, the few wrong items' ranks), where a group-by hashes every item's row
    and a join on ``row`` then puts the result back in the order it already had. Every
    row has a run: a basket splits into at least one item (an empty basket into ``""``).
    """
    row = items["row"].to_numpy()
    starts = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))[: len(row)]
    counts = np.diff(starts, append=len(row))
    # Sums from one running total; worst ranks from the few wrong items only.
    running = np.cumsum(_cents(items["price"]).fill_null(0).to_numpy())
    sums = np.diff(running[starts + counts - 1], prepend=0) if len(row) else running
    wrong = items.select("row", "item_rank").filter(pl.col("item_rank").is_not_null())
    worst = np.full(len(starts), _NO_RANK, dtype=np.int32)
    at = np.searchsorted(row[starts], wrong["row"].to_numpy())
    np.minimum.at(worst, at, wrong["item_rank"].to_numpy())
    conflicting = np.zeros(n_rows, dtype=bool)
    conflicting[_conflicting_rows(items, menu).to_numpy()] = True
    assert len(starts) == n_rows, "every row has at least one basket item"
    return pl.DataFrame(
        {"item_rank": worst, "item_sum": sums, "items": counts, "conflicting": conflicting},
        schema={
            "item_rank": pl.Int32,
            "item_sum": pl.Int64,
            "items": pl.Int32,
            "conflicting": pl.Boolean,
        },
    ).with_columns(item_rank=pl.when(pl.col("item_rank") != _NO_RANK).then("item_rank"))


_NO_RANK = len(REASONS)
"""Stands for "no item is wrong" (null) while numpy takes the minimum."""


def _cents(money: pl.Series) -> pl.Series:
    """Money (two decimals) as whole cents: Decimal's integer form, cheap to sum and compare."""
    return money.to_physical().cast(pl.Int64)


def _file_branch(branches: pl.DataFrame, file_index: pl.Series) -> pl.Series:
    """Each row's file's branch: a lookup by file index (a gather, not a join)."""
    size = int(np.max(file_index.to_numpy(), initial=0)) + 1
    lookup = pl.repeat(None, size, dtype=pl.String, eager=True).alias("file_branch")
    return lookup.scatter(branches["file_index"], branches["file_branch"]).gather(file_index)


def _conflicting_rows(items: pl.DataFrame, menu: pl.DataFrame) -> pl.Series:
    """Rows where one product appears at two prices.

    Only possible for products the menu lists at several prices, so usually
    nothing is scanned at all.
    """
    priced = (
        menu.filter(pl.col("product").is_not_null())
        .group_by("product_key")
        .agg(prices=pl.col("price").n_unique())
    )
    ambiguous = priced.filter(pl.col("prices") > 1)["product_key"]
    if ambiguous.is_empty():
        return pl.Series("row", [], dtype=items["row"].dtype)
    suspects = items.filter(pl.col("product_key").is_in(ambiguous.implode()))
    per_product = suspects.group_by("row", "product_key").agg(n=pl.col("price").n_unique())
    return per_product.filter(pl.col("n") > 1)["row"].unique()


def _sale_lines(items: pl.DataFrame) -> pl.DataFrame:
    """Fold the valid sales' items into one row per (sale, product), in (row, product) order.

    Items come in row order, so a stable sort on row and dense product index
    packed into one integer only reorders within a basket (numpy's timsort
    runs through such nearly sorted data), and each run of equal keys is one
    line. Valid sales have one price per product (``conflicting_prices`` is a
    rule), so a line's amount is its unit price times its quantity: no
    group-by is needed.
    """
    packed = items.select(
        pl.col("row").cast(pl.Int64) * _PRODUCT_SPACE + pl.col("product_index")
    ).to_series()
    order = np.argsort(packed.to_numpy(), kind="stable")
    ordered = packed.to_numpy()[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    starts = starts[: len(ordered)]  # no items: the leading True marks no run
    # Gather the three columns in one frame gather, with the index type polars uses.
    heads = pl.Series(order[starts].astype(np.uint32 if _IDX32 else np.uint64))
    quantity = pl.Series("quantity", np.diff(starts, append=len(ordered)), dtype=pl.Int32)
    return (
        items.select("row", "product_key", unit_price="price")[heads]
        .with_columns(quantity)
        .select(
            "row",
            "product_key",
            "quantity",
            "unit_price",
            line_amount=pl.col("unit_price") * quantity.cast(pl.Decimal(18, 0)),
        )
    )


_IDX32 = pl.get_index_type() == pl.UInt32


_PRODUCT_SPACE = 1 << 20


def _all_rules_pass() -> pl.Expr:
    """Cheap vectorised 'nothing wrong' test; reasons are named only for failing rows."""
    return pl.all_horizontal(
        pl.col("line_problem").is_null(),
        pl.col("fields") >= _MIN_FIELDS,
        pl.col("branch").is_not_null(),
        pl.col("sold_at").is_not_null(),
        pl.col("plausible_date"),
        pl.col("payment_method").is_not_null(),
        pl.col("total").is_not_null(),
        pl.col("has_basket"),
        pl.col("item_rank").is_null(),
        ~pl.col("conflicting"),
        pl.col("item_sum") == pl.col("total_cents"),
        pl.col("branch") == pl.col("file_branch"),
    ).fill_null(False)


def _row_reason() -> pl.Expr:
    rank_to_reason = dict(enumerate(REASONS))
    checks = [
        (pl.col("line_problem").is_not_null(), pl.col("line_problem")),
        (pl.col("fields") < _MIN_FIELDS, pl.lit("too_few_fields")),
        (_branch_missing(), pl.lit("missing_branch")),
        (pl.col("branch").is_null(), pl.lit("bad_branch")),
        (pl.col("sold_at").is_null(), pl.lit("bad_timestamp")),
        (~pl.col("plausible_date"), pl.lit("implausible_date")),
        (pl.col("payment_method").is_null(), pl.lit("bad_payment_method")),
        (pl.col("total").is_null(), pl.lit("bad_total")),
        (~pl.col("has_basket"), pl.lit("empty_basket")),
        (
            pl.col("item_rank").is_not_null(),
            pl.col("item_rank").replace_strict(rank_to_reason, return_dtype=pl.String),
        ),
        (pl.col("conflicting"), pl.lit("conflicting_prices")),
        (pl.col("item_sum") != pl.col("total_cents"), pl.lit("total_mismatch")),
        (pl.col("branch") != pl.col("file_branch"), pl.lit("other_branch")),
    ]
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(checks):  # built inside-out: the first check wins
        expr = pl.when(condition).then(reason).otherwise(expr)
    return expr


def _branch_missing() -> pl.Expr:
    """Empty or absent branch field: told apart from a bad one only for rejected rows."""
    return ~(pl.col("branch_text").str.strip_chars() != "").fill_null(False)


def _refuse_month_first(typed: pl.DataFrame, layout: Layout) -> dict[int, FileRejected]:
    """Refuse files whose dates only make sense month-first (12/25/2024).

    Day-first is the rule, so ``05/12/2024`` is 5 December. A file where some
    dates are impossible day-first but valid month-first, and none prove
    day-first (a day above 12), was exported with US dates: reading the rest
    day-first would silently misdate them, so the whole file is refused.
    """
    failed = typed.filter(pl.col("sold_at").is_null() & pl.col("timestamp").is_not_null())
    if layout.name != "standard" or failed.height == 0:
        return {}
    swapped = (
        pl.col("timestamp")
        .str.strip_chars()
        .str.replace(r"^([0-9]{1,2})/([0-9]{1,2})/", "${2}/${1}/")
    )
    month_first = failed.filter(timestamps(swapped, layout).is_not_null())
    proven = typed.filter(pl.col("sold_at").dt.day() > 12)["file_index"].unique()
    suspects = month_first.filter(~pl.col("file_index").is_in(proven.implode()))
    first = suspects.group_by("file_index").agg(pl.col("line_no").min())
    return {
        index: FileRejected(
            "month_first_dates",
            f"dates look month-first (line {line} is only a valid date as mm/dd/yyyy); "
            "Brewline reads dd/mm/yyyy. Re-export the file with day-first dates",
        )
        for index, line in first.iter_rows()
    }


def _file_branches(
    typed: pl.DataFrame, rows: pl.DataFrame, sources: dict[int, str], known: frozenset[str]
) -> pl.DataFrame:
    """Per file: its branch (the most common value), how many values, the branch's share.

    Also the customer column's first value and, for the swap checks, its distinct count
    of names, and whether anything vouches for the branch (:func:`_vouched`).
    """
    named = typed.lazy().filter(pl.col("branch").is_not_null())
    counts = named.group_by("file_index", "branch").len()
    top = (
        counts.sort("file_index", "len", "branch", descending=[False, True, False])
        .group_by("file_index", maintain_order=True)
        .agg(
            file_branch=pl.col("branch").first(),
            branches=pl.len(),
            share=pl.col("len").first() / pl.col("len").sum(),
        )
    )
    # typed and rows are both in row order: the customer column is laid beside, not joined.
    people = (
        typed.lazy()
        .select("file_index", "branch", rows["customer_name"])
        .filter(pl.col("branch").is_not_null())
    )
    # Only the first value is stripped: stripping every name costs as much as the rest.
    first = people.group_by("file_index").agg(
        customer=pl.col("customer_name").first().str.strip_chars()
    )
    found = top.join(first, on="file_index").collect()
    # The distinct count only matters where the swap check could fire (one branch, a
    # customer that the file's name names): counting every file's names is the costly part.
    vouched = pl.Series(
        "vouched",
        [
            _vouched(sources[index], branch, known)
            for index, branch in found.select("file_index", "file_branch").iter_rows()
        ],
        dtype=pl.Boolean,
    )
    found = found.with_columns(vouched)
    suspects = [
        index
        for index, branch, n, _, customer, vouched in found.iter_rows()
        if n == 1 and (not vouched or _named_after(sources[index], customer, branch))
    ]
    customers = (
        people.filter(pl.col("file_index").is_in(suspects))
        .group_by("file_index")
        .agg(customers=_folded("customer_name").drop_nulls().n_unique())
        .collect()
    )
    return found.join(customers, on="file_index", how="left", maintain_order="left").select(
        "file_index", "file_branch", "branches", "share", "customers", "customer", "vouched"
    )


def _refuse_other_than_one_branch(
    branches: pl.DataFrame, sources: dict[int, str]
) -> dict[int, FileRejected]:
    """Refuse files that are not one branch's export, so no customer becomes a branch.

    A till export comes from one branch. A branch column whose values have no
    clear majority is another kind of file, or one whose columns are out of
    order (customer names where the branch goes): loading it would make people
    into ``dim_branch`` rows, shown in reports, checks, the dashboard and
    metrics labels. (A few stray rows naming another branch are rejected one by
    one as ``other_branch``.) A file with one value in each column is checked
    against its name when the name has the till's ``<branch>_<dd-mm-yyyy>_...``
    shape: a customer column holding the named branch means the two columns
    are swapped. Messages count values and never quote them (they may be names).
    """
    refused = {}
    for index, branch, n, share, customers, customer, vouched in branches.iter_rows():
        if share < _ONE_BRANCH_SHARE:
            refused[index] = FileRejected(
                "several_branches",
                f"its branch column holds {n} different values and none is the branch of "
                f"{_ONE_BRANCH_SHARE:.0%} of its rows, but a till export comes from one branch: "
                "check that the columns are in the export's order (timestamp, branch, "
                "customer, ...) or split the file by branch",
            )
        elif n == 1 and customers == 1 and _named_after(sources[index], customer, branch):
            refused[index] = FileRejected(
                "swapped_columns",
                "its customer column holds the branch the file is named after: the branch "
                "and customer columns look swapped; re-export it in the till's column order",
            )
        elif n == 1 and customers == 1 and not vouched:
            refused[index] = FileRejected(
                "unknown_branch",
                "one branch and one customer throughout, and neither the file's name nor a "
                "branch already loaded vouches for the branch, so the two columns may be "
                "swapped: name the file <branch>_<dd-mm-yyyy>_<HH-MM-SS>.csv as the till does",
            )
    return refused


def _vouched(source: str, branch: str, known: frozenset[str]) -> bool:
    """Is there evidence beyond the branch column that ``branch`` is a branch?

    A one-word value cannot be a customer (the tills write a first and a last name);
    otherwise the chain already has it in the warehouse, or the file's name mentions
    it, in a folder or the file (``london_camden_18-12-2024_09-00-00.csv``,
    ``London Camden.csv``, ``camden/2024-12-18.csv`` does not): the name is how the
    till or a person labelled the file.
    """
    name = _squeezed(branch)
    if len(branch.split()) < 2:
        return True
    return name in known or (name != "" and name in _squeezed(source.removesuffix(".csv")))


def _named_after(source: str, customer: str | None, branch: str) -> bool:
    """Does the file's name name the branch that its customer column holds, not its branch?"""
    match = _NAMED_EXPORT.match(source.rsplit("/", 1)[-1])
    if match is None or customer is None:
        return False
    hint = _squeezed(match["branch"])
    return hint == _squeezed(customer) and hint != _squeezed(branch)


def _squeezed(name: str) -> str:
    """A name as file names write it: ``London Camden`` and ``london_camden`` agree."""
    return re.sub(r"[^a-z0-9]", "", name.lower())
