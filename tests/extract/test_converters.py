"""Converters: money, timestamps, cards and baskets, with Hypothesis and examples."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brewline.extract.converters import (
    MONEY,
    basket_items,
    card_digits,
    money,
    per_distinct,
    timestamps,
)
from brewline.extract.layouts import LAYOUTS

STANDARD, LEGACY = (next(la for la in LAYOUTS if la.name == n) for n in ("standard", "legacy"))
FAST = settings(deadline=None, max_examples=150)


def fullwidth(digits: str) -> str:
    """The same digits in FULLWIDTH DIGIT form (U+FF10..U+FF19); '.' stays a dot."""
    return "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in digits)


def arabic_indic(digits: str) -> str:
    """The same digits as ARABIC-INDIC DIGITs (U+0660..U+0669); '.' stays a dot."""
    return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in digits)


def parse_money(values: list[str]) -> list[Decimal | None]:
    return pl.select(money(pl.lit(pl.Series(values, dtype=pl.String)))).to_series().to_list()


def parse_times(values: list[str], layout: object = STANDARD) -> list[dt.datetime | None]:
    series = pl.Series(values, dtype=pl.String)
    return pl.select(timestamps(pl.lit(series), layout)).to_series().to_list()  # type: ignore[arg-type]


def cards(values: list[str | None], layout: object = STANDARD) -> list[str | None]:
    series = pl.Series(values, dtype=pl.String)
    return pl.select(card_digits(pl.lit(series), layout)).to_series().to_list()  # type: ignore[arg-type]


# --- money ---------------------------------------------------------------------------------


def till_formats(pence: int) -> list[str]:
    """Every way a till or a spreadsheet writes an amount: 5.2, 13.45, 5.0, 5, 5.20."""
    pounds, rest = divmod(pence, 100)
    two = f"{pounds}.{rest:02d}"
    till = f"{pounds}.{rest // 10}" if rest % 10 == 0 else two
    forms = [two, till]
    if rest == 0:
        forms.append(str(pounds))
    return forms


@FAST
@given(st.integers(min_value=0, max_value=10**7))
def test_money_parses_every_till_format_exactly(pence: int) -> None:
    forms = till_formats(pence)
    expected = Decimal(pence) / 100
    assert parse_money(forms) == [expected] * len(forms)
    assert parse_money([f" {forms[-1]} "]) == [expected]


def test_money_examples_and_type() -> None:
    assert till_formats(520) == ["5.20", "5.2"]
    assert till_formats(500) == ["5.00", "5.0", "5"]
    assert till_formats(1345) == ["13.45", "13.45"]
    values = pl.select(money(pl.lit(pl.Series(["5.2", "13.45", "5.0", "5"])))).to_series()
    assert values.dtype == MONEY
    assert values.to_list() == [Decimal("5.20"), Decimal("13.45"), Decimal("5.00"), Decimal("5")]


@FAST
@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=3, max_value=6),
)
def test_money_with_three_or_more_decimals_is_null(pounds: int, fraction: int, places: int) -> None:
    digits = str(fraction).zfill(places)[-places:]
    assert parse_money([f"{pounds}.{digits}"]) == [None]


@pytest.mark.parametrize(
    "junk",
    [
        "",
        " ",
        "£5",
        "5.",
        ".5",
        "1e3",
        "abc",
        "5,00",
        "1,000.00",
        "5.2.1",
        "+5",
        "NaN",
        "inf",
        "5 .2",
        "5.2p",
        "--5",
        "0x10",
        arabic_indic("12.5"),
        fullwidth("5.2"),
    ],
)
def test_money_junk_is_null(junk: str) -> None:
    assert parse_money([junk]) == [None]


@FAST
@given(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).filter(
        lambda s: any(c.isalpha() for c in s)
    )
)
def test_money_with_letters_is_null(text: str) -> None:
    assert parse_money([text]) == [None]


# --- timestamps ----------------------------------------------------------------------------

minutes_2000s = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31, 23, 59)
).map(lambda d: d.replace(second=0, microsecond=0))


@FAST
@given(minutes_2000s)
def test_day_first_timestamps_round_trip_padded_and_unpadded(moment: dt.datetime) -> None:
    padded = moment.strftime("%d/%m/%Y %H:%M")
    unpadded = f"{moment.day}/{moment.month}/{moment.year} {moment.hour}:{moment.minute:02d}"
    assert parse_times([padded, unpadded, f"  {unpadded} "]) == [moment, moment, moment]


@FAST
@given(minutes_2000s)
def test_legacy_iso_timestamps_round_trip(moment: dt.datetime) -> None:
    assert parse_times([moment.strftime("%Y-%m-%d %H:%M:%S")], LEGACY) == [moment]


def test_day_first_examples() -> None:
    assert parse_times(["05/12/2024 09:00", "8/8/2023 9:00", "29/02/2024 23:59"]) == [
        dt.datetime(2024, 12, 5, 9, 0),
        dt.datetime(2023, 8, 8, 9, 0),
        dt.datetime(2024, 2, 29, 23, 59),
    ]


@pytest.mark.parametrize(
    "impossible",
    [
        "31/02/2023 09:00",
        "29/02/2023 09:00",
        "31/04/2024 09:00",
        "32/01/2024 09:00",
        "00/01/2024 09:00",
        "25/13/2024 09:00",
        "12/25/2024 09:00",
        "25/08/2021 24:00",
        "25/08/2021 09:60",
        "2021-08-25 09:00",
        "25/08/2021",
        "",
        "yesterday",
    ],
)
def test_impossible_day_first_timestamps_are_null(impossible: str) -> None:
    assert parse_times([impossible]) == [None]


@FAST
@given(minutes_2000s)
def test_impossible_day_of_month_is_null(moment: dt.datetime) -> None:
    """Day 31 of a 30-day month (or 30/31 February) never parses."""
    short = next(m for m in (2, 4, 6, 9, 11) if m != moment.month)
    text = f"31/{short:02d}/{moment.year} {moment.hour:02d}:{moment.minute:02d}"
    assert parse_times([text]) == [None]


def test_two_digit_years_are_not_read_as_the_first_century() -> None:
    """Excel's short date '25/08/21 09:00' must not become a sale in the year 21 AD.

    Nothing guesses: a year that is not four digits is a bad timestamp (null).
    """
    assert parse_times(["25/08/21 09:00", "8/8/23 9:00"]) == [None, None]


def test_legacy_iso_timestamp_with_t_separator_parses() -> None:
    """The legacy layout is detected with '[ T]' between date and time, so both must parse."""
    assert parse_times(["2021-08-25T09:00:00", "2021-08-25 09:00:00"], LEGACY) == [
        dt.datetime(2021, 8, 25, 9, 0),
        dt.datetime(2021, 8, 25, 9, 0),
    ]


# --- cards ---------------------------------------------------------------------------------


def test_card_digits_standard() -> None:
    assert cards(["4000123412340001", " 4000123412340001 ", "5.49E+15", "", None, "123"]) == [
        "4000123412340001",
        "4000123412340001",
        None,
        None,
        None,
        None,
    ]


def test_card_digits_legacy() -> None:
    values = ["visa,4000123412340011", "mastercard,5100123412340012", "None", None]
    assert cards(values, LEGACY) == ["4000123412340011", "5100123412340012", None, None]


def test_card_digits_are_ascii_digits_only() -> None:
    """Unicode digits (fullwidth, Arabic-Indic) are not a card number: null, never a token."""
    assert cards([fullwidth("4000123412340001"), arabic_indic("4000123412340001")]) == [None, None]


# --- baskets -------------------------------------------------------------------------------

words = st.text(alphabet="abcdeHLTCo&", min_size=1, max_size=8)
names = st.lists(words, min_size=1, max_size=3).map(" ".join)
items = st.tuples(
    st.sampled_from(["Regular", "Large"]),
    names,
    st.none() | names,
    st.integers(min_value=1, max_value=5000),
)
baskets = st.lists(st.lists(items, min_size=1, max_size=6), min_size=1, max_size=5)


def price_text(pence: int) -> str:
    return f"{pence // 100}.{pence % 100:02d}"


def recovered(rows: list[str], layout: object) -> list[list[tuple[object, ...]]]:
    frame = pl.DataFrame({"row": list(range(len(rows))), "basket": rows})
    parsed = basket_items(frame, layout)  # type: ignore[arg-type]
    joined = parsed.items.join(parsed.menu, on="item_id", how="left", maintain_order="left")
    out: list[list[tuple[object, ...]]] = [[] for _ in rows]
    for row, size, product, variant, price in joined.select(
        "row", "size", "product", "variant", "price"
    ).iter_rows():
        out[row].append((size, product, variant, price))
    return out


def as_expected(basket: list[tuple[str | None, str, str | None, int]]) -> list[tuple[object, ...]]:
    return [(size, name, variant, Decimal(p) / 100) for size, name, variant, p in basket]


@FAST
@given(baskets)
def test_standard_baskets_are_recovered_item_by_item(
    rows: list[list[tuple[str, str, str | None, int]]],
) -> None:
    texts = [
        ", ".join(
            f"{size} {name}{'' if variant is None else ' - ' + variant} - {price_text(p)}"
            for size, name, variant, p in basket
        )
        for basket in rows
    ]
    assert recovered(texts, STANDARD) == [as_expected(basket) for basket in rows]


legacy_items = st.tuples(
    st.sampled_from(["Regular", "Large", None]),
    names,
    st.none() | names,
    st.integers(min_value=1, max_value=5000),
)


@FAST
@given(st.lists(st.lists(legacy_items, min_size=1, max_size=6), min_size=1, max_size=5))
def test_legacy_triples_are_recovered_item_by_item(
    rows: list[list[tuple[str | None, str, str | None, int]]],
) -> None:
    texts = [
        ",".join(
            f"{size or ''},{name}{'' if variant is None else ' - ' + variant},{price_text(p)}"
            for size, name, variant, p in basket
        )
        for basket in rows
    ]
    assert recovered(texts, LEGACY) == [as_expected(basket) for basket in rows]


def test_basket_examples() -> None:
    standard = recovered(
        ["Regular Flavoured iced latte - Hazelnut - 2.75, Large Latte - 2.45, Large Latte - 2.45"],
        STANDARD,
    )
    assert standard == [
        [
            ("Regular", "Flavoured iced latte", "Hazelnut", Decimal("2.75")),
            ("Large", "Latte", None, Decimal("2.45")),
            ("Large", "Latte", None, Decimal("2.45")),
        ]
    ]
    legacy = recovered([",Espresso,1.50,Large,Latte,2.45"], LEGACY)
    assert legacy == [
        [(None, "Espresso", None, Decimal("1.50")), ("Large", "Latte", None, Decimal("2.45"))]
    ]


def test_product_names_are_case_sensitive() -> None:
    frame = pl.DataFrame(
        {"row": [0], "basket": ["Large Hot chocolate - 2.90, Large Hot Chocolate - 1.70"]}
    )
    menu = basket_items(frame, STANDARD).menu
    assert sorted(menu["product"].to_list()) == ["Hot Chocolate", "Hot chocolate"]
    assert menu["product_key"].n_unique() == 2
    assert sorted(menu["product_index"].to_list()) == [0, 1]


def test_unreadable_items_have_null_product_or_price() -> None:
    assert recovered(["Large Latte 2.45", "Large Latte - 2.456", "Large Latte - £2"], STANDARD) == [
        [(None, None, None, None)],
        [("Large", "Latte", None, None)],
        [("Large", "Latte", None, None)],
    ]


# --- per_distinct --------------------------------------------------------------------------


@FAST
@given(st.lists(st.sampled_from(["5.2", "13.45", "x", "", None, " 5 "]), max_size=30))
def test_per_distinct_equals_converting_every_value(values: list[str | None]) -> None:
    column = pl.Series("v", values, dtype=pl.String)
    direct = pl.select(money(pl.lit(column))).to_series().to_list()
    assert per_distinct(column, money).to_list() == direct
