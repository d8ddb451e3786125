"""Committing a star batch: overlaps, redelivery refusals, other runners, retries.

:meth:`Loader.load <brewline.load.roles.Loader.load>` is one
transaction; this module decides what goes into each transaction and adapts
when the warehouse signals that some files cannot go in as they are.

    >>> for done in commit(star, warehouse, redelivery="replace"):  # doctest: +SKIP
    ...     print(done.files["state"].to_list(), done.replaced)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

import polars as pl

from brewline.errors import TransientError, WarehouseBusy
from brewline.load.roles import AlreadyLoaded, BranchDayOwned, Replacement, Warehouse
from brewline.transform.star import StarBatch
from brewline.vocabulary import FileState

__all__ = ["Committed", "commit", "retrying"]

log = logging.getLogger("brewline")

_T = TypeVar("_T")
_FIRST_DELAY, _MAX_DELAY = 0.5, 8.0
"""Seconds before the first retry after a transient error, doubling up to the longest wait."""
_RETRYING = "transient warehouse error, retrying for up to %gs: %s"
RETRY_SECONDS = 15.0
"""How long a commit keeps retrying a lost warehouse by default (the ``retry_seconds`` setting)."""


@dataclass(frozen=True)
class Committed:
    """One committed transaction: its ledger rows, and per file id the files it replaced."""

    files: pl.DataFrame
    replaced: dict[int, list[Replacement]]


def commit(
    star: StarBatch, warehouse: Warehouse, *, redelivery: str, retry_seconds: float = RETRY_SECONDS
) -> Iterator[Committed]:
    """Load ``star`` in as few transactions as the overlaps between its files allow."""
    for part in _without_overlaps(star):
        yield _load(part, warehouse, redelivery, retry_seconds)


def retrying(
    warehouse: Warehouse, action: Callable[[], _T], *, seconds: float = RETRY_SECONDS
) -> _T:
    """Run ``action``; on a transient error reconnect and retry with backoff for ``seconds``.

    A busy warehouse is not retried here: the engine already waited ``lock_timeout``.
    When the budget is spent, the error says how long it tried.
    """
    started = time.monotonic()
    delay = _FIRST_DELAY
    said = False
    while True:
        try:
            return action()
        except WarehouseBusy:
            raise
        except TransientError as exc:
            waited = time.monotonic() - started
            if waited + delay > seconds:
                raise TransientError(
                    f"{exc} (gave up after retrying for {waited:.0f}s; the retry_seconds "
                    f"setting is {seconds:g}s)"
                ) from None
            # One line per outage, not one per attempt: a long one said the same thing 16 times.
            log.log(logging.DEBUG if said else logging.WARNING, _RETRYING, seconds, exc)
            said = True
            time.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
            with contextlib.suppress(TransientError):
                warehouse.reconnect()


def _load(part: StarBatch, warehouse: Warehouse, redelivery: str, seconds: float) -> Committed:
    """Commit one part; adapt it when the warehouse refuses some of its files.

    Each signal removes or rewrites files, so the loop ends within a few attempts.
    """
    skipped = pl.DataFrame(schema=part.files.schema)
    while True:
        try:
            load = partial(warehouse.load, part, redelivery=redelivery)
            replaced = retrying(warehouse, load, seconds=seconds)
            return Committed(pl.concat([part.files, skipped]), replaced)
        except BranchDayOwned as owned:
            part = _refuse_owned(part, owned)
        except AlreadyLoaded as done:
            taken = pl.col("file_id").is_in(list(done.file_ids))
            skipped = pl.concat([skipped, _skipped_by_another_runner(part.files.filter(taken))])
            part = part.only(part.files.filter(~taken)["file_id"].to_list())
            if part.files.is_empty():
                return Committed(skipped, {})


def _skipped_by_another_runner(files: pl.DataFrame) -> pl.DataFrame:
    return files.with_columns(
        state=pl.lit(FileState.SKIPPED.value),
        reason=pl.lit("unchanged"),
        message=pl.lit("committed by another runner"),
        rows_loaded=0,
        rows_rejected=0,
        rows_read=0,
    )


def _refuse_owned(part: StarBatch, owned: BranchDayOwned) -> StarBatch:
    """Turn files whose branch-days are taken (policy ``reject``) into rejected ledger rows."""
    refused = list(owned.owners)
    owners = pl.DataFrame(
        {"file_id": refused, "owners": [", ".join(owned.owners[i]) for i in refused]},
        schema={"file_id": pl.Int64, "owners": pl.String},
    )
    files = part.files.join(owners, on="file_id", how="left", maintain_order="left")
    is_refused = pl.col("owners").is_not_null()
    files = files.with_columns(
        state=pl.when(is_refused).then(pl.lit(FileState.REJECTED.value)).otherwise("state"),
        reason=pl.when(is_refused).then(pl.lit("branch_day_owned")).otherwise("reason"),
        message=pl.when(is_refused)
        .then(
            pl.lit("its branch-days are already loaded from ")
            + pl.col("owners")
            + pl.lit("; set redelivery = 'replace' to let the later delivery win")
        )
        .otherwise("message"),
        rows_rejected=pl.when(is_refused).then("rows_read").otherwise("rows_rejected"),
        rows_loaded=pl.when(is_refused).then(0).otherwise("rows_loaded"),
    )
    kept = part.only(files.filter(~is_refused)["file_id"].to_list())
    return replace(kept, files=files.drop("owners"))


def _without_overlaps(star: StarBatch) -> Iterator[StarBatch]:
    """Split a batch where a file shares a name or a branch-day with an earlier file in it.

    A later delivery must replace an earlier one, which needs the earlier one
    committed first.
    """
    days = star.branch_days.group_by("file_id").agg(pl.struct("branch_key", "date_key"))
    by_file = {fid: {(d["branch_key"], d["date_key"]) for d in ds} for fid, ds in days.iter_rows()}
    current: list[int] = []
    names: set[str] = set()
    covered: set[tuple[int, int]] = set()
    for fid, name in star.files.select("file_id", "source_name").iter_rows():
        mine = by_file.get(fid, set())
        if current and (name in names or mine & covered):
            yield star.only(current)
            current, names, covered = [], set(), set()
        current.append(fid)
        names.add(name)
        covered |= mine
    if current:
        yield star.only(current)
