"""``brewline init`` and ``brewline grant-readonly``: warehouse administration,
a thin layer over :meth:`brewline.load.Warehouse.ensure_schema` and
:mod:`brewline.load.admin`::

    $ brewline init --warehouse postgresql://loader@db/sales
    $ brewline grant-readonly analyst --show-sql
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from brewline.cli.output import WarehouseOption, exit_on_error, printable

if TYPE_CHECKING:
    from brewline.load.admin import PublicAccess

__all__ = ["grant_readonly", "init"]


def init(
    warehouse: WarehouseOption = None,
    rebuild_marts: Annotated[
        bool,
        typer.Option(
            "--rebuild-marts",
            help="Also recompute every mart, and dim_customer, from the facts (when "
            "`brewline check` finds one that differs).",
        ),
    ] = False,
) -> None:
    """Create the warehouse schema, or upgrade an older one to this Brewline's.

    `run` creates the schema of a new warehouse by itself but never upgrades an
    existing one behind an administrator's back; this command does. Loads keep
    the marts (summary tables) exact; `--rebuild-marts` recomputes them after
    someone changed the facts by hand. Exits 1 when the warehouse is newer than
    this Brewline or cannot be opened.
    """
    from brewline.config import load_settings
    from brewline.load import open_warehouse
    from brewline.load.locations import redact

    with exit_on_error():
        settings = load_settings(warehouse=warehouse)
        with open_warehouse(settings.warehouse, lock_timeout=settings.lock_timeout) as wh:
            version = wh.ensure_schema(upgrade=True)
            if rebuild_marts:
                wh.rebuild_marts()
    where = printable(redact(settings.warehouse))
    typer.echo(f"Warehouse {where} is at schema version {version}.")
    if rebuild_marts:
        typer.echo("Every mart was recomputed from the facts.")


def grant_readonly(
    role: Annotated[str, typer.Argument(help="Role for dashboards and analysts, e.g. analyst.")],
    warehouse: WarehouseOption = None,
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Print the SQL instead of running it.")
    ] = False,
) -> None:
    """Create a read-only PostgreSQL role (LOGIN, SELECT only) for dashboards and analysts.

    Idempotent. Run it as the role that loads the warehouse (no CREATEROLE
    needed when the analyst role already exists) or as an administrator; it
    refuses superusers and the loading role. Tables the loading role creates
    later stay readable. What PostgreSQL lets every role do (PUBLIC: temporary
    tables, connecting to other databases) stays: the command says what, and the
    SQL an administrator runs to close it. Give the role a password yourself
    (ALTER ROLE ... PASSWORD); Brewline never handles it. Exits 1 for a DuckDB
    warehouse or a bad role name.
    """
    from brewline.config import load_settings
    from brewline.load import admin, open_warehouse
    from brewline.load.locations import redact

    with exit_on_error():
        settings = load_settings(warehouse=warehouse)
        with open_warehouse(
            settings.warehouse, read_only=show_sql, lock_timeout=settings.lock_timeout
        ) as wh:
            if show_sql:  # checked against the server, so what it shows is what would run
                typer.echo(";\n".join(admin.readonly_sql(wh, role)) + ";")
                return
            done = admin.grant_readonly(wh, role)
            left = admin.public_access(wh, role)
    for line in _granted(printable(role), printable(redact(settings.warehouse)), done, left):
        typer.echo(line)


def _granted(role: str, where: str, done: list[str], left: PublicAccess) -> list[str]:
    """What the role may do now, exactly: its grants, then what PUBLIC still gives it."""
    read_only = any(s.startswith("ALTER ROLE") for s in done)
    lines = [
        f"Role {role} can now log in to {where} and SELECT every table in schema public "
        "(and the tables the loading role creates later); it cannot write them"
        + (", and its sessions are read-only by default." if read_only else ".")
    ]
    allowed = []
    if left.temporary:
        allowed.append(f"create temporary tables in {left.database}")
    if left.other_databases:
        allowed.append(
            f"connect to the server's other databases ({', '.join(left.other_databases)}) "
            "and read there what is granted to PUBLIC"
        )  # fmt: skip
    if not allowed:
        return lines
    lines += [
        f"Like every role (PostgreSQL's default grants to PUBLIC), it can still: "
        f"{'; '.join(allowed)}.",
        "To close that for every role, an administrator runs "
        "(and grants CONNECT back to the roles that need it):",
        *(f"  {statement};" for statement in left.lockdown_sql()),
    ]
    return lines
