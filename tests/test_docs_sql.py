"""Every SQL example in README.md and docs/ runs, as printed, on both engines.

The README's best-sellers example used DuckDB's ``GROUP BY ALL`` and failed on
PostgreSQL. Each fenced block whose info string starts with ``sql`` is found by
scanning the files (so new docs pages are covered without listing them) and run
against a DuckDB and a PostgreSQL warehouse holding a month of the demo's sales
and a synced totesys source, from a folder holding that source's lake at ``lake/``
(as the README's examples expect); each statement must succeed and return rows.
A mark after ``sql`` narrows a block to one engine, for an example that is
engine-specific on purpose: ```` ```sql duckdb ```` or ```` ```sql postgres ````.
A block for another database (the totesys source, an administrator's role set-up)
is ```` ```sql source ```` or ```` ```sql admin ````: not run here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg
import pytest
from tests.conftest import PII_KEY, PostgresServer, new_database

from brewline.config import Settings
from brewline.load import open_warehouse
from brewline.pipeline import run
from brewline.synth import SynthSpec, generate_landing
from brewline.totesys.generate import create_source, fill
from brewline.totesys.sync import sync

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
ENGINES = ("duckdb", "postgres")
NOT_THE_WAREHOUSE = {"source", "admin"}
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```sql\b(?P<marks>[^\n]*)\n(?P<body>.*?)^[ \t]*```", re.M | re.S
)
# A statement ends at a semicolon closing its line (a trailing comment may follow).
_END = re.compile(r";[ \t]*(?:--[^\n]*)?$", re.M)


@dataclass(frozen=True)
class Example:
    """One ```sql block: where it is, its marks, its statements."""

    where: str
    marks: frozenset[str]
    statements: tuple[str, ...]

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(e for e in ENGINES if e in self.marks) or ENGINES


def examples() -> Iterator[Example]:
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for found in _FENCE.finditer(text):
            marks = frozenset(found["marks"].split())
            if marks & NOT_THE_WAREHOUSE:
                continue
            body = found["body"]
            statements = tuple(s.strip() for s in _END.split(body) if _code(s))
            line = text.count("\n", 0, found.start()) + 1
            yield Example(f"{path.relative_to(ROOT)}:{line}", marks, statements)


def _code(part: str) -> bool:
    """Whether ``part`` holds SQL, not only comments and blank lines."""
    return any(line.strip() and not line.strip().startswith("--") for line in part.splitlines())


CASES = [(example, engine) for example in examples() for engine in example.engines]


@dataclass(frozen=True)
class Loaded:
    duckdb: str
    postgres: str
    folder: Path  # holds lake/, as a reader of the docs would


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer | None
) -> Loaded:
    folder = tmp_path_factory.mktemp("docs-sql")
    landing = folder / "landing"
    generate_landing(landing, SynthSpec(branches=3, days=30, sales_per_branch_day=40, seed=5))
    source = new_database(postgres_server)
    create_source(source)
    fill(source, sales_orders=200, seed=5)
    targets = Loaded(str(folder / "w.duckdb"), new_database(postgres_server), folder)
    for warehouse, lake in ((targets.duckdb, folder / "lake"), (targets.postgres, folder / "pg")):
        settings = Settings(
            landing=landing, warehouse=warehouse, quarantine=folder / "q", pii_key=PII_KEY
        )
        assert run(settings).exit_code == 0
        with open_warehouse(warehouse) as wh:
            sync(source, lake, wh)
    return targets


def test_the_docs_have_sql_examples() -> None:
    assert len([e for e in examples() if e.where.split(":")[0] == "README.md"]) >= 3


@pytest.mark.parametrize(
    ("example", "engine"), CASES, ids=[f"{e.where}-{engine}" for e, engine in CASES]
)
def test_every_sql_example_in_the_docs_runs(
    example: Example, engine: str, loaded: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(loaded.folder)  # relative paths in an example are the reader's
    for statement in example.statements:
        if engine == "duckdb":
            with duckdb.connect(loaded.duckdb, read_only=True) as con:
                rows = con.execute(statement).fetchall()
        else:
            with psycopg.connect(loaded.postgres) as con:
                con.execute("SET TRANSACTION READ ONLY")
                rows = con.execute(statement).fetchall()
        assert rows, f"{example.where}: returns no rows on the demo data:\n{statement}"


def test_the_readme_says_how_to_load_ones_own_files_on_its_first_screen() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "`make install`, then `.venv/bin/brewline run path/to/exports`" in first_screen
