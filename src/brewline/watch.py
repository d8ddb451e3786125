"""Loading on arrival: a long-running loop that runs the pipeline on what lands.

- a **folder** is watched through filesystem events (``watchfiles``): files that
  are ready together are one run over just those files. A file is ready once its
  size and time have not changed for ``watch_settle_seconds`` (a copy in progress
  changes both with each write), so a half-copied file is not loaded;
- an **S3 prefix** (whose objects are whole when they appear) is fed by its event
  notifications on an SQS queue (``queue``):
  each received batch is one run over the objects it names; messages are
  deleted once their objects are loaded, skipped or rejected, and left to
  reappear (then dead-letter) when they failed;
- or, without a queue, an S3 prefix is **polled** every ``interval`` seconds
  for objects whose size or time changed.

A folder or a polled prefix is first caught up with one full run. Every run is
an ordinary :func:`brewline.pipeline.run` (same ledger, alerts, atomic batches),
so a watcher stopped at any point leaves no half-loaded delivery; ``stop``
(set by SIGTERM/SIGINT in the CLI) ends the loop after the run in hand.

    >>> stop = threading.Event()
    >>> watch(settings, "landing", stop=stop, on_report=print)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from brewline.config import Settings
from brewline.events import failed_objects, message_from_body
from brewline.pipeline import run
from brewline.report import RunReport
from brewline.sources import Location, is_delivery_name, open_source

__all__ = ["DEBOUNCE_MS", "watch"]

log = logging.getLogger("brewline")

DEBOUNCE_MS = 1600
"""Folder changes within this many milliseconds of each other make one run."""
_QUEUE_WAIT = 5
"""Seconds an SQS receive waits for messages (long polling; also how fast a stop is seen)."""

OnReport = Callable[[RunReport], None]


def watch(
    settings: Settings,
    location: Location,
    *,
    stop: threading.Event,
    on_report: OnReport,
    queue: str | None = None,
    interval: float = 30.0,
    alert: bool = True,
) -> None:
    """Load what lands at ``location`` until ``stop`` is set; ``on_report`` after each run."""

    def load(only: list[str] | None) -> RunReport:
        source = open_source([location], quarantine=settings.quarantine, only=only)
        report = run(settings, source=source, alert=alert)
        on_report(report)
        return report

    if str(location).startswith("s3://"):
        if queue is not None:
            _from_queue(str(location), queue, stop, load)
        else:
            _poll(settings, str(location), interval, stop, load)
    else:
        if queue is not None:
            from brewline.errors import ConfigError

            raise ConfigError("--queue is for S3 landing areas; a folder is watched directly")
        _watch_folder(Path(location), _Settling(settings.watch_settle_seconds), stop, load)


Load = Callable[[list[str] | None], RunReport]
"""One run over the given files or keys (None: everything there)."""


_Mark = tuple[int, int]
"""A file's size and modification time (ns): every write changes them."""


@dataclass
class _Settling:
    """Changed files, until each has kept its size and time for ``seconds``.

    Events alone cannot say a file is whole: watchfiles reports a new file's first
    write as "added" alone, as it does a file renamed into place, so a rename waits
    the settle time too (one second more, against loading half a copy).
    """

    seconds: float
    _pending: dict[str, tuple[_Mark | None, float]] = field(default_factory=dict)
    """path -> (its mark at the last look, None before any; since when it has it)."""

    def ready(self, paths: Iterable[str]) -> list[str]:
        """Note the changed ``paths`` (deleted ones too); the files now ready, each once."""
        now = time.monotonic()
        for path in paths:
            self._pending[path] = (None, now)
        ready = []
        for path, (mark, since) in list(self._pending.items()):
            current = _mark(path)
            if current is None:  # gone (deleted, renamed away)
                del self._pending[path]
            elif current == mark and now - since >= self.seconds:
                ready.append(path)
                del self._pending[path]
            elif current != mark:  # written since the last look: settle again
                self._pending[path] = (current, now)
        return sorted(ready)


def _mark(path: str) -> _Mark | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns) if os.path.isfile(path) else None


def _watch_folder(root: Path, settling: _Settling, stop: threading.Event, load: Load) -> None:
    import watchfiles

    base = root.resolve()

    def wanted(change: watchfiles.Change, path: str) -> bool:
        if not Path(path).is_relative_to(base):
            return False
        return is_delivery_name(Path(path).relative_to(base).as_posix())

    caught_up = False
    for changes in watchfiles.watch(
        base,
        watch_filter=wanted,
        stop_event=stop,
        debounce=DEBOUNCE_MS,
        raise_interrupt=False,
        ignore_permission_denied=True,
        yield_on_timeout=True,  # the first (empty) yield says the watcher is listening
        rust_timeout=500,
    ):
        if not caught_up:  # catch up with what landed while nobody watched; what lands
            load(None)  # meanwhile is seen by the watcher, and loading twice is harmless
            caught_up = True
            continue
        # The empty yields (every rust_timeout) look at the files still settling again.
        paths = settling.ready(path for _, path in changes)
        if paths:
            load(paths)


def _poll(
    settings: Settings,
    location: str,
    interval: float,
    stop: threading.Event,
    load: Load,
) -> None:
    seen: dict[str, tuple[int, float]] = {}
    while not stop.is_set():
        listed = open_source([location], quarantine=settings.quarantine).deliveries()
        new = [d for d in listed if seen.get(d.name) != (d.size, d.arrived)]
        if new:
            load([d.ref for d in new] if seen else None)
            seen.update({d.name: (d.size, d.arrived) for d in new})
        stop.wait(interval)


def _from_queue(location: str, queue: str, stop: threading.Event, load: Load) -> None:
    import boto3

    from brewline.sources.s3 import S3Prefix, require_credentials

    where = S3Prefix.parse(location)
    session = boto3.Session()
    require_credentials(session, queue)
    sqs = session.client("sqs")
    while not stop.is_set():
        received = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=_QUEUE_WAIT
        ).get("Messages", [])
        if not received:
            continue
        batch = [message_from_body(m["MessageId"], m.get("Body")) for m in received]
        keys = [
            key
            for message in batch
            for bucket, key in message.objects
            if bucket == where.bucket and key.startswith(where.prefix)
        ]
        failed: set[str] = set()
        if keys:
            report = load(keys)
            failed = failed_objects(report, (f"{where.bucket}/{k}" for k in keys))
        done = [
            m
            for m, message in zip(received, batch, strict=True)
            if not message.problem and not (message.names() & failed)
        ]
        for message in batch:
            if message.problem:
                log.warning("message %s left on the queue: %s", message.id, message.problem)
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
