"""The S3 source against a real HTTP endpoint (moto in server mode): the same ledger
semantics as a folder, quarantine under the bucket, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3
import duckdb
import pytest
from tests.motoserver import MotoServer

from brewline.config import Settings
from brewline.errors import ConfigError
from brewline.pipeline import run
from brewline.sources import open_source
from brewline.sources.s3 import S3Prefix, S3Source

BAD_ROW = b"not,a,valid,sale,row,at,all\n"


def upload(bucket: str, key: str, data: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def keys(bucket: str, prefix: str = "") -> list[str]:
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    )
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def export_files(shared_exports: Path) -> list[Path]:
    return sorted((shared_exports / "coffeetl-2024-12-18").glob("*.csv"))[:4]


def test_deliveries_are_the_csv_objects_under_the_prefix_named_bucket_slash_key(
    s3_bucket: str,
) -> None:
    for key in (
        "landing/leeds.csv",
        "landing/york/york.CSV",
        "landing/notes.txt",
        "landing/.hidden.csv",
        "landing/_quarantine/x.csv",
        "landing/old.rejected.csv",
        "elsewhere/hull.csv",
        "_quarantine/leeds.csv.abc.rejected.csv",
    ):
        upload(s3_bucket, key, b"x")
    source = open_source([f"s3://{s3_bucket}/landing"], quarantine=None)
    assert isinstance(source, S3Source)
    found = source.deliveries()
    assert sorted(d.name for d in found) == [
        f"{s3_bucket}/landing/leeds.csv",
        f"{s3_bucket}/landing/york/york.CSV",
    ]
    assert [source.read(d) for d in found] == [b"x", b"x"]
    assert str(source.quarantine) == f"s3://{s3_bucket}/_quarantine/"
    # An event's keys: only those, and never the quarantine or another prefix.
    named = open_source(
        [f"s3://{s3_bucket}/landing/"],
        quarantine=None,
        only=["landing/leeds.csv", "_quarantine/leeds.csv.abc.rejected.csv", "landing/gone.csv"],
    )
    assert [d.name for d in named.deliveries()] == [f"{s3_bucket}/landing/leeds.csv"]


def test_run_from_s3_loads_like_a_folder_skips_reruns_and_replaces_corrections(
    s3_bucket: str, shared_exports: Path, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    files = export_files(shared_exports)
    for path in files:
        upload(s3_bucket, f"landing/{path.name}", path.read_bytes())
    upload(
        s3_bucket, "landing/broken.csv", files[0].read_bytes().replace(b"\n", b"\n" + BAD_ROW, 1)
    )
    settings = make_settings(landing=f"s3://{s3_bucket}/landing/", quarantine=None)

    first = run(settings)
    assert first.error is None
    states = {f.source_name: f.state for f in first.files}
    assert all(name.startswith(f"{s3_bucket}/landing/") for name in states)
    assert sum(f.rows_read for f in first.files) == sum(
        f.rows_loaded + f.rows_rejected for f in first.files
    )
    # broken.csv duplicates files[0]'s branch-day: it arrived later, so it replaced it,
    # and its bad line went to the quarantine under the bucket.
    quarantined = keys(s3_bucket, "_quarantine/")
    assert len(quarantined) == 1
    assert quarantined[0].endswith(".rejected.csv")
    body = boto3.client("s3").get_object(Bucket=s3_bucket, Key=quarantined[0])["Body"].read()
    assert b"not,a,valid,sale" in body

    again = run(settings)
    assert {f.reason for f in again.files} == {"unchanged"}

    upload(s3_bucket, f"landing/{files[1].name}", files[1].read_bytes() + b"\n")
    corrected = run(settings)
    changed = [f for f in corrected.files if f.reason != "unchanged"]
    assert [(f.source_name, f.replaced) for f in changed] == [
        (f"{s3_bucket}/landing/{files[1].name}", (f"{s3_bucket}/landing/{files[1].name}",))
    ]
    with duckdb.connect(settings.warehouse, read_only=True) as con:
        names = con.execute("SELECT DISTINCT source_name FROM etl_file").fetchall()
    assert all(n.startswith(f"{s3_bucket}/") for (n,) in names)


def test_brewline_run_s3_prints_a_report_and_bad_locations_are_one_clear_line(
    aws: MotoServer, s3_bucket: str, shared_exports: Path, tmp_path: Path
) -> None:
    path = export_files(shared_exports)[0]
    upload(s3_bucket, f"in/{path.name}", path.read_bytes())
    brewline = [sys.executable, "-m", "brewline"]
    warehouse = ["--warehouse", str(tmp_path / "w.duckdb")]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*brewline, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    done = cli("run", f"s3://{s3_bucket}/in/", *warehouse, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [f["state"] for f in report["files"]] == ["loaded"]

    missing = cli("run", "s3://no-such-bucket-here/in/", *warehouse)
    assert missing.returncode == 1
    assert missing.stderr == (
        "brewline: error: cannot list s3://no-such-bucket-here/in/: no such bucket or object\n"
    )
    assert "Traceback" not in missing.stderr + missing.stdout

    malformed = cli("run", "s3://Not_A_Bucket/", *warehouse)
    assert malformed.returncode == 2
    assert "not an S3 location" in malformed.stderr

    mixed = cli("run", f"s3://{s3_bucket}/in/", str(tmp_path), *warehouse)
    assert mixed.returncode == 2
    assert "one s3:// location" in mixed.stderr

    elsewhere = cli("run", "gs://bucket/x/", *warehouse)
    assert elsewhere.returncode == 2
    assert "s3://" in elsewhere.stderr


def test_an_unreachable_endpoint_fails_within_the_retry_budget_with_one_line(
    aws: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    env = {**aws.env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens on port 9
    done = subprocess.run(
        [sys.executable, "-m", "brewline", "run", f"s3://{s3_bucket}/", "-w", str(tmp_path / "w")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, **env},
    )
    assert done.returncode == 1
    assert f"cannot list s3://{s3_bucket}/" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


def test_s3_prefix_parsing() -> None:
    assert S3Prefix.parse("s3://b-1.x/") == S3Prefix("b-1.x", "")
    assert S3Prefix.parse("s3://bucket/a/b") == S3Prefix("bucket", "a/b/")
    with pytest.raises(ConfigError, match="not an S3 location"):
        S3Prefix.parse("s3:///x")
    with pytest.raises(ConfigError, match="quarantine in S3"):
        open_source(["s3://bucket/x/"], quarantine=Path("local"))
