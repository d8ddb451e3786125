"""Pick a warehouse engine from a location: the one wiring place for engines.

>>> wh = open_warehouse(":memory:")
>>> type(wh).__name__
'DuckDBWarehouse'
>>> wh.close()
"""

from __future__ import annotations

from brewline.load.duckdb import DuckDBWarehouse
from brewline.load.warehouse import Warehouse

__all__ = ["is_postgres", "open_warehouse", "redact"]


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_warehouse(
    location: str, *, read_only: bool = False, lock_timeout: float = 30.0
) -> Warehouse:
    """A DuckDB path (default) or a ``postgresql://`` URL."""
    if is_postgres(location):
        from brewline.load.postgres import PostgresWarehouse

        return PostgresWarehouse(location, read_only=read_only)
    return DuckDBWarehouse(location, read_only=read_only, lock_timeout=lock_timeout)


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
