"""Quarantine: rejected lines are kept verbatim beside the landing area, written atomically."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import polars as pl

from brewline.extract import read_export
from brewline.validate.quarantine import quarantine_path, write_quarantine
from brewline.validate.rules import validate_exports, validate_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "layouts"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
BOM = b"\xef\xbb\xbf"


def read_quarantine(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def physical_lines(data: bytes) -> list[str]:
    return [line.removesuffix("\r") for line in data.removeprefix(BOM).decode().split("\n")]


def test_quarantine_holds_line_reason_and_the_exact_raw_line(tmp_path: Path) -> None:
    data = (FIXTURES / "bad_rows.csv").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    checked = validate_rows(read_export(data, "bad_rows.csv"))
    path = write_quarantine(tmp_path / "q", "leeds/bad_rows.csv", sha, data, checked.rejects)
    assert path == quarantine_path(tmp_path / "q", "leeds/bad_rows.csv", sha)
    assert path is not None
    assert path.parent == tmp_path / "q"  # the source's folders do not become folders here
    assert sha[:12] in path.name
    lines = physical_lines(data)
    expected = [
        [line, reason, lines[int(line) - 1]]
        for line, reason in EXPECTED["bad_rows.csv"]["rejects"].items()
    ]
    assert read_quarantine(path) == [["line_no", "reason", "raw_line"], *expected]
    # the damaged lines survive CSV quoting byte for byte
    assert expected[0][2] == '05/12/2024 09:01,Leeds,Lou Invented,"Large Latte - 2.45,2.45,CASH,'


def test_quarantine_of_a_crlf_bom_file_has_clean_lines(tmp_path: Path) -> None:
    data = BOM + (
        b"31/02/2024 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CASH,\r\n"
        b"05/12/2024 09:01,Leeds,Bob Example,Large Latte - 2.45,2.45,CASH,\r\n"
        b"05/12/2024 09:02,Leeds,Cat Example,Large Latte - 2.45,9.99,CASH,\r\n"
    )
    checked = validate_rows(read_export(data, "x.csv"))
    path = write_quarantine(tmp_path, "x.csv", "0" * 64, data, checked.rejects)
    assert path is not None
    assert read_quarantine(path) == [
        ["line_no", "reason", "raw_line"],
        ["1", "bad_timestamp", "31/02/2024 09:00,Leeds,Ann Example,Large Latte - 2.45,2.45,CASH,"],
        ["3", "total_mismatch", "05/12/2024 09:02,Leeds,Cat Example,Large Latte - 2.45,9.99,CASH,"],
    ]
    assert b"\r" not in path.read_bytes()
    assert BOM not in path.read_bytes()


def test_quarantine_from_a_batch_takes_one_files_rejects(tmp_path: Path) -> None:
    names = ["standard.csv", "bad_rows.csv"]
    datas = [(FIXTURES / name).read_bytes() for name in names]
    checked = validate_exports([read_export(d, n) for d, n in zip(datas, names, strict=True)])
    mine = checked.rejects.filter(pl.col("file_index") == 1)
    path = write_quarantine(tmp_path, names[1], "1" * 64, datas[1], mine)
    assert path is not None
    assert len(read_quarantine(path)) == 1 + len(EXPECTED["bad_rows.csv"]["rejects"])


def test_nothing_to_quarantine_writes_nothing(tmp_path: Path) -> None:
    data = (FIXTURES / "standard.csv").read_bytes()
    checked = validate_rows(read_export(data, "standard.csv"))
    folder = tmp_path / "q"
    assert write_quarantine(folder, "standard.csv", "2" * 64, data, checked.rejects) is None
    assert not folder.exists()


def test_quarantine_write_replaces_atomically(tmp_path: Path) -> None:
    """A new version appears by rename (new inode), never by rewriting the old file in place,
    and no temporary file is left behind."""
    data = (FIXTURES / "bad_rows.csv").read_bytes()
    checked = validate_rows(read_export(data, "bad_rows.csv"))
    target = quarantine_path(tmp_path, "bad_rows.csv", "3" * 64)
    target.write_text("stale, half-written content\n")
    before = target.stat().st_ino
    holder = target.open("rb")  # a reader that opened the old version keeps seeing all of it
    try:
        path = write_quarantine(tmp_path, "bad_rows.csv", "3" * 64, data, checked.rejects)
        assert path == target
        assert target.stat().st_ino != before
        assert holder.read() == b"stale, half-written content\n"
    finally:
        holder.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert len(read_quarantine(target)) == 1 + checked.rejects.height


def test_two_versions_of_one_file_keep_separate_quarantines(tmp_path: Path) -> None:
    data = (FIXTURES / "bad_rows.csv").read_bytes()
    checked = validate_rows(read_export(data, "bad_rows.csv"))
    first = write_quarantine(tmp_path, "bad_rows.csv", "a" * 64, data, checked.rejects)
    second = write_quarantine(tmp_path, "bad_rows.csv", "b" * 64, data, checked.rejects.head(1))
    assert first is not None
    assert second is not None
    assert first != second
    assert len(read_quarantine(first)) == 1 + checked.rejects.height
    assert len(read_quarantine(second)) == 2
