"""Which S3 client Brewline's S3 source uses: listing and reading a few thousand objects.

Starts moto's S3 server on a free local port, uploads the 3,400 real-shape files
of ``bench_load.py``'s ``small`` shape, then times listing the prefix and reading
every object with boto3 (sequential and with a thread pool) and with obstore
(sequential and concurrent). A local endpoint measures the clients' own costs,
not the network; moto's per-request cost is included in every figure alike.

    python benchmarks/bench_s3_clients.py [--objects N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import landing

BUCKET = "bench-landing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=3400)
    args = parser.parse_args()
    import boto3
    import obstore
    from obstore.store import S3Store

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="eu-west-2"
        )
        s3 = boto3.client("s3", endpoint_url=endpoint)
        for _ in range(100):
            try:
                s3.list_buckets()
                break
            except Exception:
                time.sleep(0.1)
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        files = sorted(landing("small").glob("*.csv"))[: args.objects]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda p: s3.upload_file(str(p), BUCKET, f"landing/{p.name}"), files))
        print(f"cores: {os.cpu_count()}  objects: {len(files)}")

        def timed(label: str, work) -> None:  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            n = work()
            print(f"  {label:<34} {time.perf_counter() - started:6.2f} s  ({n})")

        def boto_list() -> int:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="landing/")
            return sum(len(p.get("Contents", [])) for p in pages)

        keys = [f"landing/{p.name}" for p in files]

        def boto_get(key: str) -> int:
            return len(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

        store = S3Store(
            BUCKET, endpoint=endpoint, region="eu-west-2", client_options={"allow_http": True}
        )

        def obstore_list() -> int:
            return sum(len(batch) for batch in obstore.list(store, prefix="landing/"))

        async def obstore_all() -> int:
            limit = asyncio.Semaphore(16)

            async def one(key: str) -> int:
                async with limit:
                    result = await obstore.get_async(store, key)
                    return len(await result.bytes_async())

            return sum(await asyncio.gather(*(one(k) for k in keys)))

        timed("boto3 list", boto_list)
        timed("obstore list", obstore_list)
        timed("boto3 get, sequential", lambda: sum(map(boto_get, keys)))
        with ThreadPoolExecutor(16) as pool:
            timed("boto3 get, 16 threads", lambda: sum(pool.map(boto_get, keys)))
        timed(
            "obstore get, sequential", lambda: sum(len(obstore.get(store, k).bytes()) for k in keys)
        )
        timed("obstore get, 16 concurrent", lambda: asyncio.run(obstore_all()))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
