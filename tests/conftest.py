"""Shared fixtures: real files from ../shared/data, real warehouses in tmp dirs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from brewline.config import Settings

SHARED_EXPORTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "branch-exports"
PII_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session")
def shared_exports() -> Path:
    """The real branch exports (read-only: never write beside them)."""
    if not SHARED_EXPORTS.is_dir():
        pytest.fail(f"real sample exports not found at {SHARED_EXPORTS}")
    return SHARED_EXPORTS


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


@pytest.fixture
def make_settings(tmp_path: Path, landing: Path) -> Callable[..., Settings]:
    """Settings pointing at a throwaway DuckDB warehouse and quarantine in tmp_path."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "landing": landing,
            "warehouse": str(tmp_path / "warehouse.duckdb"),
            "quarantine": tmp_path / "quarantine",
        }
        values.update(overrides)
        return Settings(**values)

    return make


def copy_exports(source: Path, target: Path, names: list[str] | None = None) -> list[Path]:
    """Copy real exports (all, or the named ones) into a landing folder."""
    copied = []
    for path in sorted(source.rglob("*.csv")):
        if names is None or path.name in names:
            copied.append(Path(shutil.copy2(path, target / path.name)))
    return copied
