"""Pick a warehouse engine for a location: the one wiring place for engines.

>>> wh = open_warehouse(":memory:")
>>> type(wh).__name__
'DuckDBWarehouse'
>>> wh.close()
"""

from __future__ import annotations

from brewline.load.locations import engine_of
from brewline.load.roles import Warehouse

__all__ = ["open_warehouse"]


def open_warehouse(
    location: str, *, read_only: bool = False, lock_timeout: float = 30.0, share: bool = False
) -> Warehouse:
    """A DuckDB path (default) or a ``postgresql://`` URL.

    ``lock_timeout`` bounds every wait for another process: DuckDB's file lock,
    PostgreSQL's commit lock. ``share`` lets other processes use the warehouse
    between this connection's transactions (a loader sets it so dashboards keep
    answering; a server engine always does).
    """
    if engine_of(location) == "postgres":
        from brewline.load.postgres import PostgresWarehouse

        return PostgresWarehouse(location, read_only=read_only, lock_timeout=lock_timeout)
    from brewline.load.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(location, read_only=read_only, lock_timeout=lock_timeout, share=share)
