"""The cloud shape at scale: one Lambda invocation per SQS batch, many at once, all
committing into one PostgreSQL (run by `make bench`).

Builds the stack of ``deploy/aws/template.yaml`` on local services: moto's
server (S3 -> SQS notifications, the secret) and a throwaway PostgreSQL cluster
at default durability. Uploads the ``small`` shape of ``bench_load.py`` (3,400
real-sized files: 100 branches x 34 days), then starts N worker processes, each
doing what the Lambda service does for an SQS event source (``tests/aws/sqs_worker.py``:
receive up to 10 messages, call ``brewline.aws.handler``, delete what it did not
report failed). Measures the wall time from the first worker's start to an empty
queue (cold starts included), the steady time from the first message received
to the last handled, and checks the result is exactly once: every file loaded once, no sale
twice, the ledger's rows equal to the facts. Beside it, the floor of the same run
in the same cluster: one ``brewline run`` process over the same files from a folder.

    python benchmarks/bench_fanout.py [--workers 8] [--files 3400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_load import brewline_run, landing  # noqa: E402

KEY = "benchmark-key-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--files", type=int, default=3400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import psycopg
    from tests.motoserver import MotoServer
    from tests.pgcluster import PostgresServer

    files = sorted(landing("small").glob("*.csv"))[: args.files]
    moto, pg = MotoServer(), PostgresServer(durable=True)
    try:
        moto.apply()
        warehouse = pg.database()
        url, secret = _stack(warehouse)
        started = time.perf_counter()
        _upload(files)
        uploaded = time.perf_counter() - started
        env = {
            **os.environ,
            **moto.env,
            "BREWLINE_SECRET_ID": secret,
            "BREWLINE_QUARANTINE": "s3://fanout/_quarantine/",
        }
        started = time.perf_counter()
        workers = [
            subprocess.Popen(
                [sys.executable, str(ROOT / "tests/aws/sqs_worker.py"), url, "--idle", "5"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            for _ in range(args.workers)
        ]
        outputs = [w.communicate()[0] for w in workers]
        seconds = time.perf_counter() - started - 5  # less the final idle wait
        counts = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
        busy = [c for c in counts if c["invocations"]]
        # From the first message received (every worker started) to the last one handled.
        steady = max(c["last_done"] for c in busy) - min(c["first_received"] for c in busy)
        if os.environ.get("BENCH_LOG"):
            Path(os.environ["BENCH_LOG"]).write_text("".join(outputs))
        with psycopg.connect(warehouse) as con:
            loaded, names, rows = con.execute(
                "SELECT count(*) FILTER (WHERE state = 'loaded'), count(DISTINCT source_name), "
                "sum(rows_loaded) FROM etl_file"
            ).fetchone()  # type: ignore[misc]
            sales = con.execute("SELECT count(*) FROM fact_sale").fetchone()[0]  # type: ignore[index]
            twice = con.execute(
                "SELECT count(*) FROM (SELECT sale_key FROM fact_sale GROUP BY 1 "
                "HAVING count(*) > 1) d"
            ).fetchone()[0]  # type: ignore[index]
        floor_db = pg.database()
        floor = brewline_run(landing("small") if args.files >= 3400 else _subset(files), floor_db)
    finally:
        pg.remove()
        moto.stop()
    results = {
        "cores": os.cpu_count(),
        "workers": args.workers,
        "files": len(files),
        "sales": sales,
        "upload_s": round(uploaded, 1),
        "fanout_s": round(seconds, 1),
        "fanout_sales_per_s": round(sales / seconds),
        "steady_s": round(steady, 1),
        "steady_sales_per_s": round(sales / steady),
        "invocations": sum(c["invocations"] for c in counts),
        "messages": sum(c["messages"] for c in counts),
        "failed_messages": sum(c["failed"] for c in counts),
        "exactly_once": loaded == names == len(files) and rows == sales and twice == 0,
        "one_run_floor_s": round(floor["seconds"], 1),
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, value in results.items():
            print(f"  {name:<20} {value}")
    if not results["exactly_once"]:
        raise SystemExit("NOT exactly once: see the figures above")


def _stack(warehouse: str) -> tuple[str, str]:
    """The bucket notifying its queue, and the secret: the queue URL and the secret ARN."""
    import boto3

    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket="fanout", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    url = sqs.create_queue(QueueName="fanout", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket="fanout",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.purge_queue(QueueUrl=url)  # the s3:TestEvent
    secret = boto3.client("secretsmanager").create_secret(
        Name="fanout", SecretString=json.dumps({"warehouse": warehouse, "pii_key": KEY})
    )
    return str(url), str(secret["ARN"])


def _upload(files: list[Path]) -> None:
    import boto3

    s3 = boto3.client("s3")

    def put(path: Path) -> None:
        s3.put_object(Bucket="fanout", Key=f"landing/{path.name}", Body=path.read_bytes())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))  # re-raises the first failure


def _outcome(warehouse: str) -> tuple[int, int, int, int, int]:
    """Files loaded, distinct names, ledger rows, fact rows, and sales stored twice."""
    import psycopg

    with psycopg.connect(warehouse) as con:
        row = con.execute(
            "SELECT count(*) FILTER (WHERE state = 'loaded'), count(DISTINCT source_name), "
            "sum(rows_loaded), (SELECT count(*) FROM fact_sale), (SELECT count(*) FROM "
            "(SELECT sale_key FROM fact_sale GROUP BY 1 HAVING count(*) > 1) d) FROM etl_file"
        ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))


def _subset(files: list[Path]) -> Path:
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="fanout-floor-"))
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


if __name__ == "__main__":
    main()
