"""The Lambda handlers against real local services: S3 notifications on a real SQS
queue (moto server), the secret in Secrets Manager, a real PostgreSQL warehouse."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from tests.aws.conftest import Stack
from tests.aws.sqs_worker import LambdaContext, sqs_event
from tests.conftest import PII_KEY
from tests.pgcluster import PostgresServer

from brewline.aws import check_handler, handler
from brewline.events import messages

pytestmark = pytest.mark.postgres

WORKER = Path(__file__).with_name("sqs_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def real_exports(shared_exports: Path, n: int | None = None) -> list[Path]:
    return sorted((shared_exports / "coffeetl-2024-12-18").glob("*.csv"))[:n]


def upload(stack: Stack, paths: list[Path], prefix: str = "landing/") -> None:
    s3 = boto3.client("s3")
    for path in paths:
        s3.put_object(Bucket=stack.bucket, Key=prefix + path.name, Body=path.read_bytes())


def receive(queue_url: str, n: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Exactly ``n`` messages (left on the queue, invisible for its timeout)."""
    sqs, got, deadline = boto3.client("sqs"), [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(10, n - len(got)), WaitTimeSeconds=1
        ).get("Messages", [])
    assert len(got) == n, f"expected {n} messages, got {len(got)}"
    return got


def queue_arn(url: str) -> str:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return str(attributes["Attributes"]["QueueArn"])


def ledger(stack: Stack) -> dict[str, int]:
    with psycopg.connect(stack.warehouse) as con:
        files = dict(con.execute("SELECT state, count(*) FROM etl_file GROUP BY 1").fetchall())
        sales = con.execute("SELECT count(*) FROM fact_sale").fetchone()
        names = con.execute("SELECT count(DISTINCT source_name) FROM etl_file").fetchone()
    assert sales is not None
    assert names is not None
    return {**files, "sales": sales[0], "names": names[0]}


def personal_data(paths: list[Path]) -> set[str]:
    """Customer names and card numbers in these exports (columns 3 and 7)."""
    found: set[str] = set()
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                if len(row) >= 7:
                    found |= {
                        v for v in (row[2], row[6]) if (len(v) > 4 and not v.isalpha()) or " " in v
                    }
    return found


def emf(out: str) -> list[dict[str, Any]]:
    """The Embedded Metric Format documents printed."""
    docs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for d in docs if "_aws" in d]


def test_s3_events_through_sqs_load_once_even_redelivered_with_json_logs_and_metrics(
    stack: Stack, shared_exports: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    paths = real_exports(shared_exports, 4)
    upload(stack, paths)
    event = sqs_event(receive(stack.queue_url, 4), queue_arn(stack.queue_url))
    assert handler(event, LambdaContext(aws_request_id="r1")) == {"batchItemFailures": []}
    first = ledger(stack)
    assert first["loaded"] == 4
    assert first["names"] == 4
    assert first["sales"] > 0

    # At-least-once delivery: the same messages again change nothing.
    assert handler(event, LambdaContext(aws_request_id="r2")) == {"batchItemFailures": []}
    assert ledger(stack) == first

    out, err = capfd.readouterr()
    metrics = emf(out)
    assert [d["FilesLoaded"] for d in metrics] == [[4], [0]]
    assert [d["FilesSkipped"] for d in metrics] == [[0], [4]]
    assert all(d["service"] == "brewline" for d in metrics)
    assert {m["Namespace"] for d in metrics for m in d["_aws"]["CloudWatchMetrics"]} == {"Brewline"}
    leaked = [v for v in personal_data(paths) if v in out or v in err]
    assert not leaked, f"personal data in the Lambda's output: {leaked[:3]}"


def test_a_poison_message_alone_is_retried_then_dead_lettered_while_the_rest_load(
    stack: Stack, shared_exports: Path
) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="this is not an S3 event")
    paths = real_exports(shared_exports, 3)
    upload(stack, paths)
    env = {**os.environ, **stack.env}
    output = ""
    for _ in range(3):  # maxReceiveCount is 2: the third receive moves it to the DLQ
        done = subprocess.run(
            [sys.executable, str(WORKER), stack.queue_url, "--idle", "3"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        output += done.stdout + done.stderr
        time.sleep(2.5)  # the failed message's visibility timeout
    assert ledger(stack)["loaded"] == 3
    # JSON log lines carrying the run id; the poison message said why it is retried.
    logs = [json.loads(line) for line in output.splitlines() if line.startswith('{"level"')]
    finished = [line for line in logs if line["message"] == "run finished"]
    assert finished
    assert all(line["run_id"] for line in finished)
    assert sum(line["files"]["loaded"] for line in finished) == 3
    assert all(f["rows_read"] == f["rows_loaded"] + f["rows_rejected"] for f in finished)
    assert any("not an S3 event notification" in line["message"] for line in logs)
    leaked = [v for v in personal_data(paths) if v in output]
    assert not leaked, f"personal data in the Lambda's output: {leaked[:3]}"
    dead = sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    assert [m["Body"] for m in dead.get("Messages", [])] == ["this is not an S3 event"]


def test_a_direct_s3_event_loads_and_failures_raise_so_lambda_retries(
    stack: Stack, shared_exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = real_exports(shared_exports, 1)[0]
    upload(stack, [path], prefix="landing/with space ")
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": stack.bucket},
                    "object": {"key": f"landing/with+space+{path.name}"},
                },
            }
        ]
    }
    assert handler(event, LambdaContext()) == {"retry": []}
    assert ledger(stack)["loaded"] == 1
    assert (
        messages({"Records": [{"eventSource": "aws:s3", "eventName": "s3:TestEvent"}]})[0].objects
        == ()
    )

    from brewline import aws as brewline_aws

    monkeypatch.setenv("BREWLINE_SECRET_ID", "no-such-secret")
    brewline_aws._secret.cache_clear()
    with pytest.raises(Exception, match="cannot read the secret 'no-such-secret'"):
        handler(event, LambdaContext())
    sqs_shaped = sqs_event(
        [{"MessageId": "m1", "ReceiptHandle": "h", "Body": json.dumps(event)}], "arn"
    )
    assert handler(sqs_shaped, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_racing_invocations_and_eight_concurrent_workers_load_everything_exactly_once(
    stack: Stack, shared_exports: Path
) -> None:
    paths = real_exports(shared_exports)
    upload(stack, paths)
    upload(stack, paths)  # every object delivered twice: two notifications each
    env = {**os.environ, **stack.env}
    started = time.monotonic()
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), stack.queue_url, "--batch", "5", "--idle", "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(8)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-500:] for _, err in outputs]
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    left = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["All"]
    )["Attributes"]
    assert sum(c["failed"] for c in counts) == 0
    assert sum(c["messages"] for c in counts) >= 2 * len(paths), (counts, left)
    assert sum(1 for c in counts if c["invocations"]) >= 2  # the work really fanned out
    after = ledger(stack)
    assert after["names"] == len(paths)
    assert after["loaded"] == len(paths)
    with psycopg.connect(stack.warehouse) as con:
        rows = con.execute("SELECT sum(rows_loaded), sum(rows_read) FROM etl_file").fetchone()
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT sale_key FROM fact_sale GROUP BY 1 HAVING count(*) > 1) d"
        ).fetchone()
    assert rows is not None
    assert dupes == (0,)
    assert after["sales"] == rows[0]
    print(f"{len(paths)} files, 8 workers: {time.monotonic() - started:.1f}s")


def test_the_check_handler_publishes_failures_to_sns_with_metrics(
    stack: Stack, shared_exports: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    upload(stack, real_exports(shared_exports, 2))
    event = sqs_event(receive(stack.queue_url, 2), queue_arn(stack.queue_url))
    assert handler(event, LambdaContext()) == {"batchItemFailures": []}
    capfd.readouterr()
    # A week after the exports' day, nothing is fresh: the freshness checks fail.
    result = check_handler({"as_of": "2024-12-25"}, LambdaContext())
    assert result["failed"] >= 2
    out, _ = capfd.readouterr()
    assert [d["ChecksFailed"] for d in emf(out)] == [[result["failed"]]]
    got = boto3.client("sqs").receive_message(
        QueueUrl=stack.alerts_url, MaxNumberOfMessages=10, WaitTimeSeconds=2
    )
    bodies = [m["Body"] for m in got.get("Messages", [])]
    assert len(bodies) == result["failed"] or len(bodies) == 10
    assert all(b.startswith("Brewline check failed: freshness") for b in bodies), bodies


def totesys_syncer(
    stack: Stack,
    postgres_server: PostgresServer | None,
    monkeypatch: pytest.MonkeyPatch,
    *,
    sales_orders: int,
    seed: int,
) -> str:
    """A filled totesys source in the secret and a lake on S3, as the Syncer is deployed:
    the source's URL."""
    from brewline import aws as brewline_aws
    from brewline.totesys.generate import create_source, fill

    if postgres_server is None:
        pytest.skip("needs the suite's own cluster for a second database")
    source = postgres_server.database()
    create_source(source)
    fill(source, sales_orders=sales_orders, seed=seed)
    value = {"warehouse": stack.warehouse, "pii_key": PII_KEY, "totesys_source": source}
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.secret_id, SecretString=json.dumps(value)
    )
    brewline_aws._secret.cache_clear()
    brewline_aws._settings.cache_clear()
    monkeypatch.setenv("BREWLINE_TOTESYS_LAKE", f"s3://{stack.bucket}/totesys-lake/")
    return source


def test_the_sync_handler_syncs_totesys_from_the_secret_into_an_s3_lake(
    stack: Stack,
    postgres_server: PostgresServer | None,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from brewline import aws as brewline_aws

    totesys_syncer(stack, postgres_server, monkeypatch, sales_orders=200, seed=5)
    first = brewline_aws.sync_handler({}, LambdaContext())
    assert first["loaded"]
    assert first["rows_extracted"]["sales_order"] == 200
    again = brewline_aws.sync_handler({}, LambdaContext())
    assert not again["loaded"]
    assert sum(again["rows_extracted"].values()) == 0
    metrics = emf(capfd.readouterr().out)
    assert [d["RowsExtracted"] for d in metrics][-2][0] > 0
    assert all("SyncLagSeconds" in d for d in metrics)
    keys = boto3.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix="totesys-lake/")
    assert any(o["Key"].endswith("star/_current.json") for o in keys["Contents"])


def alerts(stack: Stack) -> list[str]:
    """The titles of the alerts published to the topic since the last call (consumed)."""
    sqs, bodies = boto3.client("sqs"), []
    while True:
        got = sqs.receive_message(
            QueueUrl=stack.alerts_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(message["Body"].splitlines()[0])
            sqs.delete_message(QueueUrl=stack.alerts_url, ReceiptHandle=message["ReceiptHandle"])


def test_the_check_handler_reconciles_the_syncers_source_with_the_lake_and_alerts(
    stack: Stack,
    postgres_server: PostgresServer | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brewline import aws as brewline_aws

    source = totesys_syncer(stack, postgres_server, monkeypatch, sales_orders=100, seed=9)
    assert brewline_aws.sync_handler({}, LambdaContext())["loaded"]
    reconciliation = "Brewline check failed: totesys_reconciliation"

    def checked() -> tuple[int, list[str]]:
        """Failed checks, and the reconciliation alerts that reached the topic."""
        failed = check_handler({}, LambdaContext())["failed"]
        return failed, [a for a in alerts(stack) if a.startswith(reconciliation)]

    alerts(stack)
    agreeing, alerted = checked()  # other checks may fail (no cafe data): not these
    assert alerted == []
    with psycopg.connect(source, autocommit=True) as con:  # a row the lake still holds
        con.execute("DELETE FROM payment WHERE payment_id = (SELECT max(payment_id) FROM payment)")
    differing, alerted = checked()
    assert alerted == [f"{reconciliation}, totesys.payment"]
    assert differing == agreeing + 1
