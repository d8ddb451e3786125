"""An S3 prefix (or any S3-compatible store) as a landing area.

    $ brewline run s3://cafe-landing/landing/

A delivery is an object: its name is ``bucket/key`` (the same on every
machine), its arrival time the object's ``LastModified``. Objects are read with
obstore (Rust, concurrent): against a local endpoint it read 3,400 real-sized
objects in 14 s where boto3 took 22 s (``benchmarks/bench_s3_clients.py``).
The AWS configuration is boto3's, the reference for it: credentials from the
standard chain (environment, profile, SSO, container and instance roles),
the region, and ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` / a profile's
``endpoint_url`` for S3-compatible stores (MinIO, moto, ...).

Quarantine files go to ``s3://bucket/_quarantine/`` by default: outside the
landing prefix, so the bucket's notifications never fire for them, and one
lifecycle rule can expire them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from brewline.errors import ConfigError, first_line
from brewline.sources import (
    Delivery,
    Quarantine,
    Source,
    delivery_order,
    is_delivery_name,
    is_ignored_name,
)

if TYPE_CHECKING:
    import boto3
    from obstore.store import S3Store

__all__ = [
    "S3Prefix",
    "S3Quarantine",
    "S3Source",
    "is_s3",
    "not_found",
    "require_credentials",
    "s3_store",
]

QUARANTINE_PREFIX = "_quarantine/"
READ_CONCURRENCY = 16
"""Objects fetched at once: enough to hide S3's per-request latency."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def is_s3(location: object) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


@dataclass(frozen=True)
class S3Prefix:
    """``s3://bucket/prefix/`` taken apart; the prefix is empty or ends with ``/``."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Prefix:
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise ConfigError(
                f"{url!r} is not an S3 location: write s3://BUCKET/PREFIX/ "
                "(bucket names are 3-63 lower-case letters, digits, dots and hyphens)"
            )
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(bucket, prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class S3Quarantine(Quarantine):
    """Quarantine objects under a prefix; an S3 PUT is atomic, so no temp object is needed."""

    def __init__(self, where: S3Prefix):
        self.where = where

    def __str__(self) -> str:
        return str(self.where)

    def put(self, name: str, content: bytes) -> str:
        import obstore

        key = self.where.prefix + name
        with _as_os_error(f"s3://{self.where.bucket}/{key}"):
            obstore.put(s3_store(self.where.bucket), key, content)
        return f"s3://{self.where.bucket}/{key}"


class S3Source(Source):
    """The CSV objects under a prefix, or just the named keys (an event's objects).

    Keys under the quarantine prefix, hidden keys and quarantine files are not
    deliveries, whichever way they were named.
    """

    def __init__(
        self,
        landing: S3Prefix,
        *,
        quarantine: S3Prefix | None = None,
        keys: Sequence[str] | None = None,
    ):
        self.landing = landing
        self.quarantine: S3Quarantine = S3Quarantine(
            quarantine or S3Prefix(landing.bucket, QUARANTINE_PREFIX)
        )
        self.keys = None if keys is None else list(dict.fromkeys(keys))
        self._fetched: dict[str, bytes | OSError] = {}

    def deliveries(self) -> list[Delivery]:
        """Listed under the prefix; or, for named keys, fetched whole at once: an event's
        objects are few and about to be read, so one GET each serves as listing and read."""
        import obstore

        store = s3_store(self.landing.bucket)
        if self.keys is not None:
            return sorted(self._get_named(store), key=delivery_order)
        with _as_os_error(str(self.landing), listing=True):
            found = [
                dict(meta)
                for batch in obstore.list(store, prefix=self.landing.prefix or None)
                for meta in batch
            ]
        keys = [str(m["path"]) for m in found]
        self.ignored = [
            f"{self.landing.bucket}/{key}"
            for key in keys
            if not self._is_delivery(key) and self._is_other_file(key)
        ]
        return sorted(
            (_delivery(self.landing.bucket, m) for m in found if self._is_delivery(str(m["path"]))),
            key=delivery_order,
        )

    def _get_named(self, store: S3Store) -> list[Delivery]:
        """GET each named delivery; a key that is gone (deleted since its event) is skipped,
        one that cannot be read is a delivery whose read fails (reported, retried)."""
        import obstore
        from obstore.exceptions import BaseError

        wanted = [k for k in self.keys or () if self._is_delivery(k)]

        async def one(key: str) -> Delivery | None:
            name = f"{self.landing.bucket}/{key}"
            try:
                result = await obstore.get_async(store, key)
                self._fetched[key] = bytes(await result.bytes_async())
                return _delivery(self.landing.bucket, dict(result.meta))
            except (BaseError, OSError) as exc:
                if not_found(exc):
                    return None
                self._fetched[key] = _os_error(name, exc)
                return Delivery(name, size=0, arrived=0.0, ref=key)

        async def every() -> list[Delivery | None]:
            limit = asyncio.Semaphore(READ_CONCURRENCY)

            async def limited(key: str) -> Delivery | None:
                async with limit:
                    return await one(key)

            return list(await asyncio.gather(*(limited(k) for k in wanted)))

        return [d for d in asyncio.run(every()) if d is not None]

    def read(self, delivery: Delivery) -> bytes:
        import obstore

        with _as_os_error(delivery.name):
            return bytes(obstore.get(s3_store(self.landing.bucket), delivery.ref).bytes())

    def read_all(self, deliveries: Sequence[Delivery]) -> Iterator[bytes | OSError]:
        """Fetch a batch's objects concurrently (those not fetched yet), yielding them in order."""
        missing = [d for d in deliveries if d.ref not in self._fetched]
        for delivery, data in zip(missing, asyncio.run(self._fetch(missing)), strict=True):
            self._fetched[delivery.ref] = data
        for delivery in deliveries:
            yield self._fetched.pop(delivery.ref)

    async def _fetch(self, deliveries: Sequence[Delivery]) -> list[bytes | OSError]:
        import obstore

        store = s3_store(self.landing.bucket)
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(delivery: Delivery) -> bytes | OSError:
            async with limit:
                try:
                    with _as_os_error(delivery.name):
                        result = await obstore.get_async(store, delivery.ref)
                        return bytes(await result.bytes_async())
                except OSError as exc:
                    return exc

        return list(await asyncio.gather(*(one(d) for d in deliveries)))

    def _is_delivery(self, key: str) -> bool:
        return self._landed(key) and is_delivery_name(key.removeprefix(self.landing.prefix))

    def _is_other_file(self, key: str) -> bool:
        return self._landed(key) and is_ignored_name(key.removeprefix(self.landing.prefix))

    def _landed(self, key: str) -> bool:
        """Under the landing prefix and not under the quarantine one."""
        quarantine = self.quarantine.where
        if quarantine.bucket == self.landing.bucket and key.startswith(quarantine.prefix):
            return False
        return key.startswith(self.landing.prefix)


def _delivery(bucket: str, meta: dict[str, Any]) -> Delivery:
    return Delivery(
        f"{bucket}/{meta['path']}",
        size=int(meta["size"]),
        arrived=meta["last_modified"].timestamp(),
        ref=str(meta["path"]),
    )


@contextmanager
def _as_os_error(what: str, *, listing: bool = False) -> Iterator[None]:
    """Store errors as one readable line: ``OSError`` for an object (the pipeline
    reports the file failed), ``ConfigError`` for a listing (nothing can start)."""
    from obstore.exceptions import BaseError

    try:
        yield
    except (BaseError, OSError) as exc:  # obstore raises its own errors and some builtin ones
        error = _os_error(what, exc, verb="list" if listing else "read")
        if listing:
            raise ConfigError(str(error)) from None
        raise error from None


def _os_error(what: str, exc: BaseException, *, verb: str = "read") -> OSError:
    from obstore.exceptions import PermissionDeniedError

    detail = str(exc)
    if not_found(exc):
        problem = "no such bucket or object"
    elif isinstance(exc, PermissionError | PermissionDeniedError) or "code: 403" in detail:
        problem = "access denied; check the AWS credentials and the bucket policy"
    else:
        problem = first_line(exc)[:200]
    return OSError(f"cannot {verb} {what}: {problem}")


def not_found(exc: BaseException) -> bool:
    """Whether a store error means the object (or bucket) is not there."""
    from obstore.exceptions import NotFoundError

    return isinstance(exc, FileNotFoundError | NotFoundError) or "status code: 404" in str(exc)


def require_credentials(session: boto3.Session, needed_for: str) -> None:
    """One line saying what to set when the standard chain finds no AWS credentials.

    Without it obstore's credential provider, or a boto3 client's first call, fails
    deep inside with a long traceback. The session caches what it found, so its
    clients do not look again.
    """
    if session.get_credentials() is None:
        raise ConfigError(
            f"no AWS credentials found for {needed_for}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (e.g. after `aws sso login`), "
            "or run where an instance or container role applies"
        )


@cache
def s3_store(bucket: str) -> S3Store:
    """One store per bucket, configured the way boto3 would be."""
    import boto3
    import botocore.session
    from obstore.auth.boto3 import Boto3CredentialProvider
    from obstore.store import S3Store

    core = botocore.session.get_session()
    session = boto3.Session(botocore_session=core)
    require_credentials(session, f"s3://{bucket}")
    endpoint = (  # a custom endpoint from the standard AWS settings, S3-specific first
        os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or core.get_config_variable("endpoint_url")
    )
    options: dict[str, Any] = {"region": session.region_name or "us-east-1"}
    if endpoint:
        options["endpoint"] = endpoint
        options["virtual_hosted_style_request"] = False
    return S3Store(
        bucket,
        credential_provider=Boto3CredentialProvider(session),
        client_options={
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "connect_timeout": "5s",
            "timeout": "60s",
        },
        # A store that is down fails the run in about half a minute, not obstore's 3 minutes.
        retry_config={
            "max_retries": 4,
            "retry_timeout": dt.timedelta(seconds=30),
            "backoff": {
                "init_backoff": dt.timedelta(milliseconds=200),
                "base": 2,
                "max_backoff": dt.timedelta(seconds=8),
            },
        },
        **options,
    )
