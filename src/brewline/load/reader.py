"""The reader role in portable SQL: queries, the schema-version check, freshness."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from brewline.errors import SchemaVersionError, WarehouseError
from brewline.load.migrations import SCHEMA_VERSION
from brewline.load.roles import Params, Reader
from brewline.load.sql import SqlEngine
from brewline.schema import TABLES
from brewline.vocabulary import date_key

if TYPE_CHECKING:
    import polars as pl

__all__ = ["SqlReader", "schema_problem"]

_FRESHNESS = """
    SELECT b.branch_name AS branch, MAX(o.date_key) AS last_key,
           MAX(f.recorded_at) AS last_loaded_at
    FROM etl_file_branch_day o
    JOIN etl_file f ON f.file_id = o.file_id
    JOIN dim_branch b ON b.branch_key = o.branch_key
    WHERE o.date_key <= ?
    GROUP BY b.branch_name
    ORDER BY b.branch_name
"""
_NO_LIMIT = 99_991_231


class SqlReader(SqlEngine, Reader):
    def query(self, sql: str, params: Params = ()) -> pl.DataFrame:
        return self._frame(sql, params)

    def schema_version(self) -> int | None:
        if not self._has_table("schema_version"):
            return None
        found = self._fetch("SELECT max(version) FROM schema_version")[0][0]
        return None if found is None else int(found)

    def check_schema(self) -> None:
        found = self.schema_version()
        if found is None:
            raise WarehouseError(
                f"{self.display_name} holds no Brewline warehouse yet; load it with `brewline run`"
            )
        problem = schema_problem(found)
        if problem is not None:
            raise problem

    def branch_freshness(self, up_to: dt.date | None = None) -> pl.DataFrame:
        import polars as pl

        limit = _NO_LIMIT if up_to is None else date_key(up_to)
        schema = {
            "branch": pl.String(),
            "last_key": pl.Int32(),
            "last_loaded_at": TABLES["etl_file"].polars_schema(["recorded_at"])["recorded_at"],
        }
        return self._frame(_FRESHNESS, (limit,)).cast(pl.Schema(schema))


def schema_problem(found: int, *, upgrade: bool = False) -> SchemaVersionError | None:
    """Why a warehouse at schema version ``found`` cannot be used as it is, or None.

    An older schema is fine only when about to ``upgrade`` it (``brewline init``).
    """
    if found > SCHEMA_VERSION:
        return SchemaVersionError(
            f"the warehouse has schema version {found}, newer than this Brewline's "
            f"{SCHEMA_VERSION}; upgrade Brewline"
        )
    if found < SCHEMA_VERSION and not upgrade:
        return SchemaVersionError(
            f"the warehouse has schema version {found}, this Brewline needs "
            f"{SCHEMA_VERSION}: run `brewline init` to upgrade it"
        )
    return None
