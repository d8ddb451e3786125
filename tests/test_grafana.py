"""The Grafana dashboards: valid dashboard JSON, and every panel's SQL runs on a real warehouse.

A PostgreSQL warehouse is loaded once from the real sample exports (plus a file
with a bad row and an unreadable file, so the reject panels have something to
show), the read-only role Grafana is meant to use is granted, and every panel
query is run as that role with Grafana's macros expanded, for all branches and
for one. Each must return at least one row.

The macros the dashboards may use are exactly those :func:`expand` knows.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from pydantic import SecretStr
from tests.conftest import PII_KEY, SHARED_EXPORTS
from tests.pgcluster import PostgresServer

from brewline.config import Settings
from brewline.load import open_warehouse
from brewline.load.admin import grant_readonly
from brewline.pipeline import run

pytestmark = pytest.mark.postgres

GRAFANA = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE_UID = "brewline-warehouse"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
READER = "grafana_reader"

# A Grafana time range wide enough for any data, as Grafana would render it.
TIME_FROM, TIME_TO = "'2000-01-01'", "'2100-01-01'"
_TIME_FILTER = re.compile(r"\$__timeFilter\(([^()]+)\)")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")

# Crafted faults beside the real exports: one bad row (total_mismatch), one unreadable file.
BAD_ROW_FILE = (
    "18/12/2024 10:00,Grafana Test,Ann Example,Large Latte - 2.45,2.45,CASH,\n"
    "18/12/2024 10:05,Grafana Test,Bob Example,Large Latte - 2.45,9.99,CASH,\n"
)
UNREADABLE_FILE = "not a till export,at all\n"


def expand(sql: str, variables: dict[str, list[str]]) -> str:
    """Expand the Grafana macros and variables the dashboards use, as Grafana would.

    ``$__timeFilter(col)`` becomes a BETWEEN over :data:`TIME_FROM`..:data:`TIME_TO`;
    ``$name`` / ``${name}`` becomes the variable's values, quoted for SQL and
    comma-separated (Grafana's default for a multi-value variable). Any other
    ``$__`` macro is an error: add it here before using it in a panel.
    """
    sql = _TIME_FILTER.sub(lambda m: f"{m.group(1)} BETWEEN {TIME_FROM} AND {TIME_TO}", sql)
    if "$__" in sql:
        raise AssertionError(f"a Grafana macro the test does not expand: {sql}")

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return ", ".join("'" + v.replace("'", "''") + "'" for v in variables[name])

    return _VARIABLE.sub(value, sql)


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return board


PANEL_CASES = [
    pytest.param(path.name, panel["id"], id=f"{path.stem}-{panel['id']}-{panel['title']}")
    for path in DASHBOARDS
    for panel in panels(_load(path))
    if panel["type"] != "row"
]


# -- the warehouse -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader_url(
    postgres_server: PostgresServer | None, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A warehouse loaded from the sample exports; the URL of Grafana's read-only role.

    On a server named by BREWLINE_TEST_POSTGRES_URL (where a new role could not
    log in without a password) the queries run as the loading user instead.
    """
    url = postgres_server.database() if postgres_server else _external_database()
    tmp = tmp_path_factory.mktemp("grafana")
    landing = tmp / "landing"
    landing.mkdir()
    for path in SHARED_EXPORTS.rglob("*.csv"):
        shutil.copy2(path, landing / path.name)
    (landing / "grafana-test_18-12-2024_10-00-00.csv").write_text(BAD_ROW_FILE)
    (landing / "notes.csv").write_text(UNREADABLE_FILE)
    report = run(
        Settings(landing=landing, warehouse=url, quarantine=tmp / "q", pii_key=SecretStr(PII_KEY))
    )
    assert report.count("rejected") == 1
    assert report.rows_rejected == 2
    if postgres_server is None:
        return url
    with open_warehouse(url) as wh:
        grant_readonly(wh, READER)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{READER}@{parts.hostname}:{parts.port}"))


def _external_database() -> str:
    base = os.environ["BREWLINE_TEST_POSTGRES_URL"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}".encode())
    return base.rsplit("/", 1)[0] + f"/{name}"


def _rows(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as con:
        cursor = con.execute(sql.encode())  # bytes: no placeholder parsing, as Grafana sends it
        return [c.name for c in cursor.description or []], cursor.fetchall()


@pytest.fixture(scope="module")
def branches(reader_url: str) -> list[str]:
    """The values of the ``branch`` variable, from the variable's own query."""
    board = _load(DASHBOARDS[0])
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "branch"]
    _, rows = _rows(reader_url, variable["query"])
    return [row[0] for row in rows]


# -- tests -------------------------------------------------------------------------------------


def test_there_are_two_dashboards_with_distinct_uids() -> None:
    assert [p.name for p in DASHBOARDS] == ["operations.json", "sales.json"]
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert uids == ["brewline-operations", "brewline-sales"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_json_is_grafana_dashboard_json(path: Path) -> None:
    board = _load(path)
    assert board["uid"]
    assert board["title"].startswith("Brewline / ")
    assert isinstance(board["schemaVersion"], int)
    assert board["time"]["from"]
    assert board["time"]["to"] == "now"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert board["panels"], "a dashboard needs panels"
    for panel in panels(board):
        assert panel["title"]
        assert panel["type"] in {"stat", "timeseries", "table", "piechart", "barchart"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["refId"]
            assert target["datasource"] == panel["datasource"]
            assert target["rawQuery"] is True
            assert target["editorMode"] == "code"
            assert target["format"] in {"table", "time_series"}
            assert target["rawSql"].strip()
            assert "?" not in target["rawSql"]
    (variable,) = board["templating"]["list"]
    assert variable["name"] == "branch"
    assert variable["type"] == "query"
    assert variable["datasource"]["uid"] == DATASOURCE_UID


def test_panels_do_not_overlap() -> None:
    for path in DASHBOARDS:
        taken: set[tuple[int, int]] = set()
        for panel in panels(_load(path)):
            g = panel["gridPos"]
            cells = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & taken, f"{path.name}: {panel['title']} overlaps another panel"
            taken |= cells


def _yaml_pairs(path: Path) -> list[tuple[str, str]]:
    """``key: value`` lines of a provisioning file, in order (no YAML library needed)."""
    pairs = []
    for line in path.read_text().splitlines():
        body = line.split("#", 1)[0].strip().removeprefix("- ")
        if ":" in body:
            key, value = body.split(":", 1)
            pairs.append((key.strip(), value.strip()))
    return pairs


def test_provisioning_files_point_at_the_dashboards_and_the_datasource() -> None:
    source = _yaml_pairs(GRAFANA / "provisioning" / "datasources" / "brewline.yaml")
    assert ("apiVersion", "1") in source
    assert ("uid", DATASOURCE_UID) in source
    assert ("type", DATASOURCE_TYPE) in source
    for key, variable in [
        ("url", "HOST"),
        ("user", "USER"),
        ("database", "NAME"),
        ("sslmode", "SSLMODE"),
        ("password", "PASSWORD"),
    ]:
        assert (key, f"${{BREWLINE_GRAFANA_DB_{variable}}}") in source
    provider = _yaml_pairs(GRAFANA / "provisioning" / "dashboards" / "brewline.yaml")
    assert ("type", "file") in provider
    assert ("path", "/var/lib/grafana/dashboards/brewline") in provider
    readme = (GRAFANA / "README.md").read_text()
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards/brewline" in readme


def test_expand_knows_only_the_documented_macros() -> None:
    sql = "SELECT 1 FROM t WHERE $__timeFilter(t.at) AND b IN ($branch) AND c IN (${branch})"
    assert expand(sql, {"branch": ["O'Neill", "Leeds"]}) == (
        "SELECT 1 FROM t WHERE t.at BETWEEN '2000-01-01' AND '2100-01-01' "
        "AND b IN ('O''Neill', 'Leeds') AND c IN ('O''Neill', 'Leeds')"
    )
    with pytest.raises(AssertionError, match="macro"):
        expand("SELECT $__timeGroup(at, '1d')", {})


def test_the_branch_variable_lists_every_branch(branches: list[str]) -> None:
    in_files = set()
    for path in SHARED_EXPORTS.rglob("*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            in_files |= {row[1] for row in csv.reader(handle) if row}
    assert branches == sorted([*in_files, "Grafana Test"])


@pytest.mark.parametrize(("dashboard", "panel_id"), PANEL_CASES)
@pytest.mark.parametrize("selection", ["all", "one"])
def test_every_panel_query_returns_rows(
    dashboard: str, panel_id: int, selection: str, reader_url: str, branches: list[str]
) -> None:
    board = _load(GRAFANA / "dashboards" / dashboard)
    (panel,) = [p for p in panels(board) if p["id"] == panel_id]
    chosen = branches if selection == "all" else ["Chesterfield"]
    for target in panel["targets"]:
        columns, rows = _rows(reader_url, expand(target["rawSql"], {"branch": chosen}))
        assert rows, f"{panel['title']}: no rows"
        if target["format"] == "time_series":
            assert columns[0] == "time", f"{panel['title']}: a time series needs a time column"
            assert all(row[0] is not None for row in rows)
