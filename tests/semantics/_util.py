"""Small helpers for the review tests: build export lines, write landing files, read tables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.marts import assert_marts_exact
from typer.testing import CliRunner

from brewline.cli import app
from brewline.load import open_warehouse

NAME = "Richard Copeland"
CARD = "5494173772652516"
VOLATILE = {"recorded_at", "seconds", "run_id", "started_at", "finished_at", "applied_at"}


def line(
    *,
    ts: str = "25/08/2021 09:00",
    branch: str = "Leeds",
    name: str = NAME,
    basket: str = "Large Latte - 2.45",
    total: str = "2.45",
    pay: str = "CARD",
    card: str = CARD,
) -> str:
    """One standard-layout export line (basket quoted when it holds a comma)."""
    quoted = f'"{basket}"' if "," in basket else basket
    return f"{ts},{branch},{name},{quoted},{total},{pay},{card}\n"


def write(folder: Path, name: str, content: str | bytes, mtime: float) -> Path:
    """Write a landing file and pin its mtime (delivery order)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    os.utime(path, (mtime, mtime))
    return path


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with open_warehouse(url, read_only=True) as wh:
        return wh.query(sql).rows()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but etl_run, sorted, without timing/run columns (the marts checked exact)."""
    assert_marts_exact(url)
    tables = [
        "schema_version",
        "etl_meta",
        "dim_branch",
        "dim_product",
        "dim_date",
        "dim_customer",
        "fact_sale",
        "fact_sale_line",
        "etl_file",
        "etl_file_branch_day",
        "etl_rejected_row",
    ]
    out = {}
    with open_warehouse(url, read_only=True) as wh:
        for table in tables:
            frame = wh.query(f"SELECT * FROM {table}")
            frame = frame.drop([c for c in frame.columns if c in VOLATILE])
            out[table] = sorted(frame.rows(), key=repr)
    return out


def text_values(url: str) -> list[str]:
    """Every value of every table, as text (keys included: a card must not be a key either)."""
    tables = [
        r[0]
        for r in rows(
            url,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        )
    ]
    values: list[str] = []
    for table in tables:
        for row in rows(url, f"SELECT * FROM {table}"):
            values += [str(v) for v in row if v is not None]
    return values


def report_json(warehouse: str, *args: str) -> str:
    """``brewline report --json`` on a warehouse, in process, with no settings from the machine."""
    env = {"BREWLINE_CONFIG": os.devnull, "BREWLINE_PII_KEY": None, "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["report", "-w", warehouse, "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output
