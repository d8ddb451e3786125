"""Warehouse administration: create/upgrade the schema, grant read-only access.

>>> from brewline.load import open_warehouse
>>> with open_warehouse(":memory:") as wh:
...     init_warehouse(wh)
2
"""

from __future__ import annotations

import re

from brewline.errors import ConfigError, WarehouseError
from brewline.load.roles import Warehouse

__all__ = ["grant_readonly", "init_warehouse", "readonly_sql"]

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def init_warehouse(warehouse: Warehouse) -> int:
    """Create or upgrade the warehouse schema; return the version now in place."""
    return warehouse.ensure_schema(upgrade=True)


def readonly_sql(role: str, database: str) -> list[str]:
    """The SQL that gives ``role`` read-only access to the warehouse (PostgreSQL).

    Documented so an administrator can review or run it by hand. The role can
    log in; give it a password with ``ALTER ROLE ... PASSWORD`` (never via Brewline).
    """
    if not _ROLE.match(role):
        raise ConfigError(f"role name {role!r} must be lower-case letters, digits and _")
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "
        f"THEN CREATE ROLE {role} LOGIN; END IF; END $$",
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
        f"ALTER ROLE {role} SET default_transaction_read_only = on",
    ]


def grant_readonly(warehouse: Warehouse, role: str) -> list[str]:
    """Create ``role`` if needed and grant it read-only access; return the SQL run."""
    if warehouse.engine != "postgres":
        raise WarehouseError(
            "read-only roles are a PostgreSQL feature; for DuckDB, open the file with "
            "read_only=True (brewline serve and report already do)"
        )
    database = str(warehouse.query("SELECT current_database() AS db")["db"][0])
    statements = readonly_sql(role, database)
    warehouse.run_admin(statements)
    return statements
