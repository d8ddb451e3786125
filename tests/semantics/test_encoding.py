"""Exports saved by Excel as plain "CSV" (Windows-1252), on a real branch export.

Bytes that are not UTF-8 in the columns Brewline drops (customer name, card)
cost nothing: the file loads whole. In a kept column (branch, basket) they
refuse the file with one line saying to re-export it as UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from tests.conftest import PII_KEY
from tests.semantics._util import rows, write
from tests.semantics.test_privacy_robustness import text_values

from brewline.config import Settings
from brewline.pipeline import run

EXPORT = "coffeetl-2024-12-18/leeds_18-12-2024_09-00-00.csv"
ACCENTED = ("José Müller", "Zoë Brontë")


def real_rows(shared_exports: Path) -> list[list[str]]:
    text = (shared_exports / EXPORT).read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text)))


def as_cp1252(records: list[list[str]]) -> bytes:
    """The export as Excel's plain "CSV" writes it: Windows-1252, CRLF."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    data = buffer.getvalue().encode("cp1252")
    assert data.decode("utf-8", errors="replace") != data.decode("cp1252")  # really not UTF-8
    return data


def with_accented_names(records: list[list[str]]) -> list[list[str]]:
    """Every tenth sale's customer renamed to an accented name."""
    return [
        [*r[:2], ACCENTED[i // 10 % 2] if i % 10 == 0 else r[2], *r[3:]]
        for i, r in enumerate(records)
    ]


def test_accented_customer_names_in_windows_1252_load_every_row(
    shared_exports: Path,
    warehouse_url: str,
    landing: Path,
    make_settings: Callable[..., Settings],
) -> None:
    records = with_accented_names(real_rows(shared_exports))
    write(landing, "leeds_18-12-2024_09-00-00.csv", as_cp1252(records), 1)
    report = run(make_settings(warehouse=warehouse_url, pii_key=PII_KEY))
    (file,) = report.files
    assert (file.state, file.reason) == ("loaded", None)
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (len(records), len(records), 0)
    assert file.rows_read == file.rows_loaded + file.rows_rejected
    total = sum(Decimal(r[4]) for r in records)
    assert rows(warehouse_url, "SELECT count(*), sum(total) FROM fact_sale") == [
        (len(records), total)
    ]
    assert rows(warehouse_url, "SELECT branch_name FROM dim_branch") == [("Leeds",)]
    stored = text_values(warehouse_url)
    for secret in ("José", "Müller", "Zoë", "Brontë", "Jos", "\ufffd", *{r[2] for r in records}):
        assert not [v for v in stored if secret in v], secret


@pytest.mark.parametrize(
    "case", [(1, "Leeds Crème"), (3, "Regular Café filtre - 1.50")], ids=["branch", "basket"]
)
def test_windows_1252_in_a_kept_column_refuses_the_file_with_one_line(
    shared_exports: Path,
    warehouse_url: str,
    landing: Path,
    make_settings: Callable[..., Settings],
    case: tuple[int, str],
) -> None:
    column, accented = case  # the column (branch or basket) and its accented value
    records = with_accented_names(real_rows(shared_exports))
    basket = records[5][3].split(", ")
    records[5][column] = accented if column == 1 else ", ".join([accented, *basket[1:]])
    if column == 3:  # the item keeps the price it replaces, so only the encoding is wrong
        records[5][4] = str(sum(Decimal(i.rsplit(" - ", 1)[1]) for i in records[5][3].split(", ")))
    write(landing, "leeds_18-12-2024_09-00-00.csv", as_cp1252(records), 1)
    report = run(make_settings(warehouse=warehouse_url, pii_key=PII_KEY))
    (file,) = report.files
    assert (file.state, file.reason) == ("rejected", "not_utf8")
    assert file.message is not None
    assert file.message.startswith("not UTF-8: re-export as UTF-8 (line 6:")
    assert "\n" not in file.message
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (len(records), 0, len(records))
    assert rows(warehouse_url, "SELECT count(*) FROM fact_sale") == [(0,)]
    stored = text_values(warehouse_url)
    for secret in ("José", "Müller", "Zoë", *{r[2] for r in records}):
        assert secret not in file.message
        assert not [v for v in stored if secret in v], secret
