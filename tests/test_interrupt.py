"""Stop ``brewline run`` with a signal, for real: a subprocess on a landing folder of many
files, on DuckDB and PostgreSQL, then ``brewline status`` and a second run."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import copy_exports

from brewline.config import Settings
from brewline.errors import BrewlineError
from brewline.load import open_warehouse
from brewline.pipeline import run
from brewline.report import FileReport, StopRequest
from brewline.synth import SynthSpec, generate_landing

FILES, SALES = 24, 1500
INTERRUPTED_LINE = re.compile(
    r"interrupted: ([\d,]+) files? committed, ([\d,]+) pending; run again"
)


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("many-files")
    generate_landing(folder, SynthSpec(branches=6, days=4, sales_per_branch_day=SALES, seed=19))
    return folder


@pytest.fixture(params=["duckdb", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    return str(request.getfixturevalue("postgres_url"))


def brewline(tmp_path: Path, *args: str, columns: int = 120, **popen: Any) -> subprocess.Popen[str]:
    """``brewline ARGS`` in its own process, in an empty folder (no brewline.toml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    env |= {"BREWLINE_BATCH_FILES": "2", "BREWLINE_LOCK_TIMEOUT": "120", "COLUMNS": str(columns)}
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | popen
    return subprocess.Popen(
        [sys.executable, "-m", "brewline", *args], cwd=tmp_path, env=env, text=True, **popen
    )


def start_run(tmp_path: Path, landing: Path, url: str, **popen: Any) -> subprocess.Popen[str]:
    quarantine = str(tmp_path / "quarantine")
    return brewline(
        tmp_path, "run", str(landing), "--warehouse", url, "--quarantine", quarantine,
        "--no-alert", **popen,
    )  # fmt: skip


def ask(url: str, sql: str) -> list[tuple[Any, ...]]:
    with open_warehouse(url, read_only=True, lock_timeout=60) as wh:
        return wh.query(sql).rows()


def wait_for_files(runner: subprocess.Popen[str], url: str, files: int) -> None:
    """Until the running run has begun and committed at least ``files`` deliveries."""
    while runner.poll() is None:
        try:
            (running,) = ask(url, "SELECT count(*) FROM etl_run WHERE status = 'running'")[0]
            (done,) = ask(url, "SELECT count(*) FROM etl_file")[0]
        except BrewlineError:  # no warehouse or schema yet
            running = done = 0
        if running and done >= files:
            return
        time.sleep(0.05)
    pytest.fail(f"the run ended before {files} files were committed: {runner.communicate()}")


def consistent(url: str) -> list[tuple[Any, ...]]:
    """Every delivery whole: its rows add up, its sales are all there, nothing else is.

    Returns ``(source_name, state)`` of every delivery."""
    unbalanced = ask(url, "SELECT * FROM etl_file WHERE rows_read <> rows_loaded + rows_rejected")
    mismatched = ask(
        url,
        "SELECT f.source_name FROM etl_file f LEFT JOIN fact_sale s USING (file_id) "
        "WHERE f.state = 'loaded' GROUP BY f.source_name, f.rows_loaded "
        "HAVING count(s.sale_key) <> f.rows_loaded",
    )
    orphans = ask(
        url,
        "SELECT count(*) FROM fact_sale WHERE file_id NOT IN "
        "(SELECT file_id FROM etl_file WHERE state = 'loaded')",
    )
    assert (unbalanced, mismatched, orphans) == ([], [], [(0,)])
    return ask(url, "SELECT source_name, state FROM etl_file ORDER BY source_name")


def status_json(tmp_path: Path, url: str) -> dict[str, Any]:
    shown = brewline(tmp_path, "status", "--warehouse", url, "--json")
    out, err = shown.communicate(timeout=120)
    assert shown.returncode == 0, err
    return json.loads(out)


@pytest.mark.parametrize(
    ("signum", "files"),
    [(signal.SIGINT, 0), (signal.SIGINT, 6), (signal.SIGTERM, 6)],
    ids=["sigint-early", "sigint-mid", "sigterm-mid"],
)
def test_a_signal_stops_the_run_between_commits_with_one_line(
    many_files: Path, url: str, tmp_path: Path, signum: int, files: int
) -> None:
    runner = start_run(tmp_path, many_files, url)
    wait_for_files(runner, url, files)
    runner.send_signal(signum)
    out, err = runner.communicate(timeout=120)

    assert runner.returncode == 128 + signum, err
    assert "No files to process" not in out  # there were, and they are pending
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    (line,) = err.splitlines()
    said = INTERRUPTED_LINE.fullmatch(line)
    assert said is not None, line
    committed, pending = (int(n.replace(",", "")) for n in said.groups())
    assert committed + pending == FILES
    assert pending > 0
    delivered = consistent(url)
    assert len(delivered) == committed
    ((status, loaded, rows),) = ask(url, "SELECT status, files_loaded, rows_loaded FROM etl_run")
    assert (status, loaded, rows) == ("interrupted", committed, committed * SALES)
    (shown,) = status_json(tmp_path, url)["recent_runs"]
    assert (shown["status"], shown["files_loaded"]) == ("interrupted", committed)

    second = start_run(tmp_path, many_files, url)
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    delivered = consistent(url)
    assert delivered == sorted((p.name, "loaded") for p in many_files.glob("*.csv"))
    assert ask(url, "SELECT count(*) FROM fact_sale") == [(FILES * SALES,)]
    runs = ask(url, "SELECT status, files_loaded FROM etl_run ORDER BY started_at")
    assert runs == [("interrupted", committed), ("succeeded", FILES - committed)]


def test_ctrl_c_on_a_terminal_ends_with_the_line_and_no_traceback(
    many_files: Path, tmp_path: Path
) -> None:
    """With stderr on a terminal (the progress bar shows), Ctrl+C ends the same way."""
    url = str(tmp_path / "warehouse.duckdb")
    leader, follower = pty.openpty()
    runner = start_run(tmp_path, many_files, url, stderr=follower)
    os.close(follower)
    shown: list[bytes] = []
    drain = threading.Thread(target=read_all, args=(leader, shown))  # a full terminal blocks
    drain.start()
    wait_for_files(runner, url, 4)
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=120)
    drain.join(timeout=60)
    os.close(leader)
    err = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(shown).decode())
    assert runner.returncode == 130, err
    assert "Traceback" not in err
    assert INTERRUPTED_LINE.search(err), err
    assert consistent(url)


def read_all(fd: int, into: list[bytes]) -> None:
    """Read a terminal until its other end closes."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            return
        if not chunk:
            return
        into.append(chunk)


def killed_mid_run(tmp_path: Path, landing: Path, url: str) -> int:
    """SIGKILL a run once it has committed a few files; how many deliveries it committed."""
    runner = start_run(tmp_path, landing, url)
    wait_for_files(runner, url, 4)
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=60)
    assert runner.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    delivered = consistent(url)
    assert 4 <= len(delivered) < FILES
    return len(delivered)


def test_status_tells_a_killed_run_at_once_with_what_it_committed(
    many_files: Path, url: str, tmp_path: Path
) -> None:
    """No other run has started: ``status`` itself sees the run's lock is free."""
    committed = killed_mid_run(tmp_path, many_files, url)

    (shown,) = status_json(tmp_path, url)["recent_runs"]
    assert shown["status"] == "abandoned"
    assert shown["files_loaded"] == committed
    assert shown["rows_loaded"] == committed * SALES
    table = brewline(tmp_path, "status", "--warehouse", url, columns=80)
    out, err = table.communicate(timeout=120)
    assert table.returncode == 0, err
    assert "abandoned" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_run_marks_a_killed_one_abandoned_with_what_it_committed(
    many_files: Path, url: str, tmp_path: Path
) -> None:
    killed = killed_mid_run(tmp_path, many_files, url)
    second = start_run(tmp_path, many_files, url)
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    runs = ask(url, "SELECT status, files_loaded, rows_loaded FROM etl_run ORDER BY started_at")
    assert runs == [
        ("abandoned", killed, killed * SALES),
        ("succeeded", FILES - killed, (FILES - killed) * SALES),
    ]


def test_a_run_removes_the_lock_files_nobody_holds_and_keeps_a_live_runs(
    many_files: Path, tmp_path: Path
) -> None:
    """A run killed after recording its end but before removing its lock left the lock."""
    url = str(tmp_path / "warehouse.duckdb")
    first = start_run(tmp_path, many_files, url)
    assert first.communicate(timeout=180)[0] is not None
    (run_id,) = ask(url, "SELECT run_id FROM etl_run")[0]
    left = Path(f"{url}.run-{run_id}.lock")
    left.write_text("4242\n")  # as the killed run left it: nobody holds it
    live = Path(f"{url}.run-20261207T000000-live.lock")
    with live.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        again = start_run(tmp_path, many_files, url)
        _, err = again.communicate(timeout=180)
        assert again.returncode == 0, err
        assert not left.exists()
        assert live.exists()
    assert sorted(p.name for p in tmp_path.glob("*.lock")) == [live.name]


def test_a_stop_ends_the_run_before_its_next_commit_but_not_after_its_last(
    landing: Path, shared_exports: Path, make_settings: Callable[..., Settings]
) -> None:
    """In-process: a stop asked while a batch commits lets that batch finish and nothing
    after it; asked at the last file, the run had nothing left to do and ends as usual."""
    copy_exports(shared_exports, landing)
    settings = make_settings(batch_files=1)
    stop = StopRequest()
    first = run(settings, on_file=lambda _: stop.ask(signal.SIGTERM), stop=stop, alert=False)
    assert (first.status, first.exit_code, first.committed()) == ("interrupted", 143, 1)
    assert first.pending == len(list(landing.glob("*.csv"))) - 1

    late = StopRequest()
    listed: list[int] = []
    told: list[FileReport] = []

    def at_the_last(report: FileReport) -> None:
        told.append(report)
        if len(told) == listed[0]:
            late.ask()

    second = run(settings, on_start=listed.append, on_file=at_the_last, stop=late, alert=False)
    assert late.signum == signal.SIGINT
    assert second.interrupted_by is None
    assert second.pending == 0
    assert second.status in ("succeeded", "completed_with_rejects")


@pytest.mark.parametrize("imported", ["typer._click.core", "typer.models", "brewline.vocabulary"])
def test_ctrl_c_while_the_command_line_is_still_loading_ends_quietly(
    many_files: Path, tmp_path: Path, imported: str
) -> None:
    """The console script as installed, signalled while it is still importing: Python's
    import-time report (PYTHONPROFILEIMPORTTIME, on stderr) says how far it got, so the
    signal lands inside the loading, not before or after it, whatever the machine's speed."""
    script = Path(sys.executable).with_name("brewline")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    warehouse = str(tmp_path / "warehouse.duckdb")
    runner = subprocess.Popen(
        [script, "run", str(many_files), "--warehouse", warehouse, "--no-alert"],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert runner.stderr is not None
    said = []
    for line in runner.stderr:
        said.append(line)
        if line.rpartition("|")[2].strip() == imported:  # that package is in; the rest loads
            runner.send_signal(signal.SIGINT)
            break
    else:
        pytest.fail(f"{imported} was never imported: {''.join(said)[-2000:]}")
    _, rest = runner.communicate(timeout=120)
    err = "".join(line for line in [*said, rest] if "import time:" not in line)

    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" not in err, err
    assert runner.returncode == 130, err
    assert not (tmp_path / "warehouse.duckdb").exists()  # stopped before it opened anything
