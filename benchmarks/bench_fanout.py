"""The cloud shape at scale: one Lambda invocation per batch of S3 notifications,
many at once, all committing into one PostgreSQL (run by `make bench`).

On local services: moto's server for S3 and Secrets Manager, and a throwaway
PostgreSQL cluster at default durability (fsync on). Uploads the ``small`` shape
of ``bench_load.py`` (3,400 real-sized files: 100 branches x 34 days) and makes
the S3 event notification of each object (the standard JSON S3 sends to SQS).
Then, for each worker count (1, 2, 4, 8), into a fresh database: N worker
processes take batches of 10 notifications (``--batch``) from a shared queue and call
``brewline.aws.handler`` with each as an SQS event, exactly as Lambda's SQS poller
does. **Every batch is delivered twice** (at-least-once delivery), in a
shuffled order. Reports the wall time (cold starts included), the steady time
(first batch taken to last batch done), the sales per second, the CPU seconds
moto spent serving S3 (it shares the 2 cores), and whether the result is
exactly once: every file loaded once, no sale twice, the ledger's rows equal to
the facts. Beside them, in the same cluster: one ``brewline run`` over the same
files from a folder, and from the bucket (``brewline run s3://…``).

The batches come from a local queue, not moto's SQS: moto's queue costs grow
with its length (3,400 messages took 135 s to send and 0.2 s per receive on this
machine), which would measure moto. SQS's own semantics (visibility, partial
batch failures, redrive to a dead-letter queue) are tested against moto's SQS
in ``tests/aws/test_lambda.py``.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated worker counts")
    parser.add_argument("--files", type=int, default=3400)
    parser.add_argument(
        "--batch", type=int, default=10, help="notifications per invocation (SQS batch size)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from tests.motoserver import MotoServer
    from tests.pgcluster import PostgresServer

    files = sorted(landing("small").glob("*.csv"))[: args.files]
    results: dict[str, Any] = {"cores": os.cpu_count(), "files": len(files), "batch": args.batch}
    moto, pg = MotoServer(), PostgresServer(durable=True)
    try:
        moto.apply()
        secret = _stack()
        started = time.perf_counter()
        _upload(files)
        results["upload_s"] = round(time.perf_counter() - started, 1)
        folder = _folder(files)
        results["one_run_folder_s"] = round(brewline_run(folder, pg.database())["seconds"], 1)
        shutil.rmtree(folder)
        results["one_run_s3_s"] = round(_run_s3(pg.database()), 1)
        batches = [
            [_notification(f"landing/{p.name}") for p in files[i : i + args.batch]]
            for i in range(0, len(files), args.batch)
        ]
        rounds = []
        for workers in (int(n) for n in args.workers.split(",")):
            warehouse = pg.database()
            _set_secret(secret, warehouse)
            os.environ.update(BREWLINE_SECRET_ID=secret)
            rounds.append({"workers": workers, **_fan_out(workers, batches, moto.process.pid)})
            rounds[-1].update(_outcome(warehouse, len(files)))
        results["rounds"] = rounds
    finally:
        pg.remove()
        moto.stop()
    _print(results, as_json=args.json)
    if not all(r["exactly_once"] for r in results["rounds"]):
        raise SystemExit("NOT exactly once: see the figures above")


def _stack() -> str:
    """The bucket and the secret (its ARN)."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    secret = boto3.client("secretsmanager").create_secret(Name=BUCKET, SecretString="{}")
    for name in [k for k in os.environ if k.startswith("BREWLINE_")]:
        del os.environ[name]
    os.environ["BREWLINE_QUARANTINE"] = f"s3://{BUCKET}/_quarantine/"
    return str(secret["ARN"])


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


def _notification(key: str) -> str:
    """The body S3 sends to SQS for a new object (the fields Brewline reads, and more)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-2",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key.replace(" ", "+")}},
    }
    return json.dumps({"Records": [record]})


def _run_s3(warehouse: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
        command = [
            str(Path(sys.executable).parent / "brewline"), "run", f"s3://{BUCKET}/landing/",
            "-w", warehouse, "--json", "--no-alert", "--quarantine", f"s3://{BUCKET}/q/",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=tmp)
        return time.perf_counter() - started


def _worker(jobs: Any, done: Any) -> None:
    """One Lambda container: take batches until told to stop, report counts and times."""
    import logging
    import uuid
    from contextlib import redirect_stdout

    from tests.aws.sqs_worker import LambdaContext, sqs_event

    from brewline.aws import handler

    discard = open(os.devnull, "w")  # noqa: SIM115 - for the worker's life
    for log_handler in logging.getLogger("brewline").handlers:  # JSON logs: made, not shown
        if isinstance(log_handler, logging.StreamHandler):
            log_handler.setStream(discard)

    counts: dict[str, float] = {"invocations": 0, "failed": 0}
    while (batch := jobs.get()) is not None:
        counts.setdefault("first", time.time())
        received = [
            {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "", "Body": body} for body in batch
        ]
        event = sqs_event(received, "arn:aws:sqs:eu-west-2:123456789012:fanout")
        with redirect_stdout(discard):  # its metrics
            result = handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))
        counts["failed"] += len(result["batchItemFailures"])
        counts["invocations"] += 1
        counts["last"] = time.time()
    done.put(counts)


def _fan_out(workers: int, batches: list[list[str]], moto_pid: int) -> dict[str, Any]:
    import multiprocessing
    import random

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: a cold start
    jobs, done = context.Queue(), context.Queue()
    deliveries = batches + batches  # at-least-once: every batch twice
    random.Random(workers).shuffle(deliveries)
    for batch in deliveries:
        jobs.put(batch)
    for _ in range(workers):
        jobs.put(None)
    moto_cpu = _cpu_seconds(moto_pid)
    started = time.perf_counter()
    processes = [context.Process(target=_worker, args=(jobs, done)) for _ in range(workers)]
    for process in processes:
        process.start()
    counts = [done.get() for _ in processes]
    for process in processes:
        process.join()
    wall = time.perf_counter() - started
    busy = [c for c in counts if c["invocations"]]
    return {
        "wall_s": round(wall, 1),
        "steady_s": round(max(c["last"] for c in busy) - min(c["first"] for c in busy), 1),
        "invocations": sum(int(c["invocations"]) for c in counts),
        "failed_messages": sum(int(c["failed"]) for c in counts),
        "moto_cpu_s": round(_cpu_seconds(moto_pid) - moto_cpu, 1),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    print(
        f"{'workers':>7} {'wall s':>7} {'steady s':>8} {'sales/s':>8} {'calls':>6} "
        f"{'moto cpu s':>10} exactly once"
    )
    for r in results["rounds"]:
        rate = r["sales"] / max(r["steady_s"], 0.1)
        print(
            f"{r['workers']:>7} {r['wall_s']:>7} {r['steady_s']:>8} {rate:>8,.0f} "
            f"{r['invocations']:>6} {r['moto_cpu_s']:>10} {r['exactly_once']}"
        )


if __name__ == "__main__":
    main()
