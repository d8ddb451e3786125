"""Defects found under attack (issue 8): each bad delivery or fault ends in one clear outcome,
and one bad delivery never stops the others."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import copy_exports
from tests.semantics._util import line, rows, write

from brewline.config import Settings
from brewline.pipeline import run

TWO_SALES = line() + line(ts="25/08/2021 09:05")


def test_a_file_name_that_is_not_utf8_loads_under_a_stable_escaped_name(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """It crashed every run (UnicodeEncodeError in key hashing), so nothing else ever loaded."""
    odd = os.fsencode(landing) + b"/caf\xe9_25-08-2021_09-00-00.csv"
    with open(odd, "wb") as handle:
        handle.write(TWO_SALES.encode())
    write(landing, "leeds.csv", line(ts="26/08/2021 09:00"), 2)
    settings = make_settings()
    first = run(settings)
    assert sorted((f.source_name, f.state) for f in first.files) == [
        ("caf\\xe9_25-08-2021_09-00-00.csv", "loaded"),
        ("leeds.csv", "loaded"),
    ]
    assert first.exit_code == 0
    again = run(settings)
    assert {f.state for f in again.files} == {"skipped"}


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A 1.5 MB file system: the warehouse fills it mid-run (real ENOSPC, not a mock)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = Path(tempfile.mkdtemp(prefix="brewline-full-"))
    mounting = ["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)]
    done = subprocess.run(mounting, check=False, capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


def test_a_full_disk_at_commit_is_one_clear_error_and_exit_1(
    tiny_disk: Path, shared_exports: Path, tmp_path: Path
) -> None:
    warehouse = tiny_disk / "w.duckdb"
    args = ["run", str(shared_exports), "-w", str(warehouse), "--quarantine", str(tmp_path / "q")]
    env = {**os.environ, "BREWLINE_BATCH_FILES": "4"}
    done = subprocess.run(
        [sys.executable, "-m", "brewline", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert f"disk full writing {warehouse}" in done.stderr
    assert "free space and run again" in done.stderr
    assert "retrying" not in done.stderr  # terminal at once: waiting frees no space
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    # With room again, the next run marks the dead run and completes the job.
    moved = tmp_path / "w.duckdb"
    shutil.copy(warehouse, moved)
    if (wal := tiny_disk / "w.duckdb.wal").exists():
        shutil.copy(wal, tmp_path / "w.duckdb.wal")
    settings = Settings(landing=shared_exports, warehouse=str(moved), quarantine=tmp_path / "q")
    report = run(settings)
    assert report.exit_code == 0
    assert rows(str(moved), "SELECT count(*) FROM fact_sale") == [(10163,)]
    statuses = rows(str(moved), "SELECT status FROM etl_run ORDER BY started_at")
    assert statuses[-1] == ("succeeded",)
    assert ("running",) not in statuses


def _file_size_limit(limit: int) -> Callable[[], None]:
    """A child whose files cannot grow past ``limit`` bytes: writes fail with EFBIG, the way a
    full disk fails with ENOSPC, without root (SIGXFSZ ignored, or it would kill the child)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_file_size_limit_stops_the_run_at_once_in_one_line(
    shared_exports: Path, tmp_path: Path
) -> None:
    """Such errors were retried like a lost connection; waiting cannot cure them."""
    warehouse = tmp_path / "w.duckdb"
    args = ["run", str(shared_exports), "-w", str(warehouse), "--quarantine", str(tmp_path / "q")]
    env = {**os.environ, "BREWLINE_BATCH_FILES": "4", "BREWLINE_RETRY_SECONDS": "600"}
    done = subprocess.run(
        [sys.executable, "-m", "brewline", *args, "--no-alert"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_file_size_limit(400_000),
        timeout=300,  # with the retry budget above, a retried error would hang here
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "retrying" not in done.stderr
    [stopped] = done.stderr.strip().splitlines()
    assert f"file size limit reached writing {warehouse}" in stopped
    assert "Stopped early:" in " ".join(done.stdout.split())


UNREADABLE = """
import sys
from pathlib import Path
from brewline.config import Settings
from brewline.pipeline import run
landing, warehouse = sys.argv[1:3]
report = run(Settings(landing=Path(landing), warehouse=warehouse))
for f in report.files:
    print(f.source_name, f.state, f.reason, sep="|")
print("exit", report.exit_code)
"""


def test_unreadable_files_and_folders_are_reported_failed_and_the_rest_load(
    shared_exports: Path,
) -> None:
    """They vanished: not in the report, not in the ledger, exit 0. Real permissions: as root,
    the runner runs without the capabilities that let root read everything."""
    root = Path(tempfile.mkdtemp(prefix="brewline-perm-"))
    try:
        root.chmod(0o777)
        landing = root / "landing"
        landing.mkdir()
        copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
        write(landing, "locked.csv", TWO_SALES, 1)
        write(landing, "closed/york.csv", TWO_SALES, 1)
        for path in [landing, *landing.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o644)
        (landing / "locked.csv").chmod(0o000)
        (landing / "closed").chmod(0o000)
        command = [sys.executable, "-c", UNREADABLE, str(landing), str(root / "w.duckdb")]
        if os.geteuid() == 0:
            command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        outcomes = sorted(done.stdout.splitlines())
        assert outcomes == [
            "closed/|failed|unreadable_file",
            "exit 1",
            "leeds_09-05-2023_09-00-00_done.csv|loaded|None",
            "locked.csv|failed|unreadable_file",
        ]
        recorded = rows(str(root / "w.duckdb"), "SELECT status, files_failed FROM etl_run")
        assert recorded == [("completed_with_rejects", 2)]
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o777)
        shutil.rmtree(root)


def test_the_plausible_date_window_is_a_setting_and_the_future_is_implausible(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    import datetime as dt

    soon = dt.date.today() + dt.timedelta(days=3)
    write(landing, "future.csv", line(ts=f"{soon:%d/%m/%Y} 09:00"), 1)
    write(landing, "old.csv", line(ts="25/08/2021 09:00") + line(ts="25/08/1999 09:00"), 2)
    report = run(make_settings(max_days_ahead=1))
    by_name = {f.source_name: f for f in report.files}
    assert (by_name["future.csv"].state, by_name["future.csv"].reason) == (
        "rejected",
        "no_valid_rows",
    )
    assert "implausible_date" in (by_name["future.csv"].message or "")
    assert (by_name["old.csv"].rows_loaded, by_name["old.csv"].rows_rejected) == (1, 1)
    later = run(make_settings(earliest_sale_date=dt.date(2022, 1, 1), max_days_ahead=5))
    assert {f.source_name: f.state for f in later.files} == {
        "future.csv": "skipped",  # an unchanged rejected file is not retried
        "old.csv": "skipped",
    }


def test_the_ledger_says_how_many_rows_of_each_file_are_still_there(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """After a later file took over some of a file's branch-days, rows_loaded no longer
    matched the warehouse; rows_replaced now says how many went."""
    settings = make_settings(warehouse=warehouse_url)
    write(landing, "f.csv", line(branch="York") + line(branch="York", ts="26/08/2021 09:00"), 1)
    run(settings)
    write(landing, "g.csv", line(branch="York", ts="26/08/2021 10:00"), 2)  # takes 26/08
    run(settings)
    write(landing, "g.csv", line(branch="York", ts="26/08/2021 11:00") * 1, 3)  # a correction
    run(settings)
    ledger = rows(
        warehouse_url,
        "SELECT f.source_name, f.state, f.rows_read, f.rows_loaded, f.rows_rejected, "
        "f.rows_replaced, (SELECT count(*) FROM fact_sale s WHERE s.file_id = f.file_id) "
        "FROM etl_file f ORDER BY f.source_name, f.recorded_at",
    )
    assert ledger == [
        ("f.csv", "loaded", 2, 2, 0, 1, 1),
        ("g.csv", "replaced", 1, 1, 0, 1, 0),
        ("g.csv", "loaded", 1, 1, 0, 0, 1),
    ]
    for _, _, read, loaded, rejected, replaced, there in ledger:
        assert read == loaded + rejected
        assert loaded - replaced == there
