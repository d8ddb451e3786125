"""``brewline demo --source totesys``: a generated totesys database, synced twice.

Without a server URL it starts a throwaway PostgreSQL cluster (as the tests
do), fills it with a generated tote-bag business, syncs it into the warehouse
through a lake, lets the business trade a little (new orders, payments turning
paid), syncs again to show the incremental extract, then removes the cluster.
The warehouse and the lake stay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from brewline.totesys.sync import SyncReport, sync

__all__ = ["TotesysDemo", "run_demo"]


@dataclass(frozen=True)
class TotesysDemo:
    first: SyncReport
    second: SyncReport
    revenue: list[tuple[str, str]]
    """(currency code, revenue of the current sales orders) for the headline."""


def run_demo(
    warehouse: str,
    lake: Path,
    *,
    source_url: str | None = None,
    sales_orders: int = 10_000,
    seed: int = 7,
) -> TotesysDemo:
    from brewline.load import open_warehouse
    from brewline.totesys.generate import Writer, create_source, fill

    with _source(source_url) as url:
        create_source(url)
        with contextlib.suppress(ValueError):  # a source filled before: keep its rows
            fill(url, sales_orders=sales_orders, seed=seed)
        with open_warehouse(warehouse, share=True) as wh:
            first = sync(url, lake, wh)
            writer = Writer(url, seed=seed + 1)
            for _ in range(20):  # a little trading between two syncs
                writer.step()
            second = sync(url, lake, wh)
            rows = wh.query(
                "SELECT c.currency_code, CAST(sum(f.units_sold * f.unit_price) AS VARCHAR) AS v "
                "FROM totesys_fact_sales_order f JOIN totesys_dim_currency c "
                "ON c.currency_id = f.currency_id WHERE f.sales_record_id IN "
                "(SELECT max(sales_record_id) FROM totesys_fact_sales_order "
                "GROUP BY sales_order_id) GROUP BY 1 ORDER BY 1"
            )
    return TotesysDemo(first, second, [(str(c), str(v)) for c, v in rows.iter_rows()])


@contextlib.contextmanager
def _source(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    from brewline.pgcluster import PostgresServer

    server = PostgresServer()
    try:
        yield server.database()
    finally:
        server.remove()
