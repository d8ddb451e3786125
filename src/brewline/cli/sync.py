"""``brewline sync``: the totesys source, extract -> lake -> star -> warehouse.

A thin layer over :mod:`brewline.totesys.sync`::

    $ brewline sync postgresql://reader@oltp/totesys --lake lake/
    $ brewline sync postgresql://... --lake s3://bucket/totesys/ --stage extract
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from brewline.cli.output import JsonOption, WarehouseOption, exit_on_error, print_json, printable

__all__ = ["Stage", "summary", "sync"]


class Stage(StrEnum):
    """Which stages to run: all of them, or one (for people who schedule them apart)."""

    ALL = "all"
    EXTRACT = "extract"
    MODEL = "model"
    LOAD = "load"


def sync(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE_URL",
            help="The totesys database: a postgresql:// URL of a role that can read its "
            "tables (SELECT; see docs/totesys.md).",
        ),
    ],
    *,
    lake: Annotated[
        str,
        typer.Option(
            metavar="LOCATION",
            help="The parquet lake: a folder or s3://bucket/prefix/ (raw and star zones).",
        ),
    ],
    warehouse: WarehouseOption = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-read every row, not only the row versions written since the "
            "previous sync (e.g. after rows were lost from the lake).",
        ),
    ] = False,
    stage: Annotated[
        Stage,
        typer.Option(help="Run one stage only (extract, model or load)."),
    ] = Stage.ALL,
    as_json: JsonOption = False,
) -> None:
    """Sync the totesys source: extract what changed, model the star, load the warehouse.

    Extract reads the row versions of each table that transactions unseen by
    its cursor wrote (by transaction id, whatever last_updated says: late
    commits, backfills and other time zones are never skipped), into immutable
    parquet files of the lake's raw zone; its cursors move only once the files
    are written. Model rebuilds the star schema (facts keep
    every version, dimensions the current one) into the star zone. Load
    replaces the warehouse's totesys_* tables in one transaction; a sync with
    nothing new changes nothing. Exits 0 on success, 1 when a stage failed.
    """
    from brewline.config import load_settings
    from brewline.load import open_warehouse
    from brewline.totesys import sync as stages
    from brewline.totesys.lake import open_lake

    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse)
        with open_warehouse(
            settings.warehouse, lock_timeout=settings.lock_timeout, share=True
        ) as wh:
            if stage == Stage.ALL:
                report = stages.sync(source, lake, wh, full=full)
                payload = report.to_dict()
            else:
                where = open_lake(lake)
                if stage == Stage.EXTRACT:
                    done = stages.extract_stage(source, where, wh, full=full)
                    payload = {"extract_id": done.extract_id, "rows": done.rows}
                elif stage == Stage.MODEL:
                    payload = stages.model_stage(where)
                else:
                    payload = {"loaded": stages.load_stage(where, wh)}
    if as_json:
        print_json(payload)
        return
    for line in summary(payload):
        typer.echo(printable(line))


def summary(payload: dict[str, Any]) -> list[str]:
    """A sync (or one stage) in a few lines that fit 80 columns."""
    lines = []
    if "rows_extracted" in payload:
        rows = sum(payload["rows_extracted"].values())
        lines.append(
            f"Extracted {rows:,} changed rows ({payload['lag_seconds']}s behind the source) "
            f"in {payload['seconds'].get('extract', 0):.2f}s."
        )
    elif "rows" in payload and "extract_id" in payload:
        lines.append(f"Extracted {payload['rows']:,} changed rows ({payload['extract_id']}).")
    star = payload.get("star_rows") or (payload.get("rows") if "tables" in payload else None)
    if star:
        lines.append(
            f"Star: {star['fact_sales_order']:,} sales order, "
            f"{star['fact_purchase_order']:,} purchase order and {star['fact_payment']:,} "
            "payment versions."
        )
    if "loaded" in payload:
        lines.append("Loaded into the warehouse." if payload["loaded"] else "Warehouse up to date.")
    return lines
