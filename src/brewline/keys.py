"""Deterministic surrogate keys from natural keys.

Keys come from a stable hash (BLAKE2b), never Python's ``hash()``, so every
worker computes the same key without asking the database and a re-run
produces the same keys. A sale's natural key is (source file, line): its key
packs the file's key and the line number, so no hashing per row is needed.

    >>> stable_key("branch", "Leeds") == stable_key("branch", "Leeds")
    True
    >>> sale_key_base("leeds_09-05-2023.csv") % LINE_SPACE
    0
"""

from __future__ import annotations

import hashlib

__all__ = ["LINE_BITS", "LINE_SPACE", "file_id", "sale_key_base", "stable_key"]

_MASK63 = (1 << 63) - 1
LINE_BITS = 20
"""A file may have up to 2**20 - 1 lines (a till day has a few thousand)."""
LINE_SPACE = 1 << LINE_BITS
_FILE_BITS = 62 - LINE_BITS


def stable_key(namespace: str, *parts: str | None) -> int:
    """A positive 63-bit key for a tuple of strings; None and "" are distinct.

    Each part is length-prefixed, so no content can forge a part boundary.
    """
    encoded = [f"{len(p)}:{p}" if p is not None else "-" for p in (namespace, *parts)]
    digest = hashlib.blake2b("|".join(encoded).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MASK63


def file_id(source_name: str, sha256: str) -> int:
    """Key of one version (content) of a landing file."""
    return stable_key("file-version", source_name, sha256)


def sale_key_base(source_name: str) -> int:
    """The file part of every sale key: ``sale_key = base + line_no``.

    It depends on the file's name only, so a corrected file's sales keep their keys.
    """
    return (stable_key("file", source_name) >> (63 - _FILE_BITS)) << LINE_BITS
