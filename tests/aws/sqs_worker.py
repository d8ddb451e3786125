"""What the Lambda service does for an SQS event source, in one process: poll, invoke, delete.

Receives up to ``--batch`` messages, hands them to :func:`brewline.aws.handler`
as the standard SQS event, deletes the messages the handler did not report in
``batchItemFailures`` and leaves those to reappear after the visibility timeout
(and reach the dead-letter queue after the redrive policy's receives). Stops
after ``--idle`` seconds without a message. Prints one JSON line of counts (and
the epoch times of its first receive and its last finished invocation).

    python tests/aws/sqs_worker.py QUEUE_URL [--batch 10] [--idle 3]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class LambdaContext:
    """The fields of the Lambda runtime's context object that Powertools reads."""

    function_name: str = "brewline-loader"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:eu-west-2:123456789012:function:brewline-loader"
    aws_request_id: str = ""


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda builds from received SQS messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-west-2",
            }
            for m in messages
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queue_url")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--idle", type=float, default=3.0)
    args = parser.parse_args()

    import boto3

    from brewline.aws import handler

    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=args.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    counts: dict[str, float] = {"invocations": 0, "messages": 0, "failed": 0}
    last = time.monotonic()
    while time.monotonic() - last < args.idle:
        received = sqs.receive_message(
            QueueUrl=args.queue_url, MaxNumberOfMessages=args.batch, WaitTimeSeconds=1
        ).get("Messages", [])
        if not received:
            continue
        counts.setdefault("first_received", time.time())
        result = handler(sqs_event(received, arn), LambdaContext(aws_request_id=str(uuid.uuid4())))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        done = [m for m in received if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=args.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        last = time.monotonic()  # idle counts from the end of the last invocation
        counts["last_done"] = time.time()
        counts["invocations"] += 1
        counts["messages"] += len(received)
        counts["failed"] += len(failed)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
