"""Layout detection and raw reading of branch exports, over real byte-exact fixtures.

Every variant DESIGN.md lists has a fixture in tests/fixtures/layouts/ and an
entry in its expected.json (layout, physical line numbers of the rows,
skipped lines, or the file-level rejection reason).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brewline.errors import FileRejected
from brewline.extract import FIELDS, LAYOUTS, read_export
from brewline.validate.rules import validate_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "layouts"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())
READABLE = sorted(name for name, facts in EXPECTED.items() if "layout" in facts)
REFUSED_ON_READ = sorted(name for name, facts in EXPECTED.items() if "read_reason" in facts)
REFUSED_AT_ALL = sorted(
    name for name, facts in EXPECTED.items() if "read_reason" in facts or "check_reason" in facts
)
BOM = b"\xef\xbb\xbf"
NOT_UTF8 = {"latin1.csv", "cp1252_basket.csv"}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def physical_lines(data: bytes) -> list[str]:
    """The file's physical lines as text (the numbering a person sees in an editor)."""
    text = data.removeprefix(BOM).decode("utf-8", errors="replace")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def personal_data(data: bytes) -> set[str]:
    """Every customer name and card number in a fixture, whatever its layout or encoding."""
    try:
        text = data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    found = set(re.findall(r"\d{12,19}", text))
    person = re.compile(r"^[A-Z][a-zë]+ [A-Z][a-z]+$")
    for record in csv.reader(io.StringIO(text)):
        found.update(field.strip() for field in record if person.match(field.strip()))
    return found


# --- the fixtures themselves -------------------------------------------------------------


def test_every_fixture_is_described() -> None:
    on_disk = {path.name for path in FIXTURES.glob("*.csv")}
    assert on_disk == set(EXPECTED)
    readme = (FIXTURES / "README.md").read_text()
    for name in on_disk:
        assert f"`{name}`" in readme, f"{name} is not listed in the fixtures README"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_bytes_are_the_variant_they_claim(name: str) -> None:
    data = fixture_bytes(name)
    assert data.count(b"\n") <= 15, "fixtures stay small"
    assert data.startswith(BOM) == (name == "bom.csv")
    if name == "crlf.csv":
        assert data.count(b"\r\n") == data.count(b"\n") == 3
    else:
        assert b"\r" not in data
    if name in NOT_UTF8:
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        assert "Zoë" in data.decode("latin-1")
    else:
        data.decode("utf-8")
    assert (data == b"") == (name == "empty.csv")


def test_fixtures_hold_personal_data_to_protect() -> None:
    # The PII checks below are only meaningful if the finder finds something.
    assert {"Ada Fakename", "4000123412340001"} <= personal_data(fixture_bytes("standard.csv"))
    assert {"Zoë Fakeson", "4000123412340016"} <= personal_data(fixture_bytes("latin1.csv"))
    assert {"Hope Nobody", "4000123412340014"} <= personal_data(fixture_bytes("unrecognised.csv"))
    assert {"Bea Ghostly", "4000123412340011"} <= personal_data(fixture_bytes("legacy.csv"))


# --- readable fixtures -----------------------------------------------------------------


@pytest.mark.parametrize("name", READABLE)
def test_layout_is_detected(name: str) -> None:
    raw = read_export(fixture_bytes(name), name)
    assert raw.layout.name == EXPECTED[name]["layout"]
    assert raw.layout in LAYOUTS


@pytest.mark.parametrize("name", READABLE)
def test_rows_are_physical_lines(name: str) -> None:
    raw = read_export(fixture_bytes(name), name)
    assert raw.rows.columns == ["line_no", *FIELDS, "line_problem"]
    assert raw.rows["line_no"].to_list() == EXPECTED[name]["line_nos"]
    assert raw.rows.height == len(EXPECTED[name]["line_nos"])


@pytest.mark.parametrize("name", READABLE)
def test_skipped_lines_are_headers_and_blanks(name: str) -> None:
    data = fixture_bytes(name)
    raw = read_export(data, name)
    assert raw.skipped_lines == EXPECTED[name]["skipped_lines"]
    assert raw.rows.height + raw.skipped_lines == len(physical_lines(data))


@pytest.mark.parametrize("name", READABLE)
def test_each_row_holds_the_fields_of_its_own_line(name: str) -> None:
    """The line number points at the line the fields came from (no shift after skips)."""
    data = fixture_bytes(name)
    lines = physical_lines(data)
    raw = read_export(data, name)
    readable = raw.rows.filter(pl.col("line_problem").is_null())
    for row in readable.iter_rows(named=True):
        line = lines[row["line_no"] - 1]
        assert line.strip().startswith(row["timestamp"].strip())
        for field in ("branch", "customer_name", "total", "card_number"):
            if row[field] is not None:
                assert row[field].strip() in line, (field, row["line_no"])


@pytest.mark.parametrize("name", READABLE)
def test_no_field_carries_line_ends_or_bom(name: str) -> None:
    raw = read_export(fixture_bytes(name), name)
    for field in FIELDS:
        values = raw.rows[field].drop_nulls().to_list()
        assert not [v for v in values if "\r" in v or "\n" in v or "\ufeff" in v], field


def test_bom_is_not_part_of_the_first_timestamp() -> None:
    raw = read_export(fixture_bytes("bom.csv"), "bom.csv")
    assert raw.rows["timestamp"][0] == "18/12/2024 09:00"


def test_crlf_empty_last_field_is_empty_not_carriage_return() -> None:
    raw = read_export(fixture_bytes("crlf.csv"), "crlf.csv")
    assert raw.rows["card_number"].to_list() == ["4000123412340006", None, None]


def test_legacy_fields_are_renamed_to_canonical_order() -> None:
    raw = read_export(fixture_bytes("legacy.csv"), "legacy.csv")
    first = raw.rows.row(0, named=True)
    assert first == {
        "line_no": 1,
        "timestamp": "2021-08-25 09:00:00",
        "branch": "Chesterfield",
        "customer_name": "Bea Ghostly",
        "basket": "Regular,Latte,2.15,Large,Latte,2.45",
        "total": "4.6",
        "payment_method": "CARD",
        "card_number": "visa,4000123412340011",
        "line_problem": None,
    }
    assert raw.rows["card_number"][1] == "None"


def test_layout_comes_from_content_not_file_name() -> None:
    legacy = read_export(fixture_bytes("legacy.csv"), "leeds_09-05-2023_09-00-00.csv")
    standard = read_export(fixture_bytes("standard.csv"), "legacy_export_2021.csv")
    assert (legacy.layout.name, standard.layout.name) == ("legacy", "standard")


def test_damaged_lines_are_rows_with_a_problem() -> None:
    raw = read_export(fixture_bytes("bad_rows.csv"), "bad_rows.csv")
    problems = raw.rows.filter(pl.col("line_problem").is_not_null())
    assert problems.select("line_no", "line_problem").to_dicts() == [
        {"line_no": 2, "line_problem": "unbalanced_quotes"},
        {"line_no": 3, "line_problem": "too_many_fields"},
    ]
    # The good lines around them are read in full.
    assert raw.rows.filter(pl.col("line_no") == 15)["customer_name"].to_list() == ["Yul Forgery"]


def test_quoted_newline_marks_both_physical_lines_and_keeps_numbering() -> None:
    data = (
        b"25/08/2021 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CASH,\n"
        b'25/08/2021 09:01,Leeds,Bob Example,"Large Latte - 2.45,\n'
        b'Regular Latte - 2.15",4.6,CASH,\n'
        b"\n"
        b"25/08/2021 09:02,Leeds,Cat Example,Large Latte - 2.45,2.45,CASH,\n"
    )
    raw = read_export(data, "x.csv")
    assert raw.rows.select("line_no", "line_problem").to_dicts() == [
        {"line_no": 1, "line_problem": None},
        {"line_no": 2, "line_problem": "unbalanced_quotes"},
        {"line_no": 3, "line_problem": "unbalanced_quotes"},
        {"line_no": 5, "line_problem": None},
    ]
    assert raw.skipped_lines == 1
    assert raw.rows["customer_name"][3] == "Cat Example"


def test_damaged_line_and_blank_lines_with_crlf_and_bom_together() -> None:
    data = BOM + (
        b"date,branch,name,basket,total,payment,card\r\n"
        b"\r\n"
        b"25/08/2021 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CASH,\r\n"
        b"25/08/2021 09:01,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,,,\r\n"
        b"25/08/2021 09:02,Leeds,Cat Example,Large Latte - 2.45,2.45,CARD,4000123412349999\r\n"
    )
    raw = read_export(data, "x.csv")
    seen = raw.rows.select("line_no", "customer_name", "card_number", "line_problem").rows()
    assert seen == [
        (3, "Ann Example", None, None),
        (4, None, None, "too_many_fields"),
        (5, "Cat Example", "4000123412349999", None),
    ]
    assert raw.skipped_lines == 2


def test_file_without_final_newline_keeps_its_last_row() -> None:
    data = fixture_bytes("standard.csv").rstrip(b"\n")
    raw = read_export(data, "standard.csv")
    assert raw.rows["line_no"].to_list() == [1, 2, 3, 4, 5]
    assert raw.skipped_lines == 0


# --- whole-file rejections ---------------------------------------------------------------


@pytest.mark.parametrize("name", REFUSED_ON_READ)
def test_unreadable_files_are_rejected_with_a_reason(name: str) -> None:
    with pytest.raises(FileRejected) as caught:
        read_export(fixture_bytes(name), name)
    assert caught.value.reason == EXPECTED[name]["read_reason"]
    assert caught.value.source == name
    assert not caught.value.transient


@pytest.mark.parametrize(
    "data",
    [b"", b"\n", b"\r\n\r\n", b"   \n\t\n", BOM, BOM + b"\r\n"],
    ids=["zero-bytes", "newline", "crlf-only", "whitespace", "bom-only", "bom-newline"],
)
def test_files_with_nothing_in_them_are_empty(data: bytes) -> None:
    with pytest.raises(FileRejected) as caught:
        read_export(data, "x.csv")
    assert caught.value.reason == "empty_file"


def test_header_only_file_is_rejected() -> None:
    data = fixture_bytes("one_header.csv").split(b"\n")[0] + b"\n"
    with pytest.raises(FileRejected) as caught:
        read_export(data, "x.csv")
    assert caught.value.reason in {"empty_file", "unrecognised_layout"}


def test_latin1_is_fine_in_dropped_columns_but_not_in_kept_ones() -> None:
    line = "18/12/2024 09:01,Belfast,Zoë Fakeson,Regular Latte - 2.15,2.15,CASH,\n"
    assert read_export(line.encode("utf-8"), "x.csv").rows["customer_name"][0] == "Zoë Fakeson"
    raw = read_export(line.encode("latin-1"), "x.csv")
    assert raw.rows.select("branch", "basket").row(0) == ("Belfast", "Regular Latte - 2.15")
    with pytest.raises(FileRejected) as caught:
        read_export(line.replace("Latte", "Latté").encode("latin-1"), "x.csv")
    assert caught.value.reason == "not_utf8"
    assert str(caught.value).startswith("x.csv: not UTF-8: re-export as UTF-8 (line 1: its basket")


def test_latin1_in_a_header_row_only_does_not_refuse_the_file() -> None:
    header = "Fecha,Sucursal,Nombre,Cesta,Total,Método,Número\n"
    line = "18/12/2024 09:01,Belfast,Zoë Fakeson,Regular Latte - 2.15,2.15,CASH,\n"
    raw = read_export((header + line).encode("latin-1"), "x.csv")
    assert (raw.rows["line_no"].to_list(), raw.skipped_lines) == ([2], 1)


def test_a_file_that_is_not_utf8_and_semicolon_separated_is_told_its_delimiter() -> None:
    line = "18/12/2024 09:01;Belfast;Zoë Fakeson;Regular Latte - 2.15;2.15;CASH;\n"
    with pytest.raises(FileRejected) as caught:
        read_export(line.encode("cp1252"), "x.csv")
    assert caught.value.reason == "unrecognised_layout"
    assert "separated by ';'" in caught.value.message


def test_a_file_that_is_not_utf8_and_no_export_says_not_utf8() -> None:
    with pytest.raises(FileRejected) as caught:
        read_export(b"\xff\xfe not a csv\n", "x.csv")
    assert caught.value.reason == "not_utf8"
    assert caught.value.message.startswith("not UTF-8: re-export as UTF-8")


@pytest.mark.parametrize("name", REFUSED_AT_ALL)
def test_rejection_messages_hold_no_personal_data(name: str) -> None:
    data = fixture_bytes(name)
    with pytest.raises(FileRejected) as caught:
        validate_rows(read_export(data, name))
    error = caught.value
    said = " ".join([str(error), error.message, repr(error.args)])
    leaked = sorted(value for value in personal_data(data) if value in said)
    assert leaked == []
    for line in physical_lines(data) if name not in NOT_UTF8 else []:
        if line.strip():
            assert line not in said


def test_one_space_padded_quoted_line_does_not_cost_the_other_rows() -> None:
    """One line written with ', ' separators and a quoted basket must not sink the file.

    Whatever happens to that line (read, or rejected with a line reason), the
    well-formed rows around it are read with their fields.
    """
    padded = (
        b'25/08/2021 09:10, Chesterfield, Fred Example, "Regular Latte - 2.15, '
        b'Large Latte - 2.45", 4.6, CASH, \n'
    )
    data = fixture_bytes("standard.csv") + padded
    raw = read_export(data, "x.csv")
    assert raw.rows["line_no"].to_list() == [1, 2, 3, 4, 5, 6]
    assert raw.rows["customer_name"].head(5).to_list() == [
        "Ada Fakename",
        "Ben Madeup",
        "Cleo Notreal",
        "Dev Pretend",
        "Eve Imaginary",
    ]


people = st.tuples(
    st.from_regex(r"[A-Z][a-z]{2,8} [A-Z][a-z]{2,10}", fullmatch=True),
    st.from_regex(r"[1-9][0-9]{15}", fullmatch=True),
)


@settings(deadline=None, max_examples=60)
@given(st.lists(people, min_size=1, max_size=4))
def test_rejection_messages_never_quote_rows(customers: list[tuple[str, str]]) -> None:
    """Whatever names and cards a refused file holds, the message repeats none of them."""
    unrecognised = "".join(f"{i},{name},{card},120\n" for i, (name, card) in enumerate(customers))
    month_first = "".join(
        f"12/2{i}/2024 09:00,Leeds,{name},Large Latte - 2.45,2.45,CARD,{card}\n"
        for i, (name, card) in enumerate(customers)
    )
    latin1 = "".join(
        f"18/12/2024 09:00,Belfasté,{name}é,Large Latte - 2.45,2.45,CARD,{card}\n"
        for name, card in customers
    )
    files = [unrecognised.encode(), month_first.encode(), latin1.encode("latin-1")]
    for data in files:
        with pytest.raises(FileRejected) as caught:
            validate_rows(read_export(data, "x.csv"))
        said = str(caught.value)
        for name, card in customers:
            assert name not in said
            assert card not in said


def test_reading_files_together_equals_reading_them_one_by_one() -> None:
    """The batched reader (one Polars call) and the per-file reader agree exactly,
    including when one damaged file sends the whole batch down the careful path."""
    from polars.testing import assert_frame_equal

    from brewline.extract.layouts import read_exports

    good = b"25/08/2021 09:00,Leeds,A B,Large Latte - 2.45,2.45,CASH,\n"
    files = [
        (good * 3, "a.csv"),
        (b"\xef\xbb\xbfDate,Branch\r\n" + good.replace(b"\n", b"\r\n") * 2, "b.csv"),
        (good + b"\n" + good, "c.csv"),
        (b"", "empty.csv"),
        (good + good.rstrip(b"\n"), "no-final-newline.csv"),
        (good * 2, "after-it.csv"),
    ]
    damaged = [*files, (good + b'x,"unterminated\n' + good, "d.csv")]
    # Small files are read as one buffer: a quote left open at the end of one file
    # must not take the next file's lines with it.
    open_at_end = [(good + b'x,"open', "e.csv"), *files]
    for batch in (files, damaged, open_at_end):
        together = read_exports(batch)
        for (data, name), result in zip(batch, together, strict=True):
            (alone,) = read_exports([(data, name)])
            if isinstance(alone, FileRejected):
                assert isinstance(result, FileRejected)
                assert result.reason == alone.reason
                continue
            assert not isinstance(result, FileRejected)
            assert result.layout == alone.layout
            assert result.skipped_lines == alone.skipped_lines
            assert_frame_equal(result.rows, alone.rows)


@pytest.mark.parametrize("stacked", [6, 7, 250])
def test_any_number_of_header_lines_is_skipped_and_the_data_decides(stacked: int) -> None:
    """Six disagreeing, misspelled header lines (seen in real exports), or a very tall stack."""
    headers = [
        "timestamp,branch,custumer,basket,total,payment,card",
        "Column1,Column2,Column3,Column4,Column5,Column6,Column7",
        "date,shop,name,items,amount,method,card number",
        "Prepared for head office,,,,,,",
        "TIMESTAMP,BRANCH,CUSTOMER_NAME,BASKET,TOTAL,PAYMENT_METHOD,CARD_NUMBER",
        "when,where,who,what,how much,how,which card",
    ]
    top = (headers * (stacked // len(headers) + 1))[:stacked]
    row = "25/08/2021 09:00,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,"
    raw = read_export(("\n".join([*top, row, row]) + "\n").encode(), "x.csv")
    assert raw.layout.name == "standard"
    assert raw.skipped_lines == stacked
    assert raw.rows["line_no"].to_list() == [stacked + 1, stacked + 2]
