"""``brewline watch``: real processes, real filesystem events, a real SQS queue (moto
server); each test stops the watcher with SIGTERM as a service manager would."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import duckdb
from tests.conftest import copy_exports
from tests.motoserver import MotoServer

EXPORTS = "coffeetl-2024-12-18"


class Watcher:
    """A ``brewline watch --json`` process whose reports are read line by line (or,
    ``as_json=False``, its plain lines)."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path, as_json: bool = True
    ):
        output = ["--json"] if as_json else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "brewline", "watch", *output, "--no-alert", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def report(self, timeout: float = 30) -> dict[str, Any]:
        return dict(json.loads(self.line(timeout)))

    def line(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.process.kill()
            _, err = self.process.communicate()
            raise AssertionError(f"no run reported in {timeout}s; stderr: {err[-2000:]}") from None

    def reports_until(self, loaded: int, timeout: float = 40) -> list[dict[str, Any]]:
        """Reports until ``loaded`` files in total were loaded."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while sum(r["files_loaded"] for r in got) < loaded:
            got.append(self.report(max(0.1, deadline - time.monotonic())))
        return got

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


@contextmanager
def watching(
    *args: str, cwd: Path, env: dict[str, str] | None = None, as_json: bool = True
) -> Iterator[Watcher]:
    watcher = Watcher(*args, cwd=cwd, env=env, as_json=as_json)
    try:
        yield watcher
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.communicate()


def fact_count(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM fact_sale").fetchone()
    assert row is not None
    return int(row[0])


def test_a_watched_folder_loads_files_as_they_land_and_stops_cleanly_on_sigterm(
    tmp_path: Path, landing: Path, shared_exports: Path
) -> None:
    first = copy_exports(shared_exports / EXPORTS, landing)[:2]
    for path in landing.iterdir():
        if path not in first:
            path.unlink()
    warehouse = tmp_path / "w.duckdb"
    with watching(str(landing), "-w", str(warehouse), cwd=tmp_path) as watcher:
        catch_up = watcher.report()
        assert catch_up["files_loaded"] == 2  # what landed before it started
        names = sorted(p.name for p in (shared_exports / EXPORTS).glob("*.csv"))[2:5]
        for name in names:  # three arrive together: one run
            shutil.copy(shared_exports / EXPORTS / name, landing / name)
        runs = watcher.reports_until(loaded=3)
        assert sorted(f["source_name"] for r in runs for f in r["files"]) == names
        # A corrected file replaces its earlier version; a non-export is ignored.
        (landing / "notes.txt").write_text("not an export")
        corrected = landing / names[0]
        corrected.write_bytes(corrected.read_bytes() + b"\n")
        again = watcher.reports_until(loaded=1)
        assert [f["replaced"] for r in again for f in r["files"]] == [[names[0]]]
        code, err = watcher.stop()
    assert code == 0, err
    assert "Traceback" not in err
    with duckdb.connect(str(warehouse), read_only=True) as con:
        files = con.execute("SELECT state, count(*) FROM etl_file GROUP BY 1 ORDER BY 1").fetchall()
        runs = con.execute("SELECT DISTINCT status FROM etl_run").fetchall()
    assert files == [("loaded", 5), ("replaced", 1)]
    assert runs == [("succeeded",)]


SLOW_WRITER = """
import sys, time
data, target = open(sys.argv[1], "rb").read(), sys.argv[2]
pieces = 8
with open(target, "wb") as out:  # cut mid-line: a half-written file ends in half a sale
    for i in range(pieces):
        out.write(data[len(data) * i // pieces : len(data) * (i + 1) // pieces])
        out.flush()
        time.sleep(0.4)
"""


def test_a_file_still_being_written_is_loaded_once_whole_as_is_one_renamed_into_place(
    tmp_path: Path, landing: Path, shared_exports: Path
) -> None:
    exports = sorted((shared_exports / EXPORTS).glob("*.csv"))
    slow, renamed = exports[0], exports[1]
    lines = {p.name: len(p.read_bytes().splitlines()) for p in (slow, renamed)}
    warehouse = tmp_path / "w.duckdb"
    # Settling for 2 s: the writer's 0.4 s pauses stay shorter on a machine this busy.
    settle = {"BREWLINE_WATCH_SETTLE_SECONDS": "2"}
    with watching(str(landing), "-w", str(warehouse), cwd=tmp_path, env=settle) as watcher:
        assert watcher.report()["files"] == []  # caught up: nothing there yet
        # A copy that takes 3.2 s, longer than the watcher's debounce, in 8 writes.
        subprocess.run(
            [sys.executable, "-c", SLOW_WRITER, str(slow), str(landing / slow.name)], check=True
        )
        # Written under a hidden name, then renamed into place: whole on arrival.
        hidden = landing / f".{renamed.name}.part"
        shutil.copy(renamed, hidden)
        hidden.rename(landing / renamed.name)
        runs = watcher.reports_until(loaded=2)
        time.sleep(3)  # time enough for a second, replacing load, if one were coming
        assert watcher.lines.empty(), watcher.lines.get()
        assert watcher.stop()[0] == 0
    files = [f for r in runs for f in r["files"]]
    outcomes = sorted(
        (f["source_name"], f["state"], f["rows_read"], f["rows_loaded"]) for f in files
    )
    assert outcomes == [(name, "loaded", n, n) for name, n in sorted(lines.items())]
    assert not any(f["replaced"] for f in files)
    assert not (landing / "_quarantine").exists()  # no stale half line kept
    assert fact_count(warehouse) == sum(lines.values())


def test_a_run_names_each_rejected_file_and_its_reason_on_a_line_of_its_own(
    tmp_path: Path, landing: Path, shared_exports: Path
) -> None:
    copy_exports(shared_exports / EXPORTS, landing, ["leeds_18-12-2024_09-00-00.csv"])
    (landing / "york_01-01-2024.csv").write_bytes(b"18/12/2024 09:00,York,\xff\xfe\n")
    (landing / "hull_01-01-2024.csv").write_bytes(b"")
    with watching(str(landing), "-w", str(tmp_path / "w.duckdb"), cwd=tmp_path, as_json=False) as w:
        summary = w.line()
        problems = sorted([w.line(), w.line()])
        assert w.stop()[0] == 0
    assert summary.endswith(" 3 files: 1 loaded, 2 rejected; 382 rows loaded")
    assert problems == [
        "hull_01-01-2024.csv: rejected (empty_file: the file is empty)",
        "york_01-01-2024.csv: rejected (not_utf8: not UTF-8: re-export as UTF-8; in Excel "
        "save it as 'CSV UTF-8 (Comma delimited)', then drop it into the landing folder again)",
    ]


def test_the_dashboard_keeps_answering_while_a_watcher_loads_duckdb(
    tmp_path: Path, landing: Path, shared_exports: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    subprocess.run(
        [sys.executable, "-m", "brewline", "init", "-w", str(warehouse)], check=True, cwd=tmp_path
    )
    port = _free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "brewline", "serve", "-w", str(warehouse), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz")
        with watching(str(landing), "-w", str(warehouse), cwd=tmp_path) as watcher:
            watcher.report()  # caught up (nothing there yet)
            statuses: list[int] = []
            done = threading.Event()

            def poll() -> None:
                while not done.is_set():
                    statuses.append(_status(f"http://127.0.0.1:{port}/operations"))

            poller = threading.Thread(target=poll)
            poller.start()
            copy_exports(shared_exports / EXPORTS, landing)
            watcher.reports_until(loaded=30, timeout=90)
            done.set()
            poller.join()
            assert watcher.stop()[0] == 0
        assert len(statuses) >= 3
        assert statuses.count(200) / len(statuses) >= 0.95, statuses
        assert fact_count(warehouse) > 0
    finally:
        serve.terminate()
        serve.wait(10)


def test_an_s3_prefix_is_loaded_from_its_sqs_notifications_or_by_polling(
    aws: MotoServer, s3_bucket: str, tmp_path: Path, shared_exports: Path
) -> None:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{s3_bucket}", Attributes={"VisibilityTimeout": "1"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=s3_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.send_message(QueueUrl=url, MessageBody="garbage, not an event")
    paths = sorted((shared_exports / EXPORTS).glob("*.csv"))
    warehouse = tmp_path / "w.duckdb"
    location = f"s3://{s3_bucket}/landing/"
    with watching(location, "--queue", url, "-w", str(warehouse), cwd=tmp_path) as watcher:
        for path in paths[:3]:
            s3.put_object(Bucket=s3_bucket, Key=f"landing/{path.name}", Body=path.read_bytes())
        s3.put_object(Bucket=s3_bucket, Key="elsewhere/x.csv", Body=b"ignored")
        runs = watcher.reports_until(loaded=3)
        assert {f["source_name"] for r in runs for f in r["files"]} == {
            f"{s3_bucket}/landing/{p.name}" for p in paths[:3]
        }
        assert watcher.stop()[0] == 0
    # Loaded messages were deleted; the garbage one stays for the dead-letter queue.
    time.sleep(1.5)  # its visibility timeout
    left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [m["Body"] for m in left.get("Messages", [])]
    assert "garbage, not an event" in bodies
    assert not any("landing/" in b for b in bodies)

    # Without a queue: polled, first a catch-up run, then what changes.
    with watching(location, "--interval", "1", "-w", str(warehouse), cwd=tmp_path) as watcher:
        assert watcher.report()["files_skipped"] == 3
        s3.put_object(Bucket=s3_bucket, Key=f"landing/{paths[3].name}", Body=paths[3].read_bytes())
        assert [f["state"] for f in watcher.report()["files"]] == ["loaded"]
        assert watcher.stop()[0] == 0


def test_watch_refuses_bad_locations_in_one_line(tmp_path: Path) -> None:
    def watch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "brewline", "watch", *args],
            check=False,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )

    missing = watch(str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    folder_queue = watch(str(tmp_path), "--queue", "https://sqs.example/q", "-w", "w.duckdb")
    assert folder_queue.returncode == 1
    assert "--queue is for S3 landing areas" in folder_queue.stderr
    assert "Traceback" not in folder_queue.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _status(url) in (200, 503):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_serve_watch_loads_beside_the_dashboard_and_stops_its_watcher_with_it(
    tmp_path: Path, landing: Path, shared_exports: Path
) -> None:
    warehouse = tmp_path / "w.duckdb"
    port = _free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "brewline", "serve", "-w", str(warehouse), "--port", str(port),
         "--watch", str(landing)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz")
        copy_exports(shared_exports / EXPORTS, landing)
        deadline, metrics = time.monotonic() + 60, ""
        while 'brewline_files{state="loaded"} 30.0' not in metrics:
            assert time.monotonic() < deadline, metrics[-1500:]
            time.sleep(0.5)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                metrics = r.read().decode()
    finally:
        serve.send_signal(signal.SIGINT)
        output, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, output[-2000:]
    assert "30 files: 30 loaded" in output
    assert "Stopped." in output  # the watcher was stopped with the dashboard
    assert "Traceback" not in output
