"""Warehouse locations: which engine a location names, and how to print it safely.

The one place that reads a location string; nothing outside ``load/`` tells
engines apart by looking at it.

    >>> redact("postgresql://etl:s3cret@db.internal:5432/warehouse")
    'postgresql://etl:***@db.internal:5432/warehouse'
    >>> engine_of("sales.duckdb"), engine_of("postgres://db/w")
    ('duckdb', 'postgres')
"""

from __future__ import annotations

__all__ = ["engine_of", "is_postgres", "redact"]


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def engine_of(location: str) -> str:
    """``postgres`` for a server URL, else ``duckdb`` (a file path or ``:memory:``)."""
    return "postgres" if is_postgres(location) else "duckdb"


def redact(location: str) -> str:
    """A warehouse location safe to print: any password in a URL is masked."""
    if not is_postgres(location):
        return location
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(location)
    if parts.password is None:
        return location
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
