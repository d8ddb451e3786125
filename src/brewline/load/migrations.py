"""Schema versions: what each version adds, per engine, derived from :mod:`brewline.schema`.

    >>> [version for version, _ in migrations("duckdb", after=1)]
    [2, 3, 4, 5, 6]

A version creates the tables declared with that ``since``, adds the columns
declared with that ``since`` to older tables, and runs its extra statements
(``all`` engines, or only ``duckdb`` / ``postgres``).
"""

from __future__ import annotations

from brewline.marts import BRANCH_DAY, MARTS, ROLLUPS
from brewline.schema import MARTS_SINCE, ROLLUPS_SINCE, TABLES

__all__ = ["SCHEMA_VERSION", "migrations"]


def _marts_added(version: int) -> dict[str, list[str]]:
    """Fill the marts a version adds (in refresh order: a rollup after its source)."""
    added = [mart for mart in MARTS.values() if TABLES[mart.table].since == version]
    keys = {BRANCH_DAY: "date_key", **{rollup.grain: rollup.key for rollup in ROLLUPS}}
    indexes = [
        f"CREATE INDEX IF NOT EXISTS {mart.table}_brin ON {mart.table} "
        f"USING brin ({keys[mart.grain]})"
        if mart.grain in keys
        else f"CREATE INDEX IF NOT EXISTS {mart.table}_customer ON {mart.table} (customer_key)"
        for mart in added
    ]
    return {"all": [mart.insert("TRUE") for mart in added], "postgres": indexes}


_EXTRA: dict[int, dict[str, list[str]]] = {
    # Replacing a file deletes its rows, always restricted to the trading days it
    # covers; dashboards filter by date too. Rows arrive day by day, so a BRIN
    # index on date_key lets both skip all other days for almost nothing: B-tree
    # indexes on the fact tables made bulk COPY 2.5x slower. (DuckDB's zone maps
    # already prune by date_key the same way.)
    2: {
        "postgres": [
            "CREATE INDEX IF NOT EXISTS fact_sale_date_brin ON fact_sale USING brin (date_key)",
            "CREATE INDEX IF NOT EXISTS fact_sale_line_date_brin "
            "ON fact_sale_line USING brin (date_key)",
            "CREATE INDEX IF NOT EXISTS etl_rejected_row_file_id ON etl_rejected_row (file_id)",
        ]
    },
    # The marts start equal to the facts a warehouse already holds; loads keep them so.
    # A load refreshes the periods it touched: PostgreSQL finds them by BRIN (marts
    # grow in date order, like the facts) and customers by a B-tree.
    **{version: _marts_added(version) for version in (MARTS_SINCE, ROLLUPS_SINCE)},
}

SCHEMA_VERSION = max(
    [
        *_EXTRA,
        *(t.since for t in TABLES.values()),
        *(c.since for t in TABLES.values() for c in t.columns),
    ]
)


def migrations(engine: str, after: int) -> list[tuple[int, list[str]]]:
    """The statements that bring a warehouse at version ``after`` to :data:`SCHEMA_VERSION`."""
    steps = []
    for version in range(after + 1, SCHEMA_VERSION + 1):
        creates = [t.create_sql(version=version) for t in TABLES.values() if t.since == version]
        creates += [
            f"ALTER TABLE {t.name} ADD COLUMN {c.sql()}"
            for t in TABLES.values()
            if t.since < version
            for c in t.columns
            if c.since == version
        ]
        extra = _EXTRA.get(version, {})
        steps.append((version, creates + extra.get("all", []) + extra.get(engine, [])))
    return steps
