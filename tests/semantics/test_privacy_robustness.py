"""Loading semantics: privacy on odd inputs, and robustness to weird but plausible files."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import PII_KEY
from tests.semantics._util import CARD, NAME, line, report_json, rows, text_values, write

from brewline.config import Settings
from brewline.pipeline import run
from brewline.transform.pii import customer_keys

# -- defects ------------------------------------------------------------------------------------


def test_card_number_in_the_branch_column_never_reaches_the_warehouse(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """A shifted/mis-keyed row with the card where the branch goes passes every row rule (the
    branch is only checked for non-empty) and the card number lands in dim_branch."""
    write(landing, "leeds.csv", line() + line(ts="25/08/2021 09:01", branch=CARD, card=""), 1)
    run(make_settings(warehouse=warehouse_url, pii_key=PII_KEY))
    assert not [v for v in text_values(warehouse_url) if CARD in v]


def test_card_written_with_spaces_gets_the_same_customer_key(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """'5494 1737 7265 2516' is the same card as '5494173772652516' (as printed on it). Today the
    sale loads with no customer key, so a returning customer silently looks anonymous."""
    spaced = " ".join(CARD[i : i + 4] for i in range(0, 16, 4))
    write(landing, "leeds.csv", line() + line(ts="25/08/2021 09:01", card=spaced), 1)
    settings = make_settings(pii_key=PII_KEY)
    run(settings)
    keys = rows(settings.warehouse, "SELECT DISTINCT customer_key FROM fact_sale")
    expected = customer_keys(pl.Series([CARD]), PII_KEY.encode())[0]
    assert keys == [(expected,)]


def test_a_nul_byte_in_one_field_does_not_stop_the_run(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """DuckDB stores 'Le\\x00eds' in dim_branch; PostgreSQL refuses the COPY, the whole batch
    rolls back and every later run fails the same way. Expected: the row is rejected (or the
    byte handled) the same on both engines and the other file of the batch loads."""
    write(landing, "york.csv", line(branch="York"), 1)
    write(landing, "leeds.csv", line(branch="Le\x00eds", ts="26/08/2021 09:00"), 2)
    report = run(make_settings(warehouse=warehouse_url))
    assert report.error is None
    assert ("York",) in rows(warehouse_url, "SELECT branch_name FROM dim_branch")
    assert not [v for v in text_values(warehouse_url) if "\x00" in v]


def test_a_long_file_name_with_a_rejected_row_does_not_crash_the_run(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """A 240-byte name is valid on disk; the quarantine file adds '.<sha12>.rejected.csv' and
    exceeds NAME_MAX: an OSError escapes run() (no report, etl_run left 'running', stuck)."""
    name = "leeds_" + "x" * 230 + ".csv"
    write(landing, name, line() + line(ts="25/08/2021 09:01", total="9.99"), 1)
    report = run(make_settings())
    assert [(f.state, f.rows_loaded, f.rows_rejected) for f in report.files] == [("loaded", 1, 1)]
    quarantine = report.files[0].quarantine
    assert quarantine is not None
    assert quarantine.exists()


# -- checked and correct ------------------------------------------------------------------------

ODD_PII_FILE = (
    f"Prepared by {NAME},for,Head Office,,,,\n"  # a header row holding a real name
    "timestamp,branch,customer,basket,total,payment,card\n"
    + line()
    + line(ts="25/08/2021 09:01", name=CARD, pay="CASH", card="")  # card in the name column
    + line(ts="25/08/2021 09:02", card="5.49E+15")  # Excel-destroyed card
    + line(ts="25/08/2021 09:03", total="9.99")  # rejected row: raw only in quarantine
    + f"{NAME},{CARD}\n"  # trailing garbage holding PII
)


def test_names_and_cards_in_odd_places_stay_out_of_warehouse_logs_and_report(
    warehouse_url: str,
    tmp_path: Path,
    landing: Path,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    write(landing, "leeds.csv", ODD_PII_FILE, 1)
    # Another day, so it does not replace leeds.csv's branch-day now that it loads.
    cp1252 = line(ts="26/08/2021 09:00", name="José Núñez").encode("cp1252")
    write(landing, "cp1252.csv", cp1252, 2)
    settings = make_settings(warehouse=warehouse_url, pii_key=PII_KEY)
    report = run(settings)
    assert [(f.state, f.reason) for f in report.files] == [
        ("loaded", None),
        ("loaded", None),  # not UTF-8 only in the name, which is dropped anyway
    ]
    assert (report.files[0].rows_loaded, report.files[0].rows_rejected) == (3, 2)
    outputs = [
        *text_values(warehouse_url),
        caplog.text,
        json.dumps(report.to_dict(), default=str),
        str(report.error),
    ]
    for secret in (NAME, "Copeland", CARD, "José", "Núñez"):
        assert not [o for o in outputs if secret in o], secret
    outside_quarantine = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and landing not in p.parents
        and settings.quarantine not in p.parents
        and p.suffix != ".duckdb"
        and ".wal" not in p.name
    ]
    for path in outside_quarantine:
        assert CARD.encode() not in path.read_bytes(), path
    quarantined = list(settings.quarantine.iterdir())
    assert len(quarantined) == 1
    assert CARD in quarantined[0].read_text()


def test_weird_files_are_rejected_whole_with_a_reason_and_odd_names_load(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    write(landing, "header only.csv", "timestamp,branch,customer,basket,total,payment,card\n", 1)
    write(landing, "tabs.csv", line().replace(",", "\t"), 2)
    write(landing, "2024/Leeds \u2013 café (1).csv", line(), 3)
    write(landing, "2025/Leeds \u2013 café (1).csv", line(ts="25/08/2022 09:00"), 4)
    write(
        landing,
        "crlf bom.csv",
        b"\xef\xbb\xbf" + line(branch="York").replace("\n", "\r\n").encode(),
        5,
    )
    settings = make_settings(quarantine=None)  # default: <landing>/_quarantine
    write(landing, "_quarantine/old.rejected.csv", line(branch="Bath"), 6)
    report = run(settings)
    assert {f.source_name: (f.state, f.reason) for f in report.files} == {
        "header only.csv": ("rejected", "unrecognised_layout"),
        "tabs.csv": ("rejected", "unrecognised_layout"),
        "2024/Leeds \u2013 café (1).csv": ("loaded", None),
        "2025/Leeds \u2013 café (1).csv": ("loaded", None),
        "crlf bom.csv": ("loaded", None),
    }
    assert {f.state for f in run(settings).files} == {"skipped"}


# -- issue 19: what reaches the dimensions ------------------------------------------------------

TYPED_CARD = "7273900877721127"


def test_a_card_or_a_customer_name_typed_into_a_basket_is_no_product(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """'Large 7273900877721127 - 2.60' made a product named after a card, and 'Regular Amy
    Kader - 1.00' one named after the file's customer; `brewline report` printed both."""
    typed = [
        line(ts="25/08/2021 09:01", basket=f"Large {TYPED_CARD} - 2.60", total="2.60"),
        line(
            ts="25/08/2021 09:02", name="Amy Kader", basket="Regular Amy Kader - 1.00", total="1.0"
        ),
        line(ts="25/08/2021 09:03", basket="Large Latte - 7273 9008 7772 1127 - 2.45"),
    ]
    write(landing, "leeds.csv", line() + "".join(typed), 1)
    report = run(make_settings(warehouse=warehouse_url))
    assert [(f.state, f.rows_loaded, f.rows_rejected) for f in report.files] == [("loaded", 1, 3)]
    reasons = rows(warehouse_url, "SELECT reason FROM etl_rejected_row ORDER BY line_no")
    assert reasons == [("personal_data_in_basket",)] * 3
    assert rows(warehouse_url, "SELECT product_name, variant FROM dim_product") == [("Latte", None)]
    printed = report_json(warehouse_url)
    for secret in (TYPED_CARD, "7273 9008", "Amy Kader"):
        assert secret not in printed


def test_dimensions_come_only_from_rows_that_load(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """A rejected row's basket, a file with no valid row and a several_branches file all added
    their products (and the last its dates) to the warehouse."""
    rejected = line(ts="25/08/2021 09:01", basket="Large Mocha - 2.45", total="9.99")
    write(landing, "leeds.csv", line() + rejected, 1)
    write(landing, "york.csv", line(ts="26/08/2021 09:00", branch="York", basket="Chai - 2.00"), 2)
    mixed = "".join(
        line(ts=f"27/08/2021 09:{m:02d}", branch=f"Till {m % 4}", basket="Cortado - 2.45")
        for m in range(8)
    )
    write(landing, "mixed.csv", mixed, 3)
    report = run(make_settings(warehouse=warehouse_url))
    assert {f.source_name: (f.state, f.reason) for f in report.files} == {
        "leeds.csv": ("loaded", None),
        "york.csv": ("rejected", "no_valid_rows"),
        "mixed.csv": ("rejected", "several_branches"),
    }
    assert rows(warehouse_url, "SELECT product_name FROM dim_product") == [("Latte",)]
    assert rows(warehouse_url, "SELECT branch_name FROM dim_branch") == [("Leeds",)]
    assert rows(warehouse_url, "SELECT date_key FROM dim_date") == [(20210825,)]


def test_a_swapped_one_customer_file_is_refused_unless_its_branch_is_known(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """Branch and customer swapped in a one-customer file named after neither: the customer's
    name became dim_branch.branch_name. A branch already loaded vouches for a file."""
    settings = make_settings(warehouse=warehouse_url)
    write(landing, "london_camden_25-08-2021_09-00-00.csv", line(branch="London Camden"), 1)
    assert [f.state for f in run(settings).files] == ["loaded"]
    swapped = line(ts="26/08/2021 09:00", branch="Amy Kader", name="London Camden")
    write(landing, "export.csv", swapped + swapped.replace("09:00", "09:01"), 2)
    write(landing, "till.csv", line(ts="27/08/2021 09:00", branch="London Camden"), 3)
    report = run(settings)
    outcome = {f.source_name: (f.state, f.reason) for f in report.files if f.state != "skipped"}
    assert outcome == {"export.csv": ("rejected", "unknown_branch"), "till.csv": ("loaded", None)}
    assert rows(warehouse_url, "SELECT branch_name FROM dim_branch") == [("London Camden",)]
    message = next(f.message for f in report.files if f.source_name == "export.csv") or ""
    assert "Amy" not in message
    assert "<branch>_<dd-mm-yyyy>" in message
