"""Tests for the synthetic till-export generator (real files, no mocks)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from brewline.synth import (
    BRANCH_NAMES,
    MENU,
    SynthSpec,
    branch_profiles,
    file_name_for,
    format_total,
    format_totals,
    generate_landing,
    generate_sales,
    write_branch_exports,
)

TIMESTAMP = re.compile(r"^(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2})$")
TOTAL = re.compile(r"^(0|[1-9]\d*)\.(\d|\d[1-9])$")
ITEM = re.compile(r"^(Large|Regular) (.+?) - (\d+\.\d{2})$")
FILE_NAME = re.compile(r"^([a-z0-9_\-']+)_(\d{2}-\d{2}-\d{4})_(\d{2})-(\d{2})-00\.csv$")

# Realistic volumes over 10 days incl. a weekend, across a month boundary.
SPEC = SynthSpec(branches=4, days=10, start=dt.date(2024, 11, 25), seed=11)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_landing(tmp_path_factory.mktemp("landing"), SPEC)


@pytest.fixture(scope="module")
def rows_by_file(landing: list[Path]) -> dict[str, list[list[str]]]:
    out = {}
    for path in landing:
        with path.open(newline="", encoding="utf-8") as fh:
            out[path.name] = list(csv.reader(fh))
    return out


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    doubled = [2 * d - 9 if 2 * d > 9 else 2 * d for d in digits[1::2]]
    return (sum(digits[0::2]) + sum(doubled)) % 10 == 0


def _all_rows(rows_by_file: dict[str, list[list[str]]]) -> list[list[str]]:
    return [row for rows in rows_by_file.values() for row in rows]


def test_one_file_per_branch_day_with_rule_names(landing: list[Path]) -> None:
    profiles = branch_profiles(SPEC)
    days = [SPEC.start + dt.timedelta(days=d) for d in range(SPEC.days)]
    expected = sorted(file_name_for(p.name, d, p.opening(d)) for p in profiles for d in days)
    assert [p.name for p in landing] == expected
    assert landing == sorted(landing)
    for name in expected:
        assert FILE_NAME.match(name), name
    camden = file_name_for("London Camden", dt.date(2024, 12, 18), dt.time(9))
    assert camden == "london_camden_18-12-2024_09-00-00.csv"
    southend = file_name_for("Southend-on-Sea", dt.date(2024, 12, 18), dt.time(8))
    assert southend == "southend-on-sea_18-12-2024_08-00-00.csv"


def test_lines_parse_within_opening_hours_and_sorted(
    rows_by_file: dict[str, list[list[str]]],
) -> None:
    profiles = {p.name: p for p in branch_profiles(SPEC)}
    for name, rows in rows_by_file.items():
        assert 60 <= len(rows) <= 700, name  # realistic volume per branch-day
        assert all(len(row) == 7 for row in rows), name
        stamps = []
        for row in rows:
            m = TIMESTAMP.match(row[0])
            assert m, row[0]
            day, month, year, hour, minute = map(int, m.groups())
            when = dt.datetime(year, month, day, hour, minute)
            profile = profiles[row[1]]
            assert profile.opening(when.date()) <= when.time() < profile.closing(when.date())
            assert file_name_for(row[1], when.date(), profile.opening(when.date())) == name
            stamps.append(when)
        assert stamps == sorted(stamps), name
        assert len(set(stamps)) < len(stamps)  # busy minutes hold several sales


def test_items_add_up_to_total_exactly(rows_by_file: dict[str, list[list[str]]]) -> None:
    menu = {m.label for m in MENU}
    sizes = []
    for row in _all_rows(rows_by_file):
        items = row[3].split(", ")
        assert 1 <= len(items) <= 6
        assert set(items) <= menu, items
        prices = [Decimal(ITEM.match(item).group(3)) for item in items]  # type: ignore[union-attr]
        assert TOTAL.match(row[4]), row[4]
        assert sum(prices, Decimal(0)) == Decimal(row[4])
        sizes.append(len(items))
    assert 2.4 < sum(sizes) / len(sizes) < 3.0
    assert any(len(set(r[3].split(", "))) < len(r[3].split(", ")) for r in _all_rows(rows_by_file))


def test_payment_and_returning_customers(rows_by_file: dict[str, list[list[str]]]) -> None:
    rows = _all_rows(rows_by_file)
    name_of: dict[str, set[str]] = defaultdict(set)
    days_of: dict[str, set[str]] = defaultdict(set)
    branches_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        assert row[5] in {"CARD", "CASH"}
        assert re.fullmatch(r"[A-Z][A-Za-z'\-]+ [A-Z][A-Za-z'\-]+", row[2]), row[2]
        if row[5] == "CASH":
            assert row[6] == ""
            continue
        assert re.fullmatch(r"[45]\d{15}", row[6]), row[6]
        assert luhn_valid(row[6]), row[6]
        name_of[row[6]].add(row[2])
        days_of[row[6]].add(row[0][:10])
        branches_of[row[6]].add(row[1])
    card_share = sum(r[5] == "CARD" for r in rows) / len(rows)
    assert 0.55 < card_share < 0.75
    assert all(len(names) == 1 for names in name_of.values())  # a card keeps its name
    assert sum(len(d) > 1 for d in days_of.values()) > 50  # returning customers
    assert sum(len(b) > 1 for b in branches_of.values()) > 5  # some visit another branch
    assert max(len(d) for d in days_of.values()) >= 5


def test_bytes_match_python_csv_minimal_quoting(landing: list[Path]) -> None:
    sales = generate_sales(SPEC)
    for path in landing:
        part = sales.filter(pl.col("file_name") == path.name).drop("file_name")
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(part.rows())
        data = path.read_bytes()
        assert data == buf.getvalue().encode()
        assert b"\r" not in data
        assert b'""' not in data  # empty card numbers are written as nothing
        for line in data.decode().splitlines():
            assert line.count('"') in (0, 2)
            assert (line.count('"') == 2) == (", " in line.split(",", 3)[3])


def test_realistic_examples_are_quoted_exactly_like_the_till(tmp_path: Path) -> None:
    sales = generate_sales(SynthSpec(branches=1, days=1, sales_per_branch_day=400, seed=3))
    (path,) = write_branch_exports(sales, tmp_path)
    lines = path.read_text().split("\n")
    assert lines[-1] == ""  # final LF
    cash = next(line for line in lines if ",CASH," in line)
    assert cash.endswith(",CASH,")
    single = next(line for line in lines if line.count(" - ") == 1)
    assert '"' not in single
    multi = next(line for line in lines if '", ' not in line and ", " in line)
    assert re.match(r'^[^"]+,"[^"]+ - \d+\.\d\d, [^"]+",\d+\.\d+,CA(RD|SH),\d*$', multi)


def test_exact_count_per_file_and_sorted_frame() -> None:
    spec = SynthSpec(branches=3, days=2, sales_per_branch_day=37, seed=5)
    sales = generate_sales(spec)
    assert sales.columns == [
        "timestamp",
        "branch",
        "customer_name",
        "basket",
        "total",
        "payment_method",
        "card_number",
        "file_name",
    ]
    assert all(dtype == pl.String for dtype in sales.dtypes)
    counts = sales.group_by("file_name").len()
    assert counts.height == 6
    assert counts["len"].to_list() == [37] * 6
    assert sales.equals(sales.sort("file_name", "timestamp", maintain_order=True))


def test_deterministic_bytes(tmp_path: Path) -> None:
    spec = SynthSpec(branches=2, days=2, seed=42)

    def written(sub: str, s: SynthSpec) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in generate_landing(tmp_path / sub, s)}

    first, again = written("a", spec), written("b", spec)
    assert first == again
    other = written("c", SynthSpec(branches=2, days=2, seed=43))
    assert other != first


@pytest.mark.parametrize("per_day", [None, 25])
def test_a_branch_day_is_the_same_file_whatever_else_is_generated(
    tmp_path: Path, per_day: int | None
) -> None:
    def written(sub: str, spec: SynthSpec) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in generate_landing(tmp_path / sub, spec)}

    small = written("small", SynthSpec(branches=2, days=3, sales_per_branch_day=per_day))
    more = written("more", SynthSpec(branches=3, days=5, sales_per_branch_day=per_day))
    later = SynthSpec(branches=2, days=2, start=dt.date(2024, 11, 2), sales_per_branch_day=per_day)
    assert len(small) == 6
    assert len(more) == 15
    assert {name: more[name] for name in small} == small
    assert written("later", later).items() <= small.items()


def test_many_branches_get_numbered_names() -> None:
    assert len(BRANCH_NAMES) >= 40
    assert len(set(BRANCH_NAMES)) == len(BRANCH_NAMES)
    for name in ("Chesterfield", "London Camden", "Southend-on-Sea", "Sutton on Hull"):
        assert name in BRANCH_NAMES
    n = len(BRANCH_NAMES)
    profiles = branch_profiles(SynthSpec(branches=2 * n + 1))
    names = [p.name for p in profiles]
    assert len(set(names)) == len(names)
    assert names[n] == f"{names[0]} 2"
    assert names[2 * n] == f"{names[0]} 3"
    for p in profiles:
        for opening, closing in p.hours:
            assert 7 * 60 <= opening < closing <= 19 * 60
        assert p.hours[6][1] - p.hours[6][0] < p.hours[0][1] - p.hours[0][0]  # short Sunday


def test_menu_is_the_real_one() -> None:
    labels = {m.label for m in MENU}
    assert len(labels) == len(MENU) == 78
    for label in (
        "Regular Flavoured iced latte - Hazelnut - 2.75",
        "Large Latte - 2.45",
        "Regular Speciality Tea - Green - 1.30",
        "Large Hot Chocolate - 1.70",
        "Large Hot chocolate - 2.90",
        "Regular Glass of milk - 0.70",
        "Large Frappes - Strawberries & Cream - 3.25",
    ):
        assert label in labels


@given(st.integers(min_value=0, max_value=10**12))
def test_format_total_round_trips(pence: int) -> None:
    text = format_total(pence)
    assert TOTAL.match(text), text
    assert Decimal(text) == Decimal(pence) / 100
    assert text == str(pence / 100)  # the till writes totals like Python floats


@given(st.lists(st.integers(min_value=0, max_value=10**9), max_size=50))
def test_vectorised_totals_match_scalar(pences: list[int]) -> None:
    assert format_totals(pl.Series(pences, dtype=pl.Int64)).to_list() == [
        format_total(p) for p in pences
    ]


def test_format_total_examples() -> None:
    assert [format_total(p) for p in (520, 1345, 500, 1730, 130, 5, 0)] == [
        "5.2",
        "13.45",
        "5.0",
        "17.3",
        "1.3",
        "0.05",
        "0.0",
    ]
