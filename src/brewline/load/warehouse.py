"""The Warehouse interface and the set-based SQL both engines share.

A warehouse engine supplies five primitives (execute, fetch, frame, stage a
Polars frame as a table, transaction); :class:`SqlWarehouse` builds the
loading semantics on them once, so DuckDB and PostgreSQL behave identically:

- one transaction per file: all of a file's rows become visible, or none;
- a corrected file (same name, new content) replaces its previous version;
- a second delivery of a (branch, trading day) replaces the first, or is
  refused, by the ``redelivery`` policy; the ledger records who replaced whom.

SQL uses ``?`` placeholders; engines translate if they need another style.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import polars as pl

from brewline.errors import SchemaVersionError
from brewline.load.schema import SCHEMA_VERSION, migrations
from brewline.transform.star import StarBatch

__all__ = ["AlreadyLoaded", "BranchDayOwned", "Replacement", "SqlWarehouse", "Warehouse"]

Params = Sequence[Any]


class BranchDayOwned(Exception):
    """Raised inside a load when policy ``reject`` meets an already loaded branch-day.

    ``owners`` maps each refused file id to the names of the files owning its days.
    """

    def __init__(self, owners: dict[int, list[str]]):
        self.owners = owners
        super().__init__(f"{len(owners)} files cover branch-days already loaded")


@dataclass(frozen=True)
class Replacement:
    """A file a loaded file replaced: wholly, or only some of its branch-days."""

    name: str
    whole: bool


class AlreadyLoaded(Exception):
    """Another runner committed these file versions first; nothing changed."""

    def __init__(self, file_ids: set[int]):
        self.file_ids = file_ids
        super().__init__(f"{len(file_ids)} files were committed by another runner")


class Warehouse(ABC):
    """What the pipeline needs from a warehouse; see :class:`SqlWarehouse`."""

    display_name: str
    engine: str

    @abstractmethod
    def ensure_schema(self, *, upgrade: bool = False) -> int: ...

    @abstractmethod
    def ledger(self) -> pl.DataFrame: ...

    @abstractmethod
    def begin_run(self, run_id: str, host: str, pid: int) -> None: ...

    @abstractmethod
    def finish_run(self, run_id: str, status: str, totals: dict[str, Any]) -> None: ...

    @abstractmethod
    def load(self, batch: StarBatch, *, redelivery: str) -> dict[int, list[Replacement]]: ...

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> pl.DataFrame: ...

    @abstractmethod
    def get_meta(self, name: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, name: str, value: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def reconnect(self) -> None:  # noqa: B027 - deliberately a no-op unless overridden
        """Re-open a lost connection (after a server restart); embedded engines need not."""

    @abstractmethod
    def run_admin(self, statements: list[str]) -> None:
        """Run administrative statements (grants, roles) in one transaction."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqlWarehouse(Warehouse):
    """Loading semantics in portable SQL over five engine primitives."""

    # -- engine primitives -------------------------------------------------
    @abstractmethod
    def _execute(self, sql: str, params: Params = ()) -> None: ...

    @abstractmethod
    def _fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _frame(self, sql: str, params: Params = ()) -> pl.DataFrame: ...

    @abstractmethod
    def _stage(self, name: str, frame: pl.DataFrame) -> None:
        """Make ``frame`` queryable as table ``name`` until the transaction ends."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """Commit on success, roll back on error."""

    def _append(self, table: str, frame: pl.DataFrame) -> None:
        """Bulk-append ``frame`` (columns named as in ``table``) inside the transaction."""
        self._stage(f"append_{table}", frame)
        columns = ", ".join(frame.columns)
        self._execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM append_{table}")

    # -- schema and metadata ------------------------------------------------
    def ensure_schema(self, *, upgrade: bool = False) -> int:
        """Create the schema in an empty warehouse; check (or ``upgrade``) an existing one.

        Returns the schema version now in place. An older schema is upgraded only
        when asked (``brewline init``), so a run never changes a shared server's
        schema behind an administrator's back.
        """
        found = self.schema_version()
        if found is not None and found > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"the warehouse has schema version {found}, newer than this Brewline's "
                f"{SCHEMA_VERSION}; upgrade Brewline"
            )
        if found is not None and found < SCHEMA_VERSION and not upgrade:
            raise SchemaVersionError(
                f"the warehouse has schema version {found}, this Brewline needs "
                f"{SCHEMA_VERSION}: run `brewline init` to upgrade it"
            )
        for version, statements in migrations(self.engine, found or 0):
            with self._transaction():
                self._lock_loader()  # runners starting together must not migrate twice
                if (self.schema_version() or 0) >= version:
                    continue
                for statement in statements:
                    self._execute(statement)
                self._execute("INSERT INTO schema_version VALUES (?, ?)", (version, _now()))
        return SCHEMA_VERSION

    def schema_version(self) -> int | None:
        """The applied schema version, or None for an empty warehouse."""
        if not self._has_table("schema_version"):
            return None
        found = self._fetch("SELECT max(version) FROM schema_version")[0][0]
        return None if found is None else int(found)

    def _has_table(self, name: str) -> bool:
        return bool(
            self._fetch("SELECT 1 FROM information_schema.tables WHERE table_name = ?", (name,))
        )

    def get_meta(self, name: str) -> str | None:
        rows = self._fetch("SELECT value FROM etl_meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: str) -> None:
        with self._transaction():
            self._execute("DELETE FROM etl_meta WHERE name = ?", (name,))
            self._execute("INSERT INTO etl_meta VALUES (?, ?)", (name, value))

    def query(self, sql: str, params: Params = ()) -> pl.DataFrame:
        return self._frame(sql, params)

    def run_admin(self, statements: list[str]) -> None:
        with self._transaction():
            for statement in statements:
                self._execute(statement)

    # -- ledger ----------------------------------------------------------------
    def ledger(self) -> pl.DataFrame:
        """Every file version seen: ``file_id, source_name, sha256, state, replaced_by_name``."""
        return self._frame(
            "SELECT e.file_id, e.source_name, e.sha256, e.state, r.source_name AS replaced_by_name "
            "FROM etl_file e LEFT JOIN etl_file r ON r.file_id = e.replaced_by"
        )

    def begin_run(self, run_id: str, host: str, pid: int) -> None:
        with self._transaction():
            self._abandon_stale_runs()
            self._execute(
                "INSERT INTO etl_run (run_id, started_at, status, host, pid) "
                "VALUES (?, ?, 'running', ?, ?)",
                (run_id, _now(), host, pid),
            )

    def _abandon_stale_runs(self) -> None:
        """Runs still 'running' were killed: the embedded warehouse has one writer at a time."""
        self._execute("UPDATE etl_run SET status = 'abandoned' WHERE status = 'running'")

    def finish_run(self, run_id: str, status: str, totals: dict[str, Any]) -> None:
        columns = ", ".join(f"{name} = ?" for name in totals)
        with self._transaction():
            self._execute(
                f"UPDATE etl_run SET finished_at = ?, status = ?, {columns} WHERE run_id = ?",
                (_now(), status, *totals.values(), run_id),
            )

    # -- loading ---------------------------------------------------------------
    def load(self, batch: StarBatch, *, redelivery: str) -> dict[int, list[Replacement]]:
        """Load a batch atomically; return, per loaded file id, the files it replaced.

        ``batch.files`` holds the ledger rows (``etl_file`` columns) for every
        file in the batch, loaded or not. Raises :class:`BranchDayOwned`
        (nothing changed) when ``redelivery`` is ``reject`` and another file
        already owns a branch-day that a file of the batch covers.
        """
        with self._transaction():
            self._lock_loader()
            for name in _STAGED:
                self._stage(f"stage_{name}", getattr(batch, name))
            done = self._fetch(_ALREADY_CURRENT)
            if done:
                raise AlreadyLoaded({row[0] for row in done})
            previous = self._fetch(_PREVIOUS_VERSIONS)
            owners = self._fetch(_BRANCH_DAY_OWNERS)
            if owners and redelivery == "reject":
                refused: dict[int, list[str]] = {}
                for _, name, by in owners:
                    refused.setdefault(by, []).append(name)
                raise BranchDayOwned(refused)
            if self._fetch(
                "SELECT 1 FROM etl_file WHERE file_id IN (SELECT file_id FROM stage_files) LIMIT 1"
            ):
                self._forget_staged_versions()
            victims = [(fid, by, True) for fid, _, by in previous]
            victims += [(fid, by, False) for fid, _, by in owners]
            outcome = self._replace(victims) if victims else []
            for statement in _INSERTS:
                self._execute(statement)
            if victims:
                self._refresh_customers()
            for table, frame in (
                ("fact_sale", batch.sales),
                ("fact_sale_line", batch.lines),
                ("etl_rejected_row", batch.rejects),
            ):
                self._append(table, frame)
        replaced: dict[int, list[Replacement]] = {}
        for by, name, whole in outcome:
            replaced.setdefault(by, []).append(Replacement(name, whole))
        return replaced

    def _lock_loader(self) -> None:
        """Serialise committers across processes; DuckDB's file lock already does."""

    def _forget_staged_versions(self) -> None:
        """Drop what an earlier load of these exact versions left (they are being redone)."""
        for table in (
            "fact_sale",
            "fact_sale_line",
            "etl_file_branch_day",
            "etl_rejected_row",
            "etl_file",
        ):
            self._execute(f"DELETE FROM {table} WHERE file_id IN (SELECT file_id FROM stage_files)")

    def _replace(self, victims: list[tuple[int, int, bool]]) -> list[tuple[int, str, bool]]:
        """Delete what newer deliveries supersede and mark it in the ledger.

        ``whole`` victims are earlier versions of a staged file (all their rows
        go); the others lose only the branch-days a staged file covers, and end
        ``replaced`` only when nothing of theirs is left. Returns
        ``(replaced_by, name, wholly_replaced)`` per victim.
        """
        frame = pl.DataFrame(
            victims,
            schema={"file_id": pl.Int64, "replaced_by": pl.Int64, "whole": pl.Boolean},
            orient="row",
        )
        self._stage("stage_victims", frame)
        # Every predicate names the trading days involved, so engines prune by date
        # (DuckDB zone maps, the PostgreSQL BRIN index) instead of scanning all facts.
        whole = "file_id IN (SELECT file_id FROM stage_victims WHERE whole)"
        whole_days = f"SELECT date_key FROM etl_file_branch_day WHERE {whole}"
        partial = "file_id IN (SELECT file_id FROM stage_victims WHERE NOT whole)"
        staged_days = "SELECT date_key FROM stage_branch_days"
        doomed = (
            f"({whole} AND date_key IN ({whole_days})) OR ({partial} "
            f"AND date_key IN ({staged_days}) "
            "AND (branch_key, date_key) IN (SELECT branch_key, date_key FROM stage_branch_days))"
        )
        # Table names and predicates are Brewline's own text; values travel as staged tables.
        touched = self._frame(
            "SELECT DISTINCT customer_key FROM fact_sale "
            f"WHERE customer_key IS NOT NULL AND ({doomed})"
        )
        self._stage("stage_touched_customers", touched)
        for table in ("fact_sale", "fact_sale_line", "etl_file_branch_day"):
            self._execute(f"DELETE FROM {table} WHERE {doomed}")
        self._execute(
            "UPDATE etl_file SET state = 'replaced', replaced_by = v.replaced_by "
            "FROM stage_victims v WHERE etl_file.file_id = v.file_id AND (v.whole OR NOT EXISTS "
            "(SELECT 1 FROM etl_file_branch_day d WHERE d.file_id = etl_file.file_id))"
        )
        self._execute(
            "UPDATE etl_file SET reason = 'partly_replaced', replaced_by = v.replaced_by "
            "FROM stage_victims v WHERE etl_file.file_id = v.file_id AND etl_file.state = 'loaded'"
        )
        rows = self._fetch(
            "SELECT DISTINCT v.replaced_by, e.source_name, e.state = 'replaced' "
            "FROM stage_victims v JOIN etl_file e ON e.file_id = v.file_id ORDER BY 2"
        )
        return [(int(by), str(name), bool(whole)) for by, name, whole in rows]

    def _refresh_customers(self) -> None:
        """First-seen times follow the facts: replaced sales no longer count."""
        self._execute(
            "UPDATE dim_customer SET first_seen_at = (SELECT min(f.sold_at) FROM fact_sale f "
            "WHERE f.customer_key = dim_customer.customer_key) "
            "WHERE customer_key IN (SELECT customer_key FROM stage_touched_customers) AND EXISTS "
            "(SELECT 1 FROM fact_sale f WHERE f.customer_key = dim_customer.customer_key)"
        )
        self._execute(
            "DELETE FROM dim_customer WHERE customer_key IN "
            "(SELECT customer_key FROM stage_touched_customers) AND NOT EXISTS "
            "(SELECT 1 FROM fact_sale f WHERE f.customer_key = dim_customer.customer_key)"
        )


_STAGED = ("files", "branch_days", "branches", "products", "dates", "customers")
"""Small frames the loading SQL joins against; the facts are appended directly."""

_ALREADY_CURRENT = (  # a version replaced by a newer one of the same name may come back
    "SELECT s.file_id FROM stage_files s JOIN etl_file e ON e.file_id = s.file_id "
    "WHERE NOT (e.state = 'replaced' AND EXISTS (SELECT 1 FROM etl_file r "
    "WHERE r.file_id = e.replaced_by AND r.source_name = e.source_name))"
)
_PREVIOUS_VERSIONS = (
    "SELECT e.file_id, e.source_name, s.file_id FROM etl_file e "
    "JOIN stage_files s ON e.source_name = s.source_name "
    "WHERE e.state = 'loaded' AND s.state = 'loaded' AND e.file_id <> s.file_id ORDER BY 2"
)
_BRANCH_DAY_OWNERS = (
    "SELECT DISTINCT o.file_id, f.source_name, s.file_id FROM etl_file_branch_day o "
    "JOIN stage_branch_days s ON o.branch_key = s.branch_key AND o.date_key = s.date_key "
    "JOIN etl_file f ON f.file_id = o.file_id "
    "WHERE f.source_name NOT IN (SELECT source_name FROM stage_files WHERE state = 'loaded') "
    "ORDER BY 2"
)

_INSERTS = (
    "INSERT INTO dim_branch SELECT branch_key, branch_name FROM stage_branches "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO dim_product SELECT product_key, product_name, size, variant FROM stage_products "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO dim_date SELECT date_key, date, year, quarter, month, month_name, day_of_month, "
    "day_of_week, day_name, iso_week, is_weekend FROM stage_dates ON CONFLICT DO NOTHING",
    "INSERT INTO dim_customer SELECT customer_key, first_seen_at FROM stage_customers "
    "ON CONFLICT (customer_key) DO UPDATE SET "
    "first_seen_at = LEAST(dim_customer.first_seen_at, EXCLUDED.first_seen_at)",
    "INSERT INTO etl_file_branch_day SELECT branch_key, date_key, file_id, sales "
    "FROM stage_branch_days",
    "INSERT INTO etl_file (file_id, source_name, sha256, size_bytes, layout, state, reason, "
    "message, rows_read, rows_loaded, rows_rejected, skipped_lines, run_id, recorded_at, seconds) "
    "SELECT file_id, source_name, sha256, size_bytes, layout, state, reason, message, rows_read, "
    "rows_loaded, rows_rejected, skipped_lines, run_id, recorded_at, seconds FROM stage_files",
)


def _now() -> dt.datetime:
    """Ledger times are UTC wall-clock, stored naive."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
