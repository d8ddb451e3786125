"""Warehouse administration: create/upgrade the schema, grant read-only access.

>>> from brewline.load import open_warehouse
>>> with open_warehouse(":memory:") as wh:
...     init_warehouse(wh)
3
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from brewline.errors import ConfigError, WarehouseError
from brewline.load.roles import Warehouse

__all__ = ["PublicAccess", "grant_readonly", "init_warehouse", "public_access", "readonly_sql"]

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_FACTS = """
    SELECT current_database() AS database, current_user AS me,
           COALESCE((SELECT tableowner FROM pg_tables
                     WHERE schemaname = 'public' AND tablename = 'etl_file'),
                    current_user) AS owner,
           (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user)
               AS can_create_roles,
           (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
           (SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database())
               AS database_owner,
           EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?) AS exists,
           COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = ?), false) AS role_is_superuser
"""


def init_warehouse(warehouse: Warehouse) -> int:
    """Create or upgrade the warehouse schema; return the version now in place."""
    return warehouse.ensure_schema(upgrade=True)


def readonly_sql(warehouse: Warehouse, role: str) -> list[str]:
    """The SQL that lets ``role`` read this PostgreSQL warehouse and write nothing in it.

    What PostgreSQL grants every role (PUBLIC) stays: see :func:`public_access`.

    Checked against the server first: the role must not be a superuser, the
    role running this, or the role owning the warehouse's tables (a read-only
    owner could no longer load). The usual set-up is an owner role that loads
    (no CREATEROLE needed) and an analyst role that reads:

    - the analyst role is created when missing, which needs CREATEROLE (an
      administrator can instead run ``CREATE ROLE analyst LOGIN`` first);
    - ``SELECT`` on every table now, and by default privileges *for the
      owner* on every table the owner creates later (a new Brewline version's
      tables included);
    - ``default_transaction_read_only`` for the role, when the runner may alter
      roles (belt and braces: SELECT is all it is granted anyway).

    Documented so an administrator can review it (``--show-sql``) or run it by
    hand. The role can log in; give it a password with ``ALTER ROLE ... PASSWORD``
    (never via Brewline).
    """
    if warehouse.engine != "postgres":
        raise WarehouseError(
            "read-only roles are a PostgreSQL feature; for DuckDB, open the file with "
            "read_only=True (brewline serve and report already do)"
        )
    if not _ROLE.match(role):
        raise ConfigError(f"role name {role!r} must be lower-case letters, digits and _")
    facts = warehouse.query(_FACTS, (role, role)).row(0, named=True)
    _refuse_unsafe(role, facts)
    statements = []
    if not facts["exists"]:
        statements.append(f"CREATE ROLE {role} LOGIN")
    if facts["superuser"] or facts["database_owner"] == facts["me"]:
        statements.append(f'GRANT CONNECT ON DATABASE "{facts["database"]}" TO {role}')
    statements += [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{facts["owner"]}" IN SCHEMA public '
        f"GRANT SELECT ON TABLES TO {role}",
    ]
    if facts["can_create_roles"]:
        statements.append(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    return statements


_PUBLIC = """
    SELECT current_database() AS database,
           COALESCE((SELECT tableowner FROM pg_tables
                     WHERE schemaname = 'public' AND tablename = 'etl_file'),
                    current_user) AS owner,
           has_database_privilege(?, current_database(), 'TEMPORARY') AS temporary,
           COALESCE((SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database
                     WHERE datallowconn AND NOT datistemplate
                       AND datname <> current_database()
                       AND has_database_privilege(?, datname, 'CONNECT')), '') AS others
"""


@dataclass(frozen=True)
class PublicAccess:
    """What a role can do beyond its grants, by PostgreSQL's default grants to PUBLIC.

    Every role may create temporary tables in a database and connect to every
    database unless an administrator revoked that from PUBLIC; only revoking it
    from PUBLIC closes it (not from one role), which changes every role's rights, so
    Brewline says so and shows :meth:`lockdown_sql` rather than running it.
    """

    database: str
    loader: str  # owns the warehouse's tables; its loads use temporary tables
    temporary: bool
    other_databases: tuple[str, ...]

    def lockdown_sql(self) -> list[str]:
        """What an administrator runs to close it (the loader keeps its temporary tables)."""
        statements = []
        if self.temporary:
            statements += [
                f'REVOKE TEMPORARY ON DATABASE "{self.database}" FROM PUBLIC',
                f'GRANT TEMPORARY ON DATABASE "{self.database}" TO "{self.loader}"',
            ]
        statements += [
            f'REVOKE CONNECT ON DATABASE "{d}" FROM PUBLIC' for d in self.other_databases
        ]
        return statements


def public_access(warehouse: Warehouse, role: str) -> PublicAccess:
    """What ``role`` may still do on this server that :func:`readonly_sql` does not grant."""
    facts = warehouse.query(_PUBLIC, (role, role)).row(0, named=True)
    others = tuple(name for name in str(facts["others"]).split(",") if name)
    return PublicAccess(facts["database"], facts["owner"], bool(facts["temporary"]), others)


def _refuse_unsafe(role: str, facts: dict[str, object]) -> None:
    if facts["role_is_superuser"]:
        raise WarehouseError(f"{role} is a superuser: a superuser cannot be made read-only")
    if role in (facts["me"], facts["owner"]):
        raise WarehouseError(
            f"{role} loads this warehouse (it runs Brewline or owns its tables); making it "
            "read-only would stop every load. Name a separate role for dashboards and analysts"
        )
    if not facts["exists"] and not facts["can_create_roles"]:
        raise WarehouseError(
            f"role {role} does not exist and {facts['me']} may not create roles: ask an "
            f"administrator to run `CREATE ROLE {role} LOGIN`, then run this again"
        )


def grant_readonly(warehouse: Warehouse, role: str) -> list[str]:
    """Create ``role`` if needed and grant it read-only access; return the SQL run."""
    statements = readonly_sql(warehouse, role)
    warehouse.run_admin(statements)
    return statements
