"""Row rules: every row is a sale or carries exactly one named reason."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from brewline.errors import FileRejected
from brewline.extract import RawExport, read_export
from brewline.extract.converters import MONEY
from brewline.validate.rules import (
    EARLIEST_SALE,
    REASONS,
    ValidatedExport,
    validate_exports,
    validate_rows,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "layouts"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())
CHECKABLE = sorted(name for name, facts in EXPECTED.items() if "sales" in facts)

GOOD = "25/08/2021 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CASH,"
MINIMAL_BAD_ROW = {
    "unbalanced_quotes": '25/08/2021 09:01,Leeds,Bob Example,"Large Latte - 2.45,2.45,CASH,',
    "too_many_fields": "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,,",
    "too_few_fields": "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.45",
    "unreadable_line": '25/08/2021 09:01,Leeds,"Bob"Example,Large Latte - 2.45,2.45,CASH,',
    "missing_branch": "25/08/2021 09:01,,Bob Example,Large Latte - 2.45,2.45,CASH,",
    "bad_branch": "25/08/2021 09:01,5494173772652516,Bob,Large Latte - 2.45,2.45,CASH,",
    "bad_timestamp": "31/02/2021 09:01,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,",
    "implausible_date": "25/08/1899 09:01,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,",
    "bad_payment_method": "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.45,2.45,CHEQUE,",
    "bad_total": "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.45,£2.45,CASH,",
    "empty_basket": "25/08/2021 09:01,Leeds,Bob Example,,2.45,CASH,",
    "bad_basket_item": "25/08/2021 09:01,Leeds,Bob Example,Large Latte 2.45,2.45,CASH,",
    "personal_data_in_basket": (
        "25/08/2021 09:01,Leeds,Bob Example,Large 5494173772652516 - 2.45,2.45,CASH,"
    ),
    "bad_price": "25/08/2021 09:01,Leeds,Bob Example,Large Latte - -2.45,-2.45,CASH,",
    "absurd_price": "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 50.01,50.01,CASH,",
    "conflicting_prices": (
        '25/08/2021 09:01,Leeds,Bob Example,"Large Latte - 2.45, Large Latte - 2.50",4.95,CASH,'
    ),
    "total_mismatch": "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.45,2.54,CASH,",
    "other_branch": "25/08/2021 09:01,York,Bob Example,Large Latte - 2.45,2.45,CASH,",
}
ONE_FILE_ONE_BRANCH = ("other_branch",)
"""Reasons that need a file of mostly good rows (one branch) around the bad one."""
REJECTS_SCHEMA = {"file_index": pl.Int32, "line_no": pl.Int32, "reason": pl.String}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def read(name: str) -> RawExport:
    return read_export(fixture_bytes(name), name)


def text_file(*lines: str) -> RawExport:
    return read_export(("\n".join(lines) + "\n").encode(), "x.csv")


def rejects_frame(pairs: list[tuple[int, str]], file_index: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "file_index": [file_index] * len(pairs),
            "line_no": [line for line, _ in pairs],
            "reason": [reason for _, reason in pairs],
        },
        schema=REJECTS_SCHEMA,
    )


# --- one reason at a time ----------------------------------------------------------------


def test_every_reason_has_a_minimal_row() -> None:
    assert list(MINIMAL_BAD_ROW) == list(REASONS)


@pytest.mark.parametrize("reason", [r for r in REASONS if r not in ONE_FILE_ONE_BRANCH])
def test_minimal_row_gets_exactly_its_reason(reason: str) -> None:
    checked = validate_rows(text_file(GOOD, MINIMAL_BAD_ROW[reason]))
    assert_frame_equal(checked.rejects, rejects_frame([(2, reason)]))
    assert checked.sales["line_no"].to_list() == [1]
    assert checked.refused == {}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        # branch missing and total unreadable: the earlier rule names it
        ("25/08/2021 09:01,,Bob Example,Large Latte - 2.45,abc,CASH,", "missing_branch"),
        ("31/02/2021 09:01,Leeds,Bob Example,,abc,CHEQUE,", "bad_timestamp"),
        ("25/08/2021 09:01,Leeds,Bob Example,,abc,CASH,", "bad_total"),
        ("25/08/2021 09:01,Leeds,Bob Example,Large Latte - -1.00,9.99,CASH,", "bad_price"),
        (
            '25/08/2021 09:01,Leeds,Bob Example,"Large Latte - 99.00, Large Latte 1",1,CASH,',
            "bad_basket_item",
        ),
        ("25/08/2021 09:01,Leeds,Bob Example,Large Latte - 51.00,1.00,CASH,", "absurd_price"),
    ],
)
def test_a_row_with_several_problems_gets_the_first_in_reasons_order(
    line: str, reason: str
) -> None:
    checked = validate_rows(text_file(GOOD, line))
    assert_frame_equal(checked.rejects, rejects_frame([(2, reason)]))


def test_max_item_price_is_a_setting_and_inclusive() -> None:
    at_limit = "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 50.00,50.0,CASH,"
    above = MINIMAL_BAD_ROW["absurd_price"]
    default = validate_rows(text_file(GOOD, at_limit, above))
    assert_frame_equal(default.rejects, rejects_frame([(3, "absurd_price")]))
    raised = validate_rows(text_file(GOOD, at_limit, above), max_item_price=Decimal("60.00"))
    assert raised.rejects.height == 0
    assert raised.sales["line_no"].to_list() == [1, 2, 3]


def test_same_product_at_two_prices_in_different_baskets_is_not_a_conflict() -> None:
    checked = validate_rows(
        text_file(GOOD, "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.60,2.60,CASH,")
    )
    assert checked.rejects.height == 0
    assert checked.lines["unit_price"].to_list() == [Decimal("2.45"), Decimal("2.60")]


def test_space_padded_empty_basket_is_an_empty_basket() -> None:
    """A padded file writes an empty basket as spaces; it is still an empty basket."""
    checked = validate_rows(
        text_file(
            "25/08/2021 09:00, Leeds, Ann Example, Large Latte - 2.45, 2.45, CASH, ",
            "25/08/2021 09:01, Leeds, Bob Example,   , 0.0, CASH, ",
        )
    )
    assert_frame_equal(checked.rejects, rejects_frame([(2, "empty_basket")]))


# --- every fixture, every row accounted for ---------------------------------------------------


@pytest.mark.parametrize("name", CHECKABLE)
def test_fixture_sales_and_rejects(name: str) -> None:
    facts = EXPECTED[name]
    checked = validate_rows(read(name))
    assert checked.sales.height == facts["sales"]
    assert checked.sales["items"].sum() == facts["items"]
    assert checked.sales["total"].sum() == Decimal(facts["sum_total"])
    expected_rejects = [(int(line), reason) for line, reason in facts["rejects"].items()]
    assert_frame_equal(checked.rejects, rejects_frame(expected_rejects))


@pytest.mark.parametrize("name", CHECKABLE)
def test_every_row_is_a_sale_or_a_reject(name: str) -> None:
    raw = read(name)
    checked = validate_rows(raw)
    assert checked.sales.height + checked.rejects.height == raw.rows.height
    sold = set(checked.sales["line_no"])
    rejected = set(checked.rejects["line_no"])
    assert not sold & rejected
    assert sold | rejected == set(raw.rows["line_no"])
    assert set(checked.rejects["reason"]) <= set(REASONS)


@pytest.mark.parametrize("name", CHECKABLE)
def test_sales_and_lines_agree(name: str) -> None:
    checked = validate_rows(read(name))
    sales, lines = checked.sales, checked.lines
    assert sales.schema["total"] == MONEY
    assert "customer_name" not in sales.columns
    assert sales["row"].is_unique().all()
    assert set(lines["row"]) == set(sales["row"])
    per_sale = lines.group_by("row").agg(
        quantity=pl.col("quantity").sum(), amount=pl.col("line_amount").sum()
    )
    joined = sales.join(per_sale, on="row")
    assert joined.height == sales.height
    assert (joined["quantity"] == joined["items"]).all()
    assert (joined["amount"] == joined["total"]).all()
    assert (lines["line_amount"] == lines["unit_price"] * lines["quantity"]).all()
    assert set(lines["product_key"]) <= set(checked.products["product_key"])
    assert checked.products["product_key"].is_unique().all()


# --- fixture specifics -------------------------------------------------------------------


def test_standard_fixture_quantities_and_case_sensitive_products() -> None:
    checked = validate_rows(read("standard.csv"))
    products = checked.products.sort("product", "size")
    hot = products.filter(pl.col("product").str.to_lowercase() == "hot chocolate")
    assert hot.select("size", "product").rows() == [
        ("Regular", "Hot Chocolate"),
        ("Large", "Hot chocolate"),
    ]
    assert hot["product_key"].n_unique() == 2
    second = checked.sales.filter(pl.col("line_no") == 2)
    line = checked.lines.filter(pl.col("row") == second["row"][0])
    assert line.select("quantity", "unit_price", "line_amount").rows() == [
        (2, Decimal("2.45"), Decimal("4.90"))
    ]
    same_minute = checked.sales.filter(pl.col("sold_at") == dt.datetime(2021, 8, 25, 9, 2))
    assert same_minute["line_no"].to_list() == [2, 3]
    flavoured = checked.products.filter(pl.col("variant").is_not_null())
    assert sorted(flavoured.select("size", "product", "variant").rows()) == [
        ("Regular", "Flavoured iced latte", "Hazelnut"),
        ("Regular", "Speciality Tea", "Earl Grey"),
    ]


def test_excel_damage_is_read_day_first_and_destroyed_cards_are_dropped() -> None:
    checked = validate_rows(read("excel.csv"))
    sales = checked.sales.sort("line_no")
    assert sales["sold_at"].to_list() == [
        dt.datetime(2023, 8, 8, 9, 0),
        dt.datetime(2023, 8, 8, 9, 5),
        dt.datetime(2023, 8, 8, 10, 30),
        dt.datetime(2023, 8, 12, 9, 0),
    ]
    assert sales["total"].to_list() == [
        Decimal("2.45"),
        Decimal("5.00"),
        Decimal("2.55"),
        Decimal("4.90"),
    ]
    assert sales["payment_method"].to_list() == ["CARD", "CASH", "CARD", "CASH"]
    assert sales["card"].to_list() == [None, None, None, None]


def test_legacy_fields_payment_total_and_card() -> None:
    checked = validate_rows(read("legacy.csv"))
    sales = checked.sales.sort("line_no")
    assert sales.select("sold_at", "payment_method", "total", "items", "card").rows() == [
        (dt.datetime(2021, 8, 25, 9, 0), "CARD", Decimal("4.60"), 2, "4000123412340011"),
        (dt.datetime(2021, 8, 25, 9, 1), "CASH", Decimal("3.00"), 2, None),
        (dt.datetime(2021, 8, 25, 9, 3), "CARD", Decimal("4.35"), 2, "5100123412340012"),
    ]
    products = {
        key: (size, product, variant)
        for key, size, product, variant in checked.products.select(
            "product_key", "size", "product", "variant"
        ).rows()
    }
    assert sorted(products.values(), key=str) == sorted(
        [
            ("Regular", "Latte", None),
            ("Large", "Latte", None),
            (None, "Espresso", None),
            ("Large", "Flavoured latte", "Hazelnut"),
        ],
        key=str,
    )
    second = checked.lines.filter(pl.col("row") == sales["row"][1])
    assert [
        (products[k], q, a)
        for k, q, a in second.select("product_key", "quantity", "line_amount").rows()
    ] == [((None, "Espresso", None), 2, Decimal("3.00"))]


def test_padded_fields_are_stripped() -> None:
    checked = validate_rows(read("padded.csv"))
    sales = checked.sales.sort("line_no")
    assert sales.select("branch", "payment_method", "total", "card").rows() == [
        ("Belfast", "CARD", Decimal("2.15"), "4000123412340009"),
        ("Belfast", "CASH", Decimal("2.45"), None),
        ("Belfast", "CASH", Decimal("2.30"), None),
    ]
    assert sales["sold_at"].to_list() == [
        dt.datetime(2024, 12, 18, 9, 0),
        dt.datetime(2024, 12, 18, 9, 5),
        dt.datetime(2024, 12, 18, 9, 9),
    ]
    assert sorted(checked.products["product"]) == ["Cappuccino", "Latte", "Mocha"]


def test_cash_sales_have_no_card_and_card_sales_keep_digits() -> None:
    checked = validate_rows(read("standard.csv"))
    assert checked.sales.select("payment_method", "card").rows() == [
        ("CARD", "4000123412340001"),
        ("CARD", "4000123412340002"),
        ("CASH", None),
        ("CARD", "4000123412340001"),
        ("CASH", None),
    ]


# --- day-first is the rule; month-first files are refused ---------------------------------


def test_day_first_date_05_12_2024_is_5_december() -> None:
    checked = validate_rows(read("bad_rows.csv"))
    first = checked.sales.filter(pl.col("line_no") == 1)
    assert first["sold_at"].to_list() == [dt.datetime(2024, 12, 5, 9, 0)]


def test_ambiguous_dates_alone_are_read_day_first() -> None:
    checked = validate_rows(
        text_file(
            "05/12/2024 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CASH,",
            "12/05/2024 09:00,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,",
        )
    )
    assert checked.refused == {}
    assert checked.sales["sold_at"].to_list() == [
        dt.datetime(2024, 12, 5, 9, 0),
        dt.datetime(2024, 5, 12, 9, 0),
    ]


def test_month_first_file_is_refused_whole() -> None:
    raw = read("month_first.csv")
    with pytest.raises(FileRejected) as caught:
        validate_rows(raw)
    assert caught.value.reason == "month_first_dates"
    assert "12/24/2024" not in str(caught.value)


def test_day_first_file_with_one_us_looking_typo_is_not_refused() -> None:
    checked = validate_rows(
        text_file(
            "25/12/2024 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CASH,",
            "12/26/2024 09:05,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,",
        )
    )
    assert checked.refused == {}
    assert_frame_equal(checked.rejects, rejects_frame([(2, "bad_timestamp")]))


def test_refusal_is_per_file_in_a_batch() -> None:
    """A day-first proof in one file does not rescue a month-first file beside it."""
    checked = validate_exports([read("month_first.csv"), read("standard.csv"), read("legacy.csv")])
    assert list(checked.refused) == [0]
    assert checked.refused[0].reason == "month_first_dates"
    assert 0 not in set(checked.sales["file_index"])
    assert 0 not in set(checked.rejects["file_index"])
    assert sorted(set(checked.sales["file_index"])) == [1, 2]


# --- several files in one pass equal one file at a time -----------------------------------


def _one_file(checked: ValidatedExport, index: int) -> dict[str, pl.DataFrame]:
    sales = checked.sales.filter(pl.col("file_index") == index)
    lines = checked.lines.join(sales.select("row", "line_no"), on="row", how="inner")
    keys = set(lines["product_key"])
    return {
        "sales": sales.drop("row", "file_index").sort("line_no"),
        "lines": lines.drop("row").sort("line_no", "product_key"),
        "rejects": checked.rejects.filter(pl.col("file_index") == index)
        .drop("file_index")
        .sort("line_no"),
        "products": checked.products.filter(pl.col("product_key").is_in(list(keys)))
        .unique()
        .sort("product_key"),
    }


BATCHES = {
    "same-layout": ["standard.csv", "bad_rows.csv", "crlf.csv", "excel.csv", "two_headers.csv"],
    "mixed-layouts": ["standard.csv", "legacy.csv", "bad_rows.csv"],
}


@pytest.mark.parametrize("names", list(BATCHES.values()), ids=list(BATCHES))
def test_check_exports_equals_check_rows_per_file(names: list[str]) -> None:
    raws = [read(name) for name in names]
    together = validate_exports(raws)
    assert together.refused == {}
    for index, raw in enumerate(raws):
        alone = _one_file(validate_rows(raw), 0)
        batch = _one_file(together, index)
        for part in ("sales", "lines", "rejects", "products"):
            assert_frame_equal(batch[part], alone[part])


@pytest.mark.parametrize("names", list(BATCHES.values()), ids=list(BATCHES))
def test_check_exports_rows_and_products_are_unique_across_the_batch(names: list[str]) -> None:
    together = validate_exports([read(name) for name in names])
    assert together.sales["row"].is_unique().all(), "row must number rows across the batch"
    assert together.products["product_key"].is_unique().all()
    rows_per_file = together.sales.group_by("file_index").agg(pl.len()).sort("file_index")
    assert rows_per_file["len"].to_list() == [EXPECTED[name]["sales"] for name in names]


def test_two_digit_year_row_is_a_bad_timestamp_not_a_sale_in_year_21() -> None:
    checked = validate_rows(
        text_file(GOOD, "25/08/21 09:05,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,")
    )
    assert checked.sales["sold_at"].dt.year().to_list() == [2021]
    assert_frame_equal(checked.rejects, rejects_frame([(2, "bad_timestamp")]))


# --- one file, one branch; free items; plausible dates (issue 8) -------------------------


def sale(minute: int, branch: str = "Leeds", customer: str = "Bob Example") -> str:
    return f"25/08/2021 09:{minute:02d},{branch},{customer},Large Latte - 2.45,2.45,CASH,"


def test_a_stray_row_naming_another_branch_is_rejected_alone() -> None:
    lines = [sale(m) for m in range(10)] + [MINIMAL_BAD_ROW["other_branch"]]
    checked = validate_rows(text_file(*lines))
    assert_frame_equal(checked.rejects, rejects_frame([(11, "other_branch")]))
    assert checked.sales["branch"].unique().to_list() == ["Leeds"]


def test_swapped_branch_and_customer_columns_never_make_a_person_a_branch() -> None:
    """Customer names in the branch column: the file is refused whole, no name is quoted."""
    people = ["Ann Example", "Bob Example", "Cat Example", "Dan Example"]
    lines = [sale(m, branch=people[m % 4], customer="Leeds") for m in range(20)]
    with pytest.raises(FileRejected) as refused:
        validate_rows(text_file(*lines))
    assert refused.value.reason == "several_branches"
    assert not any(person in str(refused.value) for person in people)


def test_a_one_customer_file_with_swapped_columns_is_caught_by_its_name() -> None:
    data = "\n".join(sale(m, branch="Ann Example", customer="Leeds") for m in range(3)) + "\n"
    raw = read_export(data.encode(), "landing/leeds_25-08-2021_09-00-00.csv")
    with pytest.raises(FileRejected) as refused:
        validate_rows(raw)
    assert refused.value.reason == "swapped_columns"
    assert "Ann" not in str(refused.value)
    # The same rows under a name that names no branch cannot be told apart: refused.
    with pytest.raises(FileRejected) as unknown:
        validate_rows(read_export(data.encode(), "export.csv"))
    assert unknown.value.reason == "unknown_branch"


# --- what vouches for a branch (issue 19) -------------------------------------------------

ONE_CUSTOMER = (
    "\n".join(sale(m, branch="London Camden", customer="Amy Kader") for m in range(3)) + "\n"
)
SWAPPED = "\n".join(sale(m, branch="Amy Kader", customer="London Camden") for m in range(3)) + "\n"


def test_a_one_customer_file_whose_branch_nothing_vouches_for_is_refused() -> None:
    """Branch and customer swapped in a one-customer file not named after its branch: the
    customer's name would become dim_branch.branch_name. The message quotes no value."""
    for data in (SWAPPED, ONE_CUSTOMER):  # the two cannot be told apart
        with pytest.raises(FileRejected) as refused:
            validate_rows(read_export(data.encode(), "export.csv"), known_branches=["Leeds"])
        assert refused.value.reason == "unknown_branch"
        assert not any(word in str(refused.value) for word in ("Amy", "Camden", "Leeds"))


@pytest.mark.parametrize(
    ("data", "name", "known"),
    [
        (ONE_CUSTOMER, "london_camden_25-08-2021_09-00-00.csv", []),  # the till's name
        (ONE_CUSTOMER, "London Camden.csv", []),  # a name that mentions the branch
        (ONE_CUSTOMER, "london-camden/export.csv", []),  # a folder named after it
        (ONE_CUSTOMER, "export.csv", ["London Camden", "York"]),  # a branch already loaded
        (ONE_CUSTOMER.replace("Amy Kader", "Bob Example", 1), "export.csv", []),  # 2 customers
        (ONE_CUSTOMER.replace("Amy Kader", "", 1).replace("Amy Kader", ""), "export.csv", []),
        (ONE_CUSTOMER.replace("London Camden", "Leeds"), "export.csv", []),  # one word: no name
    ],
    ids=["till name", "plain name", "folder", "known", "two customers", "no names", "one word"],
)
def test_a_branch_is_vouched_for_by_the_file_name_a_known_branch_or_the_columns(
    data: str, name: str, known: list[str]
) -> None:
    checked = validate_rows(read_export(data.encode(), name), known_branches=known)
    assert checked.sales.height == 3
    assert checked.sales["branch"].unique().to_list() in (["London Camden"], ["Leeds"])


# --- personal data typed into a basket (issue 19) ------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        "Large 7273900877721127 - 2.60",
        "Large 7273 9008 7772 1127 - 2.60",
        "Large 7273-9008-7772-1127 - 2.60",
        "Regular 7273900877721 - 2.60",  # 13 digits
        "Regular 7273900877721127123 - 2.60",  # 19 digits
        "Large Flavoured latte - 7273900877721127 - 2.60",  # in the variant
        "Regular Amy Kader - 2.60",  # the customer of this very file
        "Regular amy KADER  - 2.60",
        "Large Latte - Amy Kader - 2.60",
    ],
)
def test_a_card_number_or_a_customer_name_in_a_basket_is_rejected_not_a_product(
    item: str,
) -> None:
    bad = f"25/08/2021 09:01,Leeds,Amy Kader,{item},2.60,CARD,7273900877721127"
    checked = validate_rows(read_export(f"{GOOD}\n{bad}\n".encode(), "leeds.csv"))
    assert_frame_equal(checked.rejects, rejects_frame([(2, "personal_data_in_basket")]))
    assert checked.products.select("size", "product", "variant").rows() == [
        ("Large", "Latte", None)
    ]


def test_a_product_merely_like_a_number_or_named_like_nobody_in_the_file_loads() -> None:
    """12 digits is no card; a name is personal only where it is a customer of the file."""
    lines = [
        GOOD,
        "25/08/2021 09:01,Leeds,Bob Example,Large Blend 123456789012 - 2.60,2.60,CASH,",
        "25/08/2021 09:02,Leeds,Bob Example,Large Earl Grey - 2.60,2.60,CASH,",
    ]
    checked = validate_rows(read_export(("\n".join(lines) + "\n").encode(), "leeds.csv"))
    assert checked.rejects.is_empty()
    assert sorted(checked.products["product"].to_list()) == [
        "Blend 123456789012",
        "Earl Grey",
        "Latte",
    ]


# --- dimensions only from rows that load (issue 19) ----------------------------------------


def test_products_come_only_from_the_sales_that_load() -> None:
    """A rejected row's basket and a refused file's baskets add no product."""
    rejected = "25/08/2021 09:01,Leeds,Bob Example,Large Mocha - 2.45,9.99,CASH,"
    mixed = [sale(m, branch=f"Branch {m % 4}").replace("Latte", "Cortado") for m in range(8)]
    checked = validate_exports(
        [
            read_export(f"{GOOD}\n{rejected}\n".encode(), "leeds.csv"),
            read_export(("\n".join(mixed) + "\n").encode(), "mixed.csv"),
        ]
    )
    assert set(checked.refused) == {1}
    assert checked.rejects["reason"].to_list() == ["total_mismatch"]
    assert checked.products["product"].to_list() == ["Latte"]


def test_real_file_names_agree_with_their_branches(shared_exports: Path) -> None:
    for path in sorted(shared_exports.rglob("*.csv")):
        checked = validate_rows(read_export(path.read_bytes(), path.name))
        assert checked.refused == {}, path.name
        assert "other_branch" not in checked.rejects["reason"].to_list(), path.name


def test_free_items_and_free_sales_are_valid() -> None:
    """A babyccino given away (0.0) is a real line; a sale of only free items totals 0.00."""
    checked = validate_rows(
        text_file(
            '25/08/2021 09:00,Leeds,Bob Example,"Large Latte - 2.45, Babyccino - 0.0",2.45,CASH,',
            "25/08/2021 09:01,Leeds,Bob Example,Babyccino - 0.0,0.0,CASH,",
            "25/08/2021 09:02,Leeds,Bob Example,Babyccino - -0.5,-0.5,CASH,",
        )
    )
    assert checked.sales["total"].to_list() == [Decimal("2.45"), Decimal("0.00")]
    assert checked.rejects["reason"].to_list() == ["bad_price"]


@pytest.mark.parametrize("day", ["25/08/0001", "31/12/1899", "01/01/2099", "31/12/9999"])
def test_implausible_dates_are_rejected_with_a_named_reason(day: str) -> None:
    late = dt.datetime(2026, 11, 30)
    line = f"{day} 09:00,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,"
    checked = validate_rows(text_file(sale(0), line), sold_between=(EARLIEST_SALE, late))
    assert checked.rejects["reason"].to_list() == ["implausible_date"]


def test_the_date_window_is_inclusive_and_configurable() -> None:
    lines = [sale(0), "01/01/2000 00:00,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,"]
    assert validate_rows(text_file(*lines)).rejects.is_empty()
    later = (dt.datetime(2021, 1, 1), None)
    assert validate_rows(text_file(*lines), sold_between=later).rejects["reason"].to_list() == [
        "implausible_date"
    ]
