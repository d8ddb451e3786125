"""Timing dashboard pages over HTTP: shared by bench_dashboard.py and bench_scale.py.

Each page is served by a real uvicorn process (``brewline.serve.app``) and timed
as a browser would see it over loopback (request sent, whole body read):

- ``first``: the very first request for that page on a fresh server (nothing
  of that page cached: the warehouse is queried);
- ``warm``: median of ``repeats`` requests after one warm-up (answers cached
  per ledger version: a few tiny queries plus rendering);
- ``uncached``: median of ``repeats`` requests on a second server with the cache
  off, i.e. what every request would cost right after each load.

A page whose first answer took longer than :data:`SLOW_MS` is asked once more
on the uncached server, not ``repeats`` times plus a warm-up: at 100M sales one
answer can take minutes, and its first request already warmed the OS page cache.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
SLOW_MS = 2000.0
TIMEOUT_S = 1800.0
"""A page is waited for this long: a 100M-sale scan on PostgreSQL can take minutes."""

_SERVER = """
import sys, uvicorn
from brewline.serve.app import DashboardConfig, create_app
config = DashboardConfig(sys.argv[1], cache_entries=int(sys.argv[3]))
uvicorn.run(create_app(config), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


class Answer(NamedTuple):
    """One complete GET: wall milliseconds, body bytes, and the server's own ``db`` time."""

    ms: float
    size: int
    db_ms: float | None


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(warehouse: str | Path, cache_entries: int) -> Iterator[str]:
    """A dashboard process on ``warehouse`` (a DuckDB path or a PostgreSQL URL); its base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(warehouse), str(port), str(cache_entries)],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                fetch(base + "/healthz")
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the dashboard did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def fetch(url: str) -> Answer:
    """Time one complete GET (body read); ``db_ms`` from the page's ``Server-Timing`` header."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        size = len(response.read())
        timing = response.headers.get("Server-Timing", "")
    return Answer((time.perf_counter() - started) * 1000, size, _db_ms(timing))


def _db_ms(timing: str) -> float | None:
    """``db;dur=12.3, render;dur=4.5`` -> 12.3 (None when the header is absent)."""
    for part in timing.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name == "db" and duration:
            return float(duration)
    return None


def time_pages(
    warehouse: str | Path, pages: list[tuple[str, str]], repeats: int = 5
) -> list[dict[str, object]]:
    """First, warm and uncached milliseconds of each ``(name, path)`` page (see the module doc)."""
    rows: list[dict[str, object]] = []
    with server(warehouse, cache_entries=64) as cached, server(warehouse, 0) as uncached:
        for name, path in pages:
            first = fetch(cached + path)
            fetch(cached + path)  # warm-up
            warm = statistics.median(fetch(cached + path).ms for _ in range(repeats))
            samples = repeats if first.ms < SLOW_MS else 1
            if samples > 1:
                fetch(uncached + path)  # warm-up (connection, OS page cache)
            cold = [fetch(uncached + path) for _ in range(samples)]
            db = [answer.db_ms for answer in cold if answer.db_ms is not None]
            rows.append(
                {
                    "page": name,
                    "path": path,
                    "kb": round(first.size / 1024),
                    "first_ms": first.ms,
                    "warm_ms": warm,
                    "uncached_ms": statistics.median(answer.ms for answer in cold),
                    "uncached_db_ms": statistics.median(db) if db else None,
                    "uncached_samples": samples,
                }
            )
    return rows


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpu = model or platform.processor()
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"
