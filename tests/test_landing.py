"""What a landing area holds and how each entry is accounted for (docs/landing.md):
damaged first lines, symlinks, Excel-type files, ignored files, empty areas."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import boto3
import duckdb
import pytest
from tests.motoserver import MotoServer

from brewline.config import Settings
from brewline.errors import FileRejected
from brewline.extract import read_export
from brewline.pipeline import run

GOOD = "09/05/2023 09:00,Leeds,Fay Fiction,Large Latte - 2.45,2.45,CASH,\n"
DAMAGED = [
    # unreadable time and total, and a payment that is no payment word either
    '08-25-2021 9am,Leeds,Amy Kader,"Large Latte - 2.45",£2.45,Card payment,5494000000000000\n',
    # Excel's "column too narrow" hashes for the time, an error for the total, no payment
    "##########,Leeds,Amy Kader,Large Latte - 2.45,#VALUE!,,\n",
    '99/99/2021 25:61,Leeds,Amy Kader,"Large Latte - 2.45",abc,CARD,5494000000000000\n',
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
        assert f.quarantine is not None
        assert Path(f.quarantine).exists()
        assert "Amy Kader" in Path(f.quarantine).read_text()


def brewline_json(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> tuple[dict, str, int]:
    """``python -m brewline ARGS --json`` in a real subprocess: (JSON report, stderr, exit code)."""
    done = subprocess.run(
        [sys.executable, "-m", "brewline", *args, "--json", "--no-alert"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout), done.stderr, done.returncode


def test_symlink_loops_and_dangling_links_fail_alone_and_the_other_files_load(
    tmp_path: Path, landing: Path
) -> None:
    (landing / "good.csv").write_text(GOOD)
    (landing / "deep").mkdir()
    (landing / "deep" / "loop a.csv").symlink_to("loop b.csv")
    (landing / "deep" / "loop b.csv").symlink_to("loop a.csv")
    (landing / "self.csv").symlink_to("self.csv")
    (landing / "gone.csv").symlink_to("/nowhere/leeds.csv")
    (landing / "linked.csv").symlink_to(landing / "deep")  # a folder: not an export
    (tmp_path / "outside.csv").write_text(GOOD.replace("Leeds", "York"))
    (landing / "deep" / "alias.csv").symlink_to(tmp_path / "outside.csv")  # followed
    report, _, code = brewline_json(
        "run", str(landing), "--warehouse", str(tmp_path / "w.duckdb"), cwd=tmp_path
    )
    outcomes = {f["source_name"]: (f["state"], f["reason"]) for f in report["files"]}
    assert outcomes == {
        "good.csv": ("loaded", None),
        "deep/alias.csv": ("loaded", None),
        "deep/loop a.csv": ("failed", "symlink_loop"),
        "deep/loop b.csv": ("failed", "symlink_loop"),
        "self.csv": ("failed", "symlink_loop"),
        "gone.csv": ("failed", "dangling_symlink"),
    }
    messages = {f["source_name"]: f["message"] for f in report["files"]}
    assert messages["gone.csv"].startswith("dangling symlink to /nowhere/leeds.csv")
    assert messages["self.csv"].startswith("symlink loop")
    assert (code, report["files_failed"], report["rows_loaded"]) == (1, 4, 2)


def without_aws_credentials(tmp_path: Path) -> dict[str, str]:
    """This environment less every AWS credential source; S3 calls would go to a closed
    local port (nothing here may reach AWS), and no instance metadata is asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    return {
        **env,
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }


@pytest.mark.parametrize(
    "command",
    [
        ["run", "s3://cafe-landing/landing/"],
        ["watch", "s3://cafe-landing/landing/"],
        ["watch", "s3://cafe-landing/landing/", "--queue", "http://127.0.0.1:9/1/q"],
    ],
    ids=["run", "watch-poll", "watch-queue"],
)
def test_s3_without_aws_credentials_is_one_line_and_exit_1(
    command: list[str], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "brewline", *command, "--no-alert"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**without_aws_credentials(tmp_path), "BREWLINE_WAREHOUSE": str(tmp_path / "w.db")},
        check=False,
        timeout=60,
    )
    errors = [line for line in done.stderr.splitlines() if not line.startswith("Watching ")]
    assert done.returncode == 1, done.stderr
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("brewline: error: no AWS credentials found for ")
    assert "AWS_ACCESS_KEY_ID" in errors[0]


def xlsx_bytes() -> bytes:
    """A minimal real .xlsx: a zip with the parts Excel writes (one sheet, one cell)."""
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxml'
        'formats.org/package/2006/content-types"/>',
        "_rels/.rels": "<Relationships/>",
        "xl/workbook.xml": "<workbook><sheets><sheet name='Sheet1' sheetId='1'/></sheets>"
        "</workbook>",
        "xl/worksheets/sheet1.xml": "<worksheet><sheetData><row r='1'><c r='A1' t='inlineStr'>"
        "<is><t>09/05/2023 09:00</t></is></c></row></sheetData></worksheet>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in parts.items():
            book.writestr(name, text)
    return out.getvalue()


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"Workbook\x00" * 8
"""The header block of an .xls (OLE2 compound file): its magic, then NUL-filled fields."""


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (xlsx_bytes(), "is an Excel workbook (.xlsx), not a CSV"),
        (OLE2, "is an Excel workbook (.xls), not a CSV"),
        (GOOD.replace(",", ";").encode() * 3, "separated by ';', not ','"),
        (GOOD.replace(",", "\t").encode() * 3, "separated by tab, not ','"),
    ],
    ids=["xlsx", "xls", "semicolons", "tabs"],
)
def test_excel_type_files_are_refused_saying_what_they_are(data: bytes, said: str) -> None:
    with pytest.raises(FileRejected) as caught:
        read_export(data, "leeds.csv")
    assert said in caught.value.message
    assert "Fay Fiction" not in str(caught.value)


def test_files_of_other_types_are_counted_and_named_in_the_report(
    tmp_path: Path, landing: Path
) -> None:
    (landing / "leeds.csv").write_text(GOOD)
    (landing / "sub").mkdir()
    for name in ("report.pdf", "sub/sales.xlsx", ".DS_Store", "leeds.csv.bak"):
        (landing / name).write_bytes(b"x")
    (landing / "_quarantine").mkdir()
    (landing / "_quarantine" / "notes.txt").write_text("Brewline's own: not counted")
    warehouse = ["--warehouse", str(tmp_path / "w.duckdb")]
    report, stderr, code = brewline_json("run", str(landing), *warehouse, cwd=tmp_path)
    assert (code, report["files_ignored"], report["no_exports"]) == (0, 3, False)
    assert report["ignored"] == ["leeds.csv.bak", "report.pdf", "sub/sales.xlsx"]
    assert stderr == ""
    (landing / "york.csv").write_text(GOOD.replace("Leeds", "York"))
    done = subprocess.run(
        [sys.executable, "-m", "brewline", "run", str(landing), *warehouse, "--no-alert"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())  # the line wraps at the terminal's width
    assert "3 files ignored (only CSV files are loaded): leeds.csv.bak, report.pdf, " in said
    assert "sub/sales.xlsx." in said


def test_a_landing_folder_without_one_export_is_a_warning_scripts_can_see(
    tmp_path: Path, landing: Path
) -> None:
    warehouse = ["--warehouse", str(tmp_path / "w.duckdb")]
    report, stderr, code = brewline_json("run", str(landing), *warehouse, cwd=tmp_path)
    assert (code, report["no_exports"], report["files_ignored"]) == (0, True, 0)
    assert stderr == f"brewline: warning: no export to process in {landing}\n"
    (landing / "sales.xlsx").write_bytes(xlsx_bytes())
    report, stderr, code = brewline_json("run", str(landing), *warehouse, cwd=tmp_path)
    assert (code, report["no_exports"], report["ignored"]) == (0, True, ["sales.xlsx"])
    assert stderr == (
        f"brewline: warning: no export to process in {landing} "
        "(1 file ignored (only CSV files are loaded): sales.xlsx)\n"
    )


def test_an_s3_prefix_without_one_export_is_a_warning_and_other_objects_are_named(
    aws: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    warehouse = ["--warehouse", str(tmp_path / "w.duckdb")]
    where = f"s3://{s3_bucket}/in/"
    report, stderr, code = brewline_json("run", where, *warehouse, cwd=tmp_path)
    assert (code, report["no_exports"]) == (0, True)
    assert stderr == f"brewline: warning: no export to process in {where}\n"
    s3.put_object(Bucket=s3_bucket, Key="in/leeds.xlsx", Body=b"x")
    s3.put_object(Bucket=s3_bucket, Key="in/york.csv", Body=GOOD.encode())
    s3.put_object(Bucket=s3_bucket, Key="elsewhere/notes.txt", Body=b"x")
    report, stderr, code = brewline_json("run", where, *warehouse, cwd=tmp_path)
    assert (code, report["no_exports"], report["ignored"]) == (
        0,
        False,
        [f"{s3_bucket}/in/leeds.xlsx"],
    )
