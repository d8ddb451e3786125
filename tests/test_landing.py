"""What a landing area holds and how each entry is accounted for (docs/landing.md):
damaged first lines, symlinks, Excel-type files, ignored files, empty areas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from brewline.config import Settings
from brewline.pipeline import run

GOOD = "09/05/2023 09:00,Leeds,Fay Fiction,Large Latte - 2.45,2.45,CASH,\n"
DAMAGED = [
    # unreadable time and total, and a payment that is no payment word either
    '08-25-2021 9am,Leeds,Amy Kader,"Large Latte - 2.45",£2.45,Card payment,5494000000000000\n',
    # Excel's "column too narrow" hashes for the time, an error for the total, no payment
    "##########,Leeds,Amy Kader,Large Latte - 2.45,#VALUE!,,\n",
    "99/99/2021 25:61,Leeds,Amy Kader,\"Large Latte - 2.45\",abc,CARD,5494000000000000\n",
]


@pytest.mark.parametrize("damaged", DAMAGED)
def test_a_damaged_first_sale_is_a_rejected_row_not_a_header(
    damaged: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """The same damaged line first or second in a file: read, rejected for the same reason,
    quarantined; only a line that looks like column names is skipped as a header."""
    (landing / "first.csv").write_text(damaged + GOOD)
    (landing / "second.csv").write_text(GOOD.replace("09:00", "10:00") + damaged)
    report = run(make_settings(), alert=False)
    files = {f.source_name: f for f in report.files}
    assert [(f.rows_read, f.rows_loaded, f.rows_rejected) for f in files.values()] == [
        (2, 1, 1),
        (2, 1, 1),
    ]
    with duckdb.connect(make_settings().warehouse, read_only=True) as con:
        reasons = con.execute(
            "SELECT f.source_name, r.line_no, r.reason FROM etl_rejected_row r "
            "JOIN etl_file f USING (file_id) ORDER BY 1"
        ).fetchall()
    assert [(name, line) for name, line, _ in reasons] == [("first.csv", 1), ("second.csv", 2)]
    assert reasons[0][2] == reasons[1][2]
    for f in files.values():
        assert f.quarantine is not None and Path(f.quarantine).exists()
        assert "Amy Kader" in Path(f.quarantine).read_text()
