"""The loader role in portable SQL: append, replace, refuse — one transaction a batch.

- one transaction per batch of whole deliveries: all of a file's rows become
  visible, or none;
- a corrected file (same name, new content) replaces its previous version;
- a second delivery of a (branch, trading day) replaces the first, or is
  refused, by the ``redelivery`` policy; the ledger records who replaced whom;
- the marts (:mod:`brewline.marts`) are refreshed for what the batch touched,
  in the same transaction, so they never disagree with the facts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from brewline.load.roles import AlreadyLoaded, BranchDayOwned, Loader, Replacement
from brewline.load.sql import SqlEngine
from brewline.marts import (
    BRANCH_DAY,
    CUSTOMER,
    DAY_SCOPE,
    FIRST_SIGHTINGS,
    MARTS,
    ROLLUPS,
    of_batch,
)

if TYPE_CHECKING:
    import polars as pl

    from brewline.transform.star import StarBatch

__all__ = ["SqlLoader"]


class SqlLoader(SqlEngine, Loader):
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
            redone = bool(
                self._fetch(
                    "SELECT 1 FROM etl_file WHERE file_id IN (SELECT file_id FROM stage_files) "
                    "LIMIT 1"
                )
            )
            if redone:
                self._forget_staged_versions()
            victims = [(fid, by, True) for fid, _, by in previous]
            victims += [(fid, by, False) for fid, _, by in owners]
            outcome = self._replace(victims) if victims else []
            for statement in _INSERTS:
                self._execute(statement)
            # The batch's mart rows, unless worked out ahead, are aggregated
            # in-process while the facts are appended (DuckDB releases the GIL in both).
            with ThreadPoolExecutor(1) as aside:
                fresh = aside.submit(lambda: batch.marts or of_batch(batch.sales, batch.lines))
                for table, frame in (
                    ("fact_sale", batch.sales),
                    ("fact_sale_line", batch.lines),
                    ("etl_rejected_row", batch.rejects),
                ):
                    self._append(table, frame)
                marts = fresh.result()
            if victims:  # once the batch's own sales are in: they may be the customer's first
                self._refresh_customers()
            self._refresh_marts(marts, replaced=bool(victims), redone=redone or bool(victims))
        replaced: dict[int, list[Replacement]] = {}
        for by, name, whole in outcome:
            replaced.setdefault(by, []).append(Replacement(name, whole))
        return replaced

    def replace_tables(self, frames: dict[str, pl.DataFrame]) -> None:
        with self._transaction():
            self._lock_loader()
            for table, frame in frames.items():
                self._execute(f"DELETE FROM {table}")  # Brewline's own table names
                self._append(table, frame)

    def rebuild_marts(self) -> None:
        with self._transaction():
            self._lock_loader()
            for mart in (*MARTS.values(), FIRST_SIGHTINGS):
                for statement in mart.rebuild():
                    self._execute(statement)

    def _refresh_marts(
        self, fresh: dict[str, pl.DataFrame], *, replaced: bool, redone: bool
    ) -> None:
        """Make every mart agree with the facts again where this batch changed them.

        Branch-day marts are re-aggregated for the branch-days loaded or taken
        over. A branch-day belongs to one delivery, so after the batch its facts
        are exactly the batch's rows of that day (or none, for a day taken from
        a replaced file): the batch's own rows are all there is to aggregate
        (``fresh``, from :func:`brewline.marts.of_batch`). A customer's first sale moves only
        when the batch has an earlier one, or when their first sale was deleted;
        the batch's candidates are merged in, and only customers who lost sales
        are recomputed from all their facts.
        """
        days = "SELECT branch_key, date_key FROM stage_branch_days"
        if replaced:
            days += " UNION SELECT branch_key, date_key FROM stage_doomed_days"
        self._stage("stage_mart_days", self._frame(days))
        ((low, high),) = self._fetch("SELECT min(date_key), max(date_key) FROM stage_mart_days")
        if low is not None:
            for mart in MARTS.values():
                if mart.grain == BRANCH_DAY:
                    if redone:  # else every branch-day is new: no mart row has it yet
                        self._execute(mart.delete(DAY_SCOPE), (low, high))
                    self._append(mart.table, fresh[mart.table])
            self._refresh_rollups(low, high)
            self._merge_first_sales(fresh["mart_customer_first"])
        if replaced:
            lost = "customer_key IN (SELECT customer_key FROM stage_touched_customers)"
            for mart in MARTS.values():
                if mart.grain == CUSTOMER:
                    self._execute(mart.delete(lost))
                    self._execute(mart.insert(lost))

    def _refresh_rollups(self, low: int, high: int) -> None:
        """Re-roll the months, then the years, around the branch-days just refreshed."""
        touched = "stage_mart_days"
        for rollup in ROLLUPS:
            periods = f"SELECT DISTINCT branch_key, {rollup.of} AS {rollup.key} FROM {touched}"
            self._stage(rollup.staged, self._frame(periods))
            low, high = low // 100, high // 100  # the periods of this grain
            for mart in MARTS.values():
                if mart.grain == rollup.grain:
                    self._execute(mart.delete(rollup.scope), (low, high))
                    self._execute(mart.insert(rollup.source_scope), (low * 100, high * 100 + 99))
            touched = rollup.staged

    def _merge_first_sales(self, candidates: pl.DataFrame) -> None:
        """Keep each customer's earlier first sale: the mart's, or this batch's."""
        self._stage("stage_first_sales", candidates)
        self._execute(
            "DELETE FROM mart_customer_first WHERE customer_key IN (SELECT c.customer_key "
            "FROM stage_first_sales c "
            "JOIN mart_customer_first m ON m.customer_key = c.customer_key "
            "WHERE c.sold_at < m.sold_at OR (c.sold_at = m.sold_at AND c.sale_key < m.sale_key))"
        )
        self._execute(
            "INSERT INTO mart_customer_first SELECT * FROM stage_first_sales c WHERE NOT EXISTS "
            "(SELECT 1 FROM mart_customer_first m WHERE m.customer_key = c.customer_key)"
        )

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
        import polars as pl

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
        days = f"SELECT DISTINCT branch_key, date_key FROM etl_file_branch_day WHERE {doomed}"
        self._stage("stage_doomed_days", self._frame(days))
        taken = self._frame(
            f"SELECT file_id, count(*) AS n FROM fact_sale WHERE {doomed} GROUP BY 1"
        )
        self._stage("stage_taken_rows", taken)
        for table in ("fact_sale", "fact_sale_line", "etl_file_branch_day"):
            self._execute(f"DELETE FROM {table} WHERE {doomed}")
        # The ledger keeps saying what is there: loaded - replaced rows remain.
        self._execute(
            "UPDATE etl_file SET rows_replaced = COALESCE(rows_replaced, 0) + t.n "
            "FROM stage_taken_rows t WHERE etl_file.file_id = t.file_id"
        )
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
        """First-seen times follow the facts: replaced sales no longer count, the batch's
        (appended before this runs) do; a customer is dropped only with no sale left."""
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
    # dim_customer has no key to upsert on (see brewline.schema): earlier first sightings,
    # then new customers (stage_customers has one row per customer).
    "UPDATE dim_customer SET first_seen_at = s.first_seen_at FROM stage_customers s "
    "WHERE dim_customer.customer_key = s.customer_key "
    "AND s.first_seen_at < dim_customer.first_seen_at",
    "INSERT INTO dim_customer SELECT customer_key, first_seen_at FROM stage_customers s "
    "WHERE NOT EXISTS (SELECT 1 FROM dim_customer d WHERE d.customer_key = s.customer_key)",
    "INSERT INTO etl_file_branch_day SELECT branch_key, date_key, file_id, sales "
    "FROM stage_branch_days",
    "INSERT INTO etl_file (file_id, source_name, sha256, size_bytes, layout, state, reason, "
    "message, rows_read, rows_loaded, rows_rejected, skipped_lines, run_id, recorded_at, seconds) "
    "SELECT file_id, source_name, sha256, size_bytes, layout, state, reason, message, rows_read, "
    "rows_loaded, rows_rejected, skipped_lines, run_id, recorded_at, seconds FROM stage_files",
)
