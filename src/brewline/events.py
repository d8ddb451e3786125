"""Deliveries announced by events: S3 notifications (direct or through SQS), and
which of them must be retried after a run.

Shared by the Lambda handler (:mod:`brewline.aws`) and ``brewline watch --queue``:
both hear of objects through S3's standard notification JSON, load them with
one run, and hand back to the queue only what failed.

    >>> [m.objects for m in messages({"Records": [{"eventSource": "aws:s3",
    ...     "eventName": "ObjectCreated:Put",
    ...     "s3": {"bucket": {"name": "b"}, "object": {"key": "in/leeds+1.csv"}}}]})]
    [(('b', 'in/leeds 1.csv'),)]
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from brewline.report import RunReport
from brewline.vocabulary import FileState

__all__ = ["Message", "failed_objects", "message_from_body", "messages"]


@dataclass(frozen=True)
class Message:
    """One unit a caller retries: an SQS message (``id``) or a direct S3 event (no id).

    ``objects`` are ``(bucket, key)`` pairs; ``problem`` says why a message is
    not an S3 event at all (it can never succeed, so it is reported as failed
    and ends in the dead-letter queue).
    """

    id: str | None
    objects: tuple[tuple[str, str], ...] = ()
    problem: str | None = None

    def names(self) -> set[str]:
        """The objects' delivery names (``bucket/key``)."""
        return {f"{bucket}/{key}" for bucket, key in self.objects}


def messages(event: dict[str, Any]) -> list[Message]:
    """The messages of a Lambda event: SQS records carrying S3 notifications, or S3 records.

    S3's ``s3:TestEvent`` (sent when a notification is configured) names no object.
    """
    records = event.get("Records") or []
    if records and all(r.get("eventSource") == "aws:sqs" for r in records):
        return [message_from_body(str(r.get("messageId")), r.get("body")) for r in records]
    return [Message(None, _s3_objects(records))]


def message_from_body(message_id: str, body: object) -> Message:
    """An SQS message whose body should be an S3 event notification."""
    try:
        parsed = json.loads(body if isinstance(body, str) else "")
        if not isinstance(parsed, dict):
            raise ValueError("not a JSON object")
        return Message(message_id, _s3_objects(parsed.get("Records") or []))
    except (ValueError, TypeError, KeyError) as exc:
        return Message(message_id, problem=f"not an S3 event notification ({exc})")


def _s3_objects(records: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    found = []
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue  # deletions, restores, test events: nothing to load
        s3 = record["s3"]
        # Keys arrive URL-encoded, with spaces as '+'.
        found.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    return tuple(found)


def failed_objects(report: RunReport, names: Iterable[str]) -> set[str]:
    """Of the delivery ``names`` a run was given, those to retry: the failed ones, and
    every one it did not reach when it stopped (they stay pending)."""
    failed = {f.source_name for f in report.files if f.state == FileState.FAILED}
    if report.error:
        failed |= set(names) - {f.source_name for f in report.files}
    return failed
