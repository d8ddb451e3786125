"""Warehouse locations: which engine a location names, and how to print it safely.

The one place that reads a location string; nothing outside ``load/`` tells
engines apart by looking at it.

    >>> redact("postgresql://etl:s3cret@db.internal:5432/warehouse")
    'postgresql://etl:***@db.internal:5432/warehouse'
    >>> engine_of("sales.duckdb"), engine_of("postgres://db/w")
    ('duckdb', 'postgres')
"""

from __future__ import annotations

import re
from pathlib import Path

from brewline.errors import ConfigError

__all__ = ["engine_of", "redact"]


def engine_of(location: str) -> str:
    """``postgres`` for a server URL, ``duckdb`` for a file path or ``:memory:``.

    Anything else that looks like a URL (``postgres:/broken``, ``s3://...``,
    ``md:...``) is refused: DuckDB would read such a prefix as a request to
    download and load an extension from the internet.
    """
    if location.startswith(("postgresql://", "postgres://")):
        return "postgres"
    if _SCHEME.match(location):
        raise ConfigError(
            f"warehouse {redact(location)!r} is neither a DuckDB file path nor a "
            "postgresql://user@host/database URL"
        )
    return "duckdb"


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: C:\ is a path


def require_folder(location: str) -> None:
    """A DuckDB warehouse lives only in a folder that exists: a typo'd path must not grow
    folders and a new, empty warehouse, nor be served or read as one still to come."""
    if engine_of(location) != "duckdb" or location == ":memory:":
        return
    folder = Path(location).parent
    if not folder.is_dir():
        raise ConfigError(
            f"no folder {folder} for the DuckDB warehouse {location}; create the folder "
            "or correct the warehouse path"
        )


def redact(location: str) -> str:
    """A location safe to print: every password in a URL (of any scheme) is masked.

    Works on the text, not on a parsed URL, so odd but valid forms keep their
    shape (several hosts, ``[::1]`` IPv6 hosts) and malformed ones (a port
    that is not a number) are still masked rather than crashing:

        >>> redact("postgresql://etl@[::1]:5432,db2:5433/w?password=s3cret&sslmode=require")
        'postgresql://etl@[::1]:5432,db2:5433/w?password=***&sslmode=require'
        >>> redact("postgres://etl:pw@db:port/w")
        'postgres://etl:***@db:port/w'
    """
    match = _URL.match(location)
    if match is None:  # a file path: nothing secret in it
        return location
    netloc = match["netloc"]
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else netloc
    rest = _QUERY_PASSWORD.sub(r"\g<key>***", match["rest"])
    return f"{match['scheme']}{netloc}{rest}"


_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.S)
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&](?:ssl)?password=)[^&#]*", re.I)
