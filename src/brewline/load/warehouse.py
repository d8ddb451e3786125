"""A warehouse over SQL: the three roles written once, plus schema and administration.

>>> from brewline.load import open_warehouse
>>> with open_warehouse(":memory:") as wh:
...     wh.ensure_schema()
...     wh.query("SELECT count(*) AS n FROM fact_sale")["n"][0]
3
0
"""

from __future__ import annotations

from brewline.load.ledger import SqlLedger
from brewline.load.loader import SqlLoader
from brewline.load.migrations import SCHEMA_VERSION, migrations
from brewline.load.reader import SqlReader, schema_problem
from brewline.load.roles import Warehouse
from brewline.load.sql import utc_now

__all__ = ["SqlWarehouse"]


class SqlWarehouse(SqlLoader, SqlLedger, SqlReader, Warehouse):
    """Every role over one SQL engine; engines subclass it and supply the primitives."""

    def ensure_schema(self, *, upgrade: bool = False) -> int:
        """Create the schema in an empty warehouse; check (or ``upgrade``) an existing one.

        Returns the schema version now in place. An older schema is upgraded only
        when asked (``brewline init``), so a run never changes a shared server's
        schema behind an administrator's back.
        """
        found = self.schema_version()
        problem = None if found is None else schema_problem(found, upgrade=upgrade)
        if problem is not None:
            raise problem
        steps = migrations(self.engine, found or 0)
        if not steps:
            return SCHEMA_VERSION
        # One transaction for all steps: a runner starting beside us never sees a
        # half-migrated schema (which it would refuse as "older").
        with self._transaction():
            self._lock_loader()  # runners starting together must not migrate twice
            current = self.schema_version() or 0
            for version, statements in steps:
                if version <= current:
                    continue
                for statement in statements:
                    self._execute(statement)
                self._execute("INSERT INTO schema_version VALUES (?, ?)", (version, utc_now()))
        return SCHEMA_VERSION

    def run_admin(self, statements: list[str]) -> None:
        with self._transaction():
            for statement in statements:
                self._execute(statement)
