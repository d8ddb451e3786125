"""The cloud shape at scale: one Lambda invocation per SQS batch, many at once, all
committing into one PostgreSQL (run by `make bench`).

Builds the stack of ``deploy/aws/template.yaml`` on local services: moto's
server (S3 -> SQS notifications, the secret) and a throwaway PostgreSQL cluster
at default durability (fsync on). Uploads the ``small`` shape of ``bench_load.py``
(3,400 real-sized files: 100 branches x 34 days) once and keeps the notifications
S3 sent. Then, for each worker count (1, 2, 4, 8), into a fresh database: puts the
same notifications back on the queue and starts N worker processes, each doing
what the Lambda service does for an SQS event source (``tests/aws/sqs_worker.py``:
receive up to 10 messages, call ``brewline.aws.handler``, delete what it did not
report failed). Reports the wall time from the workers' start to an empty queue
(cold starts included), the steady time from the first message received to the
last handled, and whether the result is exactly once (every file loaded once, no
sale twice, the ledger's rows equal to the facts). Beside them, in the same
cluster: one ``brewline run`` over the same files from a folder, and from the
bucket (``brewline run s3://…``).

    python benchmarks/bench_fanout.py [--workers 1,2,4,8] [--files 3400] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_load import brewline_run, landing  # noqa: E402

KEY = "benchmark-key-0123456789"
BUCKET = "fanout"
IDLE = 5.0  # seconds a worker waits on an empty queue before it stops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated worker counts")
    parser.add_argument("--files", type=int, default=3400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from tests.motoserver import MotoServer
    from tests.pgcluster import PostgresServer

    files = sorted(landing("small").glob("*.csv"))[: args.files]
    results: dict[str, Any] = {"cores": os.cpu_count(), "files": len(files)}
    moto, pg = MotoServer(), PostgresServer(durable=True)
    try:
        moto.apply()
        url, secret = _stack()
        started = time.perf_counter()
        _upload(files)
        results["upload_s"] = round(time.perf_counter() - started, 1)
        notifications = _drain(url)
        folder = _folder(files)
        results["one_run_folder_s"] = round(brewline_run(folder, pg.database())["seconds"], 1)
        shutil.rmtree(folder)
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
            command = [
                str(Path(sys.executable).parent / "brewline"), "run", f"s3://{BUCKET}/landing/",
                "-w", pg.database(), "--json", "--no-alert", "--quarantine", f"s3://{BUCKET}/q/",
            ]  # fmt: skip
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env, cwd=tmp)
            results["one_run_s3_s"] = round(time.perf_counter() - started, 1)
        rounds = []
        for workers in (int(n) for n in args.workers.split(",")):
            warehouse = pg.database()
            _set_secret(secret, warehouse)
            _refill(url, notifications)
            rounds.append({"workers": workers, **_fan_out(workers, url, secret, moto.env)})
            rounds[-1].update(_outcome(warehouse, len(files)))
        results["rounds"] = rounds
    finally:
        pg.remove()
        moto.stop()
    _print(results, as_json=args.json)
    if not all(r["exactly_once"] for r in results["rounds"]):
        raise SystemExit("NOT exactly once: see the figures above")


def _stack() -> tuple[str, str]:
    """The bucket notifying its queue, and the secret: the queue URL and the secret ARN."""
    import boto3

    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    url = sqs.create_queue(QueueName=BUCKET, Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.purge_queue(QueueUrl=url)  # the s3:TestEvent
    secret = boto3.client("secretsmanager").create_secret(Name=BUCKET, SecretString="{}")
    return str(url), str(secret["ARN"])


def _set_secret(secret: str, warehouse: str) -> None:
    import boto3

    value = json.dumps({"warehouse": warehouse, "pii_key": KEY})
    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=value)


def _upload(files: list[Path]) -> None:
    import boto3

    s3 = boto3.client("s3")

    def put(path: Path) -> None:
        s3.put_object(Bucket=BUCKET, Key=f"landing/{path.name}", Body=path.read_bytes())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))  # re-raises the first failure


def _drain(url: str) -> list[str]:
    """Every notification on the queue (bodies), leaving it empty."""
    import boto3

    sqs, bodies = boto3.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


def _refill(url: str, bodies: list[str]) -> None:
    import boto3

    sqs = boto3.client("sqs")
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )


def _fan_out(workers: int, url: str, secret: str, aws_env: dict[str, str]) -> dict[str, Any]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")},
        **aws_env,
        "BREWLINE_SECRET_ID": secret,
        "BREWLINE_QUARANTINE": f"s3://{BUCKET}/_quarantine/",
    }
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "tests/aws/sqs_worker.py"), url, "--idle", str(IDLE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        for _ in range(workers)
    ]
    outputs = [p.communicate()[0] for p in processes]
    wall = time.perf_counter() - started - IDLE
    counts = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    busy = [c for c in counts if c["invocations"]]
    # From the first message received (the workers are up) to the last one handled.
    steady = max(c["last_done"] for c in busy) - min(c["first_received"] for c in busy)
    return {
        "wall_s": round(wall, 1),
        "steady_s": round(steady, 1),
        "invocations": sum(c["invocations"] for c in counts),
        "failed_messages": sum(c["failed"] for c in counts),
    }


def _outcome(warehouse: str, files: int) -> dict[str, Any]:
    """Sales loaded, their rate, and whether every file and sale is there exactly once."""
    import psycopg

    with psycopg.connect(warehouse) as con:
        row = con.execute(
            "SELECT count(*) FILTER (WHERE state = 'loaded'), count(DISTINCT source_name), "
            "sum(rows_loaded), (SELECT count(*) FROM fact_sale), (SELECT count(*) FROM "
            "(SELECT sale_key FROM fact_sale GROUP BY 1 HAVING count(*) > 1) d) FROM etl_file"
        ).fetchone()
    assert row is not None
    loaded, names, rows, sales, twice = row
    return {
        "sales": sales,
        "exactly_once": loaded == names == files and rows == sales and twice == 0,
    }


def _folder(files: list[Path]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fanout-floor-"))
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


def _print(results: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for name, value in results.items():
        if name != "rounds":
            print(f"{name}: {value}")
    print(f"{'workers':>7} {'wall s':>7} {'steady s':>8} {'sales/s':>8} {'calls':>6} exactly once")
    for r in results["rounds"]:
        rate = r["sales"] / max(r["steady_s"], 0.1)
        print(
            f"{r['workers']:>7} {r['wall_s']:>7} {r['steady_s']:>8} {rate:>8,.0f} "
            f"{r['invocations']:>6} {r['exactly_once']}"
        )


if __name__ == "__main__":
    main()
