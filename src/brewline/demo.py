"""The demo: a synthetic month of till exports, loaded into a warehouse of its own.

:func:`write_landing` generates the exports (fake names and cards, see
:mod:`brewline.synth`) into ``<folder>/landing``; :func:`load` runs the pipeline
over them, quarantine in ``<folder>/quarantine``, and reads the headline figures.
``brewline demo`` is these two calls and a printout::

    >>> spec = SynthSpec(branches=3, days=7)
    >>> landing = write_landing(Path("demo"), spec)  # doctest: +SKIP
    >>> load(Path("demo"), "demo.duckdb").figures["sales"]  # doctest: +SKIP
    4231

Without ``BREWLINE_PII_KEY``, customer tokens are made with :data:`DEMO_PII_KEY`,
a public key, so returning customers show: but only in a warehouse the demo
made itself (a new DuckDB file, marked as the demo's), never in a real one.
The mark stays, so a later ``brewline run`` into the demo's warehouse keeps
using the demo key (:func:`with_demo_key`) instead of refusing a key it was
never told. This is the only module that imports the synthetic-data generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from brewline import queries
from brewline.config import Settings, load_settings
from brewline.errors import WarehouseError
from brewline.load import open_warehouse
from brewline.load.locations import engine_of, redact
from brewline.pipeline import run
from brewline.report import FileReport, RunReport
from brewline.synth import SynthSpec, generate_landing

__all__ = [
    "DEMO_PII_KEY",
    "DemoLoad",
    "SynthSpec",
    "demo_settings",
    "is_demo_warehouse",
    "load",
    "made_by_demo",
    "with_demo_key",
    "write_landing",
]

DEMO_PII_KEY = "brewline-demo-key-NOT-FOR-REAL-DATA"
"""A fixed key so the demo can show returning customers. Public, hence demo-only."""

_DEMO_MARK = ("created_by", "brewline demo")


@dataclass(frozen=True)
class DemoLoad:
    """What loading the demo did: the run, the headline figures, how tokens were made."""

    report: RunReport
    figures: dict[str, Any]
    """:func:`brewline.queries.headline` of the warehouse after the run."""
    key_note: str
    """One line saying whether customer tokens are on, and with which key."""


def write_landing(folder: Path, spec: SynthSpec) -> Path:
    """Generate the synthetic exports into ``folder/landing``; return that folder.

    The same spec gives the same files, so a second demo finds nothing new.
    """
    landing = folder / "landing"
    generate_landing(landing, spec)
    return landing


def load(
    folder: Path,
    warehouse: str,
    *,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[FileReport], None] | None = None,
) -> DemoLoad:
    """Load ``folder/landing`` into ``warehouse`` and read its headline figures.

    ``on_start`` and ``on_file`` are :func:`brewline.pipeline.run`'s progress
    hooks. The demo never sends alerts. Settings other than the folders and the
    warehouse come from the environment and ``brewline.toml`` as usual.
    """
    settings, key_note = demo_settings(folder, warehouse)
    report = run(settings, [folder / "landing"], on_start=on_start, on_file=on_file, alert=False)
    with open_warehouse(
        settings.warehouse, read_only=True, lock_timeout=settings.lock_timeout
    ) as wh:
        figures = queries.headline(wh)
    return DemoLoad(report, figures, key_note)


def demo_settings(folder: Path, warehouse: str) -> tuple[Settings, str]:
    """Settings for the demo, with the demo key when no key is set and the warehouse is its own.

    Returns the settings and a line for people saying how customer tokens are made.
    """
    base = {
        "landing": folder / "landing",
        "quarantine": folder / "quarantine",
        "warehouse": warehouse,
    }
    settings = load_settings(**base)
    if settings.pii_key is not None:
        return settings, "customer tokens: on, made with your BREWLINE_PII_KEY"
    if not is_demo_warehouse(warehouse, settings.lock_timeout):
        return settings, (
            f"customer tokens: off (BREWLINE_PII_KEY is not set and "
            f"{redact(warehouse)} was not made by the demo, so the demo key "
            "was not used)"
        )
    _claim_demo_warehouse(warehouse, settings.lock_timeout)
    return load_settings(**base, pii_key=DEMO_PII_KEY), (
        "customer tokens: on, made with Brewline's built-in DEMO key (demo-only, public: "
        "never use it for real data; set BREWLINE_PII_KEY for that)"
    )


def with_demo_key(settings: Settings) -> tuple[Settings, str | None]:
    """``settings`` with the demo key when none is set and the warehouse is the demo's.

    Returns the settings and a line for people saying the demo key is in use
    (None when the settings are returned unchanged). Any other warehouse, or a
    key of your own, is left alone: the pipeline then checks the key as usual.

        >>> settings, note = with_demo_key(load_settings())  # doctest: +SKIP
    """
    if settings.pii_key is not None or not made_by_demo(settings.warehouse, settings.lock_timeout):
        return settings, None
    return settings.model_copy(update={"pii_key": SecretStr(DEMO_PII_KEY)}), (
        f"customer tokens: made with the built-in DEMO key, as {redact(settings.warehouse)} "
        "was made by `brewline demo` (never load real data into it)"
    )


def is_demo_warehouse(location: str, lock_timeout: float = 30.0) -> bool:
    """A DuckDB file that does not exist yet, or one an earlier demo made."""
    if engine_of(location) == "postgres":
        return False
    return not Path(location).exists() or made_by_demo(location, lock_timeout)


def made_by_demo(location: str, lock_timeout: float = 30.0) -> bool:
    """An existing DuckDB warehouse that ``brewline demo`` made (and marked as its own)."""
    if engine_of(location) == "postgres" or not Path(location).is_file():
        return False
    with open_warehouse(location, read_only=True, lock_timeout=lock_timeout) as wh:
        try:
            wh.check_schema()
        except WarehouseError:
            return False
        return wh.get_meta(_DEMO_MARK[0]) == _DEMO_MARK[1]


def _claim_demo_warehouse(location: str, lock_timeout: float) -> None:
    """Mark the warehouse as the demo's before loading, so a rerun may use the demo key."""
    with open_warehouse(location, lock_timeout=lock_timeout) as wh:
        wh.ensure_schema()
        wh.set_meta(*_DEMO_MARK)
