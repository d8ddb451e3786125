"""Star-schema frames from real exports: totals add up, keys are deterministic, no PII leaves."""

from __future__ import annotations

import calendar as pycalendar
import csv
import dataclasses
import datetime as dt
import hashlib
import hmac
import io
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from brewline.extract import read_export
from brewline.keys import sale_key_base, stable_key
from brewline.marts import of_batch
from brewline.transform.star import FileFacts, StarBatch, build_star, calendar
from brewline.validate.rules import validate_exports, validate_rows

BREWS = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "branch-exports" / "brews-brothers"
)
CHESTERFIELD = "chesterfield_25-08-2021_09-00-00.csv"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "layouts"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
KEY = b"test-pii-key-0123456789abcdef"


def facts(name: str, data: bytes, layout: str, skipped: int) -> FileFacts:
    return FileFacts(name, hashlib.sha256(data).hexdigest(), len(data), layout, skipped)


def star_of(files: list[tuple[str, bytes]], key: bytes | None = KEY) -> StarBatch:
    raws = [read_export(data, name) for name, data in files]
    checked = validate_exports(raws)
    described = [
        facts(name, data, raw.layout.name, raw.skipped_lines)
        for (name, data), raw in zip(files, raws, strict=True)
    ]
    return build_star(checked, described, key)


def real(name: str) -> tuple[str, bytes]:
    path = BREWS / name
    if not path.is_file():
        pytest.fail(f"real sample export missing: {path}")
    return name, path.read_bytes()


def fixture(name: str) -> tuple[str, bytes]:
    return name, (FIXTURES / name).read_bytes()


def personal_data(data: bytes) -> tuple[set[str], set[str]]:
    """Customer names and card digits of an export (standard or legacy layout)."""
    names, cards = set(), set()
    for record in csv.reader(io.StringIO(data.decode("utf-8-sig"))):
        if len(record) == 7:
            names.add(record[2].strip())
            digits = record[6].split(",")[-1].strip()
            if digits.isdigit():
                cards.add(digits)
    names.discard("")
    return names, cards


def frames(batch: StarBatch) -> dict[str, pl.DataFrame]:
    """Every frame the batch carries to the warehouse, its mart rows included."""
    found = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch) if f.name != "marts"}
    return found | (batch.marts or of_batch(batch.sales, batch.lines))


@pytest.fixture(scope="module")
def chesterfield() -> tuple[bytes, StarBatch]:
    name, data = real(CHESTERFIELD)
    return data, star_of([(name, data)])


# --- totals and counts -------------------------------------------------------------------


def test_totals_add_up_on_a_real_file(chesterfield: tuple[bytes, StarBatch]) -> None:
    _, batch = chesterfield
    assert batch.sales.height == 268
    assert batch.sales["total"].sum() == batch.lines["line_amount"].sum() == Decimal("2088.65")
    assert batch.lines["quantity"].sum() == batch.sales["items"].sum() == 779
    per_sale = batch.lines.group_by("sale_key").agg(
        amount=pl.col("line_amount").sum(), quantity=pl.col("quantity").sum()
    )
    joined = batch.sales.join(per_sale, on="sale_key", how="left")
    assert (joined["amount"] == joined["total"]).all()
    assert (joined["quantity"] == joined["items"]).all()


def test_one_branch_and_one_trading_day(chesterfield: tuple[bytes, StarBatch]) -> None:
    _, batch = chesterfield
    assert batch.branches.rows() == [(stable_key("branch", "Chesterfield"), "Chesterfield")]
    assert batch.sales["branch_key"].unique().to_list() == [stable_key("branch", "Chesterfield")]
    assert batch.branch_days.select("date_key", "sales").rows() == [(20210825, 268)]


def test_dim_date_for_25_august_2021(chesterfield: tuple[bytes, StarBatch]) -> None:
    _, batch = chesterfield
    assert batch.dates.to_dicts() == [
        {
            "date_key": 20210825,
            "date": dt.date(2021, 8, 25),
            "year": 2021,
            "quarter": 3,
            "month": 8,
            "month_name": "August",
            "day_of_month": 25,
            "day_of_week": 3,
            "day_name": "Wednesday",
            "iso_week": 34,
            "is_weekend": False,
        }
    ]


def test_file_ledger_counts(chesterfield: tuple[bytes, StarBatch]) -> None:
    data, batch = chesterfield
    expected = facts(CHESTERFIELD, data, "standard", 0)
    assert batch.files.select(
        "file_id",
        "source_name",
        "sha256",
        "size_bytes",
        "layout",
        "skipped_lines",
        "rows_loaded",
        "rows_rejected",
        "rows_read",
    ).rows() == [
        (expected.file_id, CHESTERFIELD, expected.sha256, len(data), "standard", 0, 268, 0, 268)
    ]


def test_all_brews_brothers_files_match_the_published_figures() -> None:
    batch = star_of([real(path.name) for path in sorted(BREWS.glob("*.csv"))])
    assert batch.sales.height == 577
    assert batch.lines["quantity"].sum() == 1624
    assert batch.sales["total"].sum() == batch.lines["line_amount"].sum() == Decimal("3894.85")
    assert sorted(batch.dates["date_key"]) == [20210825, 20230509, 20230808]
    assert sorted(batch.branches["branch_name"]) == ["Chesterfield", "Leeds", "Uppingham"]
    assert batch.files["rows_read"].to_list() == [268, 50, 259]


# --- keys ----------------------------------------------------------------------------------


def test_keys_are_deterministic_and_consistent(chesterfield: tuple[bytes, StarBatch]) -> None:
    data, batch = chesterfield
    sales, lines = batch.sales, batch.lines
    assert sales["sale_key"].is_unique().all()
    base = sale_key_base(CHESTERFIELD)
    assert [key - line for key, line in sales.select("sale_key", "source_line").rows()] == [
        base
    ] * sales.height
    assert sorted(sales["source_line"]) == list(range(1, 269))
    assert set(lines["sale_key"]) == set(sales["sale_key"])
    assert set(lines["product_key"]) <= set(batch.products["product_key"])
    assert batch.products["product_key"].is_unique().all()
    for key, product, size, variant in batch.products.select(
        "product_key", "product_name", "size", "variant"
    ).iter_rows():
        assert key == stable_key("product", product, size, variant)
    again = star_of([(CHESTERFIELD, data)])
    for name, frame in frames(batch).items():
        assert_frame_equal(frame, frames(again)[name], check_row_order=False)


def test_only_keeps_the_named_files() -> None:
    batch = star_of([real(CHESTERFIELD), fixture("bad_rows.csv")])
    keep = batch.files.filter(pl.col("source_name") == "bad_rows.csv")["file_id"].to_list()
    part = batch.only(keep)
    assert part.sales.height == EXPECTED["bad_rows.csv"]["sales"]
    assert part.rejects.height == len(EXPECTED["bad_rows.csv"]["rejects"])
    assert set(part.lines["file_id"]) == set(keep)
    # Dimensions are those of the part's own rows: a file left out adds none (issue 19).
    assert set(part.products["product_key"]) == set(part.lines["product_key"])
    assert part.products.height < batch.products.height
    assert part.branches["branch_name"].to_list() == ["Leeds"]
    assert set(part.dates["date_key"]) == set(part.sales["date_key"])


# --- privacy ---------------------------------------------------------------------------------


def assert_no_personal_data(batch: StarBatch, data: bytes) -> None:
    names, cards = personal_data(data)
    assert names, "the input must hold personal data for this check to mean anything"
    assert cards
    card_numbers = {int(card) for card in cards}
    for frame_name, frame in frames(batch).items():
        for column in frame.columns:
            assert not any(word in column for word in ("customer_name", "card")), column
            series = frame[column]
            if series.dtype == pl.String:
                for value in series.drop_nulls().unique().to_list():
                    leaked = [p for p in names | cards if p in value]
                    assert leaked == [], f"{frame_name}.{column} holds {leaked}"
            elif series.dtype.is_integer():
                assert not set(series.drop_nulls().to_list()) & card_numbers, (
                    f"{frame_name}.{column} holds a card number"
                )


def test_no_output_frame_holds_a_name_or_card(chesterfield: tuple[bytes, StarBatch]) -> None:
    data, batch = chesterfield
    assert_no_personal_data(batch, data)


@pytest.mark.parametrize("name", ["legacy.csv", "bad_rows.csv", "padded.csv"])
def test_no_output_frame_holds_a_name_or_card_for_fixtures(name: str) -> None:
    source, data = fixture(name)
    assert_no_personal_data(star_of([(source, data)]), data)


def test_customer_keys_are_hmac_of_the_card(chesterfield: tuple[bytes, StarBatch]) -> None:
    data, batch = chesterfield
    raw = read_export(data, CHESTERFIELD)
    cards = validate_rows(raw).sales.select(source_line="line_no", card="card")
    joined = batch.sales.join(cards, on="source_line")
    for card, token in joined.select("card", "customer_key").iter_rows():
        if card is None:
            assert token is None
        else:
            digest = hmac.digest(KEY, card.encode(), "sha256")
            assert token == int.from_bytes(digest[:8], "big") & (2**63 - 1)
    paying = joined.filter(pl.col("card").is_not_null())
    assert batch.customers.height == paying["card"].n_unique()
    first = paying.group_by("customer_key").agg(first=pl.col("sold_at").min())
    assert_frame_equal(
        batch.customers.sort("customer_key"),
        first.rename({"first": "first_seen_at"}).sort("customer_key"),
    )


def test_no_key_means_no_customers() -> None:
    batch = star_of([real(CHESTERFIELD)], key=None)
    assert batch.sales["customer_key"].null_count() == batch.sales.height
    assert batch.customers.height == 0


def test_unicode_digit_card_does_not_break_the_batch() -> None:
    """A card written in non-ASCII digits is not a card: no token, and the file still loads."""
    data = (
        "25/08/2021 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CARD,"
        + "".join(chr(0xFF10 + int(c)) for c in "4000123412340001")  # FULLWIDTH DIGITs
        + "\n"
        + "25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.45,2.45,CARD,4000123412340001\n"
    ).encode()
    batch = star_of([("x.csv", data)])
    assert batch.sales["customer_key"].to_list()[0] is None
    assert batch.sales["customer_key"].to_list()[1] is not None


# --- rejects and mixed batches ----------------------------------------------------------------


def test_rejects_carry_no_raw_text() -> None:
    batch = star_of([fixture("bad_rows.csv")])
    assert batch.rejects.columns == ["file_id", "line_no", "reason"]
    expected = sorted((int(k), v) for k, v in EXPECTED["bad_rows.csv"]["rejects"].items())
    assert sorted(batch.rejects.select("line_no", "reason").rows()) == expected
    files = batch.files.row(0, named=True)
    assert (files["rows_loaded"], files["rows_rejected"], files["rows_read"]) == (
        2,
        len(expected),
        2 + len(expected),
    )


def test_mixed_layout_batch_keeps_lines_with_their_sales() -> None:
    """Standard and legacy files in one batch: every file's lines still add up to its sales."""
    names = ["standard.csv", "legacy.csv"]
    batch = star_of([fixture(name) for name in names])
    assert batch.products["product_key"].is_unique().all()
    for name in names:
        file_id = batch.files.filter(pl.col("source_name") == name)["file_id"][0]
        sales = batch.sales.filter(pl.col("file_id") == file_id)
        lines = batch.lines.filter(pl.col("file_id") == file_id)
        assert sales.height == EXPECTED[name]["sales"]
        assert lines["quantity"].sum() == sales["items"].sum() == EXPECTED[name]["items"], name
        assert (
            lines["line_amount"].sum()
            == sales["total"].sum()
            == Decimal(EXPECTED[name]["sum_total"])
        ), name


# --- calendar ------------------------------------------------------------------------------


@settings(deadline=None, max_examples=150)
@given(
    st.lists(
        st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31)), min_size=1, max_size=10, unique=True
    )
)
def test_calendar_matches_python(days: list[dt.date]) -> None:
    keys = pl.DataFrame(
        {"date_key": [d.year * 10000 + d.month * 100 + d.day for d in days]},
        schema={"date_key": pl.Int32},
    )
    table = calendar(keys)
    assert table["date_key"].to_list() == keys["date_key"].to_list()
    for day, row in zip(days, table.iter_rows(named=True), strict=True):
        assert row["date"] == day
        assert row["year"] == day.year
        assert row["quarter"] == (day.month - 1) // 3 + 1
        assert row["month"] == day.month
        assert row["month_name"] == pycalendar.month_name[day.month]
        assert row["day_of_month"] == day.day
        assert row["day_of_week"] == day.isoweekday()
        assert row["day_name"] == pycalendar.day_name[day.weekday()]
        assert row["iso_week"] == day.isocalendar().week
        assert row["is_weekend"] == (day.isoweekday() >= 6)


def test_built_frames_have_the_declared_schemas() -> None:
    """SCHEMAS documents what the loaders receive; a batch with no data uses it too."""
    from brewline.transform.star import SCHEMAS, StarBatch

    raw = read_export(
        b"25/08/2021 09:00,Leeds,A B,Large Latte - 2.45,2.45,CARD,5494173772652516\n", "x.csv"
    )
    batch = build_star(
        validate_rows(raw),
        [FileFacts("x.csv", "ab" * 32, 57, "standard", 0)],
        b"0123456789abcdefXYZ",
    )
    for name, schema in SCHEMAS.items():
        assert dict(getattr(batch, name).schema) == schema, name
    empty = StarBatch.without_data(batch.files)
    assert all(getattr(empty, name).is_empty() for name in SCHEMAS)
