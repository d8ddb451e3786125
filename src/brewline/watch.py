"""Loading on arrival: a long-running loop that runs the pipeline on what lands.

- a **folder** is watched through filesystem events (``watchfiles``): changes
  that arrive together (within its debounce) are one run over just those files;
- an **S3 prefix** is fed by its event notifications on an SQS queue (``queue``):
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
import threading
from collections.abc import Callable
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
        _watch_folder(Path(location), stop, load)


Load = Callable[[list[str] | None], RunReport]
"""One run over the given files or keys (None: everything there)."""


def _watch_folder(root: Path, stop: threading.Event, load: Load) -> None:
    import watchfiles

    base = root.resolve()

    def wanted(change: watchfiles.Change, path: str) -> bool:
        if change == watchfiles.Change.deleted or not Path(path).is_relative_to(base):
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
        paths = sorted({path for _, path in changes if Path(path).is_file()})
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
