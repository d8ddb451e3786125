"""What the rest of Brewline may ask of a warehouse, split by role.

The pipeline's stages never see a connection; they talk to a warehouse through
three small interfaces, the way dlt separates a destination's capabilities:

- :class:`Loader` writes star batches: append new deliveries, replace older
  ones, atomically (one transaction per batch of whole deliveries);
- :class:`Ledger` records runs, deliveries and their states, branch-day
  owners, warehouse-wide facts and per-source cursors (watermarks);
- :class:`Reader` answers questions: every query behind ``report``,
  ``status``, ``check``, ``/metrics`` and the dashboard goes through it.

A :class:`Warehouse` plays all three roles over one connection; callers type
their parameters by the role they use, so a new sink implements only what it
must. :class:`~brewline.load.warehouse.SqlWarehouse` implements them once in
portable SQL for both engines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from brewline.transform.star import StarBatch

__all__ = [
    "AlreadyLoaded",
    "BranchDayOwned",
    "Ledger",
    "Loader",
    "Params",
    "Reader",
    "Replacement",
    "Warehouse",
]

Params = Sequence[Any]


# -- what a loader signals -------------------------------------------------------------


class BranchDayOwned(Exception):
    """Raised inside a load when policy ``reject`` meets an already loaded branch-day.

    ``owners`` maps each refused file id to the names of the files owning its days.
    """

    def __init__(self, owners: dict[int, list[str]]):
        self.owners = owners
        super().__init__(f"{len(owners)} files cover branch-days already loaded")


class AlreadyLoaded(Exception):
    """Another runner committed these file versions first; nothing changed."""

    def __init__(self, file_ids: set[int]):
        self.file_ids = file_ids
        super().__init__(f"{len(file_ids)} files were committed by another runner")


@dataclass(frozen=True)
class Replacement:
    """A file a loaded file replaced: wholly, or only some of its branch-days."""

    name: str
    whole: bool


# -- the roles ---------------------------------------------------------------------------


class Loader(ABC):
    """Writes star batches, one transaction per batch of whole deliveries."""

    @abstractmethod
    def load(self, batch: StarBatch, *, redelivery: str) -> dict[int, list[Replacement]]:
        """Load ``batch`` atomically; return, per loaded file id, the files it replaced.

        Raises :class:`BranchDayOwned` or :class:`AlreadyLoaded` (nothing changed)
        when some of its files cannot go in as they are.
        """

    @abstractmethod
    def replace_tables(self, frames: dict[str, pl.DataFrame]) -> None:
        """Make each named table hold exactly its frame, all in one transaction.

        For a model rebuilt whole from its lake (the totesys star): loading the
        same frames again changes nothing.
        """

    @abstractmethod
    def rebuild_marts(self) -> None:
        """Recompute every mart from all the facts, in one transaction.

        Loads keep the marts exact; this is for facts written some other way
        (a generated benchmark warehouse) and for repairs.
        """


class Ledger(ABC):
    """Runs, deliveries, warehouse facts and source cursors."""

    @abstractmethod
    def deliveries(self) -> pl.DataFrame:
        """Every delivery seen: ``file_id, source_name, sha256, state, replaced_by_name``."""

    @abstractmethod
    def begin_run(self, run_id: str, host: str, pid: int) -> None:
        """Record a run as started (and mark runs whose process died as abandoned)."""

    @abstractmethod
    def finish_run(self, run_id: str, status: str, totals: dict[str, Any]) -> None: ...

    @abstractmethod
    def get_meta(self, name: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, name: str, value: str) -> None: ...

    @abstractmethod
    def get_cursor(self, source: str, name: str) -> str | None:
        """Where ``source`` got to for ``name`` (e.g. a table's watermark), or None."""

    @abstractmethod
    def set_cursor(self, source: str, name: str, value: str) -> None:
        """Advance a cursor; call only once what it covers is durable."""

    def held(self) -> AbstractContextManager[None]:
        """Keep the connection for the steps inside, though it was opened to be shared.

        A shared embedded warehouse otherwise lets go of its file after every
        transaction; a few quick steps in a row are cheaper on one connection.
        """
        return contextlib.nullcontext()


class Reader(ABC):
    """Answers questions about the warehouse; never writes."""

    display_name: str
    """The warehouse's location, safe to print (no password)."""

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> pl.DataFrame:
        """Run a read-only query written in Brewline's portable SQL (``?`` placeholders)."""

    @abstractmethod
    def schema_version(self) -> int | None:
        """The applied schema version, or None for an empty warehouse."""

    @abstractmethod
    def check_schema(self) -> None:
        """Fail clearly when there is no Brewline schema, or one this Brewline cannot read."""

    @abstractmethod
    def run_is_alive(self, run_id: str) -> bool:
        """The run's process still holds the lock it took when it began: it is running.

        Only asks; never changes the ledger (a dead run stays ``running`` in it until
        a runner marks it abandoned), so ``status`` can tell a killed run at once.
        """

    @abstractmethod
    def branch_freshness(self, up_to: dt.date | None = None) -> pl.DataFrame:
        """Per branch: the newest trading day loaded (on or before ``up_to``), when it came.

        Columns ``branch`` (text), ``last_key`` (yyyymmdd), ``last_loaded_at``
        (naive UTC); one row per branch, by name.
        """


class Warehouse(Loader, Ledger, Reader):
    """One connection to a warehouse, playing every role."""

    engine: str
    """``duckdb`` or ``postgres``: for messages and engine-specific migrations only."""

    @abstractmethod
    def ensure_schema(self, *, upgrade: bool = False) -> int:
        """Create the schema in an empty warehouse; check (or ``upgrade``) an existing one."""

    @abstractmethod
    def run_admin(self, statements: list[str]) -> None:
        """Run administrative statements (grants, roles) in one transaction."""

    @abstractmethod
    def close(self) -> None: ...

    def reconnect(self) -> None:
        """Re-open a lost connection (after a server restart); embedded engines need not."""

    def wanted_elsewhere(self, *, for_seconds: float = 0.0) -> bool:
        """Another process has been waiting ``for_seconds`` or more to open this warehouse
        (an embedded file that one process at a time may hold): a holder should let go
        soon, then :meth:`make_way`."""
        return False

    def make_way(self) -> None:
        """Having let go, wait briefly until the processes waiting for the warehouse have it."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
