"""The totesys lake: parquet zones in a folder or under ``s3://bucket/prefix/``.

Layout (readable by DuckDB, Polars or Athena as hive-partitioned parquet)::

    raw/<table>/extracted=<YYYY-MM-DD>/<extract_id>.parquet   immutable, one per extract
    raw/_manifests/<extract_id>.json                          what an extract wrote, last
    star/<table>.parquet                                       the modelled tables

Every write is atomic: a local file is written beside its name and renamed
(obstore's local store), an S3 object appears whole. An extract writes its
files first and its manifest last, so a manifest names only durable files;
files without a manifest (a killed extract) are never read.

    >>> lake = open_lake("lake")  # doctest: +SKIP
    >>> lake.put("raw/_manifests/x.json", b"{}")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brewline.errors import ConfigError, first_line

if TYPE_CHECKING:
    import polars as pl
    from obstore.store import LocalStore, S3Store

__all__ = ["Lake", "open_lake"]

MANIFESTS = "raw/_manifests/"


class Lake:
    """Keys relative to the lake's root, over an obstore store."""

    def __init__(self, store: LocalStore | S3Store, prefix: str, location: str):
        self._store, self._prefix, self.location = store, prefix, location

    def __str__(self) -> str:
        return self.location

    def put(self, key: str, data: bytes) -> None:
        import obstore

        with self._errors("write", key):
            obstore.put(self._store, self._prefix + key, data)

    def get(self, key: str) -> bytes:
        import obstore

        with self._errors("read", key):
            return bytes(obstore.get(self._store, self._prefix + key).bytes())

    def delete(self, keys: list[str]) -> None:
        import obstore

        with self._errors("delete", keys[0] if keys else ""):
            obstore.delete(self._store, [self._prefix + k for k in keys])

    @contextmanager
    def _errors(self, verb: str, key: str) -> Iterator[None]:
        """Store errors as one readable ``OSError`` naming the object (a missing key stays
        ``FileNotFoundError``, which callers may expect)."""
        from obstore.exceptions import BaseError

        from brewline.sources.s3 import not_found

        try:
            yield
        except (BaseError, OSError) as exc:
            if not_found(exc):
                raise FileNotFoundError(f"{self.location}/{key}: no such object") from exc
            raise OSError(
                f"cannot {verb} {self.location}/{key} in the lake: {first_line(exc)}"
            ) from None

    def get_optional(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        try:
            return self.get(key)
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        """Every key under the folder ``prefix`` (whole path segments), sorted."""
        import obstore

        with self._errors("list", prefix):
            found = [
                str(meta["path"]).removeprefix(self._prefix)
                for batch in obstore.list(self._store, prefix=self._prefix + prefix)
                for meta in batch
            ]
        return sorted(found)

    def put_parquet(self, key: str, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        # zstd level 1: a third less CPU than the default level 3 for 3% more bytes
        # (measured on the 1M-sales-order source; benchmarks/bench_totesys.py).
        frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=True)
        self.put(key, buffer.getvalue())

    def get_parquet(self, key: str) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(io.BytesIO(self.get(key)))

    def put_json(self, key: str, payload: dict[str, Any]) -> None:
        self.put(key, json.dumps(payload, indent=1, sort_keys=True).encode())

    def manifests(self) -> list[dict[str, Any]]:
        """Every extract's manifest, oldest first (extract ids sort by time)."""
        return [json.loads(self.get(key)) for key in self.keys(MANIFESTS) if key.endswith(".json")]


def open_lake(location: str | Path) -> Lake:
    """A folder (created if missing) or ``s3://bucket/prefix/``."""
    text = str(location)
    if text.startswith("s3://"):
        from brewline.sources.s3 import S3Prefix, s3_store

        where = S3Prefix.parse(text)
        return Lake(s3_store(where.bucket), where.prefix, str(where))
    if "://" in text:
        raise ConfigError(f"{text!r}: a lake is a folder or an s3:// location")
    from obstore.store import LocalStore

    folder = Path(text).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the lake folder {folder}: {exc.strerror}") from None
    return Lake(LocalStore(folder, automatic_cleanup=True), "", str(folder))
