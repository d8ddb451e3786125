"""Content fingerprints: the same bytes always give the same fingerprint, whatever the source."""

from __future__ import annotations

import hashlib

__all__ = ["fingerprint"]


def fingerprint(data: bytes) -> str:
    """SHA-256 of a delivery's bytes, hex."""
    return hashlib.sha256(data).hexdigest()
