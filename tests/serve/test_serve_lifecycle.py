"""One dashboard process following a DuckDB warehouse through its life.

No warehouse yet (503), a warehouse appears (200), a writer holds the file
(pages answered before come again from then, with a note; others 503 "warehouse
busy, retry"; no traceback), then a new load brings a late branch and a rejected
row: the cached pages notice the new ledger version, the late branch is
highlighted, and the threshold is a query parameter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import duckdb
from prometheus_client.parser import text_string_to_metric_families
from tests.serve.conftest import PII_KEY, Dashboard, Sale, copy_warehouse, dashboard
from tests.serve.test_serve_pages import kpi, table_rows

from brewline.config import Settings
from brewline.load.migrations import SCHEMA_VERSION
from brewline.pipeline import run

# A branch that last traded the day before everyone else: a cash sale, a new card, a
# card first seen in 2021 at Chesterfield (a returning customer), and a bad total.
WHITBY = (
    "17/12/2024 10:00,Whitby,Ann Example,Regular Latte - 2.15,2.15,CASH,\n"
    '17/12/2024 10:05,Whitby,Bob Example,"Large Latte - 2.45, Regular Latte - 2.15",4.6,CARD,'
    "4111111111111111\n"
    "17/12/2024 10:07,Whitby,Old Regular,Large Latte - 2.45,2.45,CARD,{regular}\n"
    "17/12/2024 10:10,Whitby,Cat Example,Regular Latte - 2.15,9.99,CASH,\n"
)
WHITBY_REVENUE = Decimal("2.15") + Decimal("4.6") + Decimal("2.45")


def metrics(app: Dashboard) -> dict[str, float]:
    text = app.get("/metrics").text
    return {
        s.name + "".join(f"|{v}" for v in s.labels.values()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_dashboard_follows_the_warehouse_through_its_life(
    tmp_path: Path, sample_duckdb: Path, sample_sales: list[Sale]
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with dashboard(str(path), tmp_path / "serve") as app:
        nothing_loaded_yet(app, path)
        copy_warehouse(sample_duckdb, path)  # a warehouse appears: served without a restart
        assert kpi(app.get("/").text, "Revenue") == "£63,758.75"
        pages_wait_for_a_short_commit(app, path)
        assert app.get("/operations").status == 200
        busy_while_a_writer_holds_the_file(app, path)
        assert app.get("/").status == 200
        # A load while the dashboard runs: it holds no connection between requests.
        landing = tmp_path / "landing"
        landing.mkdir()
        regular = next(s.card for s in sample_sales if s.card and s.day.year == 2021)
        (landing / "whitby_17-12-2024_09-00-00.csv").write_text(WHITBY.format(regular=regular))
        settings = Settings(
            landing=landing, warehouse=str(path), quarantine=tmp_path / "q", pii_key=PII_KEY
        )
        report = run(settings)
        assert (report.rows_loaded, report.rows_rejected) == (3, 1)
        new_version_is_shown(app, sample_sales)
        late_branch_is_highlighted(app)
    # Nothing of the rows reached the server's output.
    assert "Ann Example" not in app.log()
    assert "4111111111111111" not in app.log()


def nothing_loaded_yet(app: Dashboard, path: Path) -> None:
    """A clear 503 everywhere, and the command warned at start."""
    assert f"Warning: no warehouse at {path}" in app.log()
    page = app.get("/")
    assert page.status == 503
    assert "<h1>Warehouse unavailable</h1>" in page.text
    assert "load one with `brewline run`" in page.text
    health = app.get("/healthz")
    assert health.status == 503
    assert json.loads(health.body) | {"error": ""} == {
        "status": "unavailable",
        "reachable": False,
        "busy": False,
        "warehouse": str(path),
        "expected_schema_version": SCHEMA_VERSION,
        "error": "",
    }
    assert metrics(app) == {"brewline_up": 0}


# Another process holds DuckDB's write lock for a moment, as a loader does per batch.
SHORT_COMMIT = """
import sys, time, duckdb
writer = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
writer.close()
"""


def pages_wait_for_a_short_commit(app: Dashboard, path: Path) -> None:
    """A writer holding the file for ~0.3 s delays a page; it does not make it 503."""
    for page in ("/", "/operations", "/healthz"):
        with subprocess.Popen(
            [sys.executable, "-c", SHORT_COMMIT, str(path), "0.3"], stdout=subprocess.PIPE
        ) as writer:
            assert writer.stdout is not None
            assert writer.stdout.readline() == b"holding\n"
            answer = app.get(page)
            assert writer.wait(timeout=30) == 0
        assert answer.status == 200, (page, answer.text)


def busy_while_a_writer_holds_the_file(app: Dashboard, path: Path) -> None:
    """As while `brewline run` writes: a page answered before is answered again from
    then, with a note, to 16 clients at once (not 503); a page never answered is 503
    "warehouse busy, retry"; never a traceback."""
    writer = duckdb.connect(str(path))
    try:
        with ThreadPoolExecutor(16) as clients:
            answers = list(clients.map(app.get, ["/", "/operations"] * 8))
        assert [a.status for a in answers] == [200] * 16
        assert all("A load is writing to the warehouse" in a.text for a in answers)
        assert kpi(answers[0].text, "Revenue") == "£63,758.75"  # the figures of before
        busy = app.get("/?branch=Leeds")
        assert busy.status == 503
        assert "<h1>Warehouse busy, retry</h1>" in busy.text
        assert "The dashboard waited 1 s for it to finish." in busy.text
        assert busy.headers["retry-after"] == "5"
        assert "Traceback" not in busy.text
        health = app.get("/healthz")
        assert health.status == 200
        assert json.loads(health.body) | {"error": ""} == {
            "status": "busy",
            "reachable": True,
            "busy": True,
            "engine": "duckdb",
            "schema_version": SCHEMA_VERSION,
            "warehouse": str(path),
            "expected_schema_version": SCHEMA_VERSION,
            "error": "",
        }
        assert metrics(app)["brewline_up"] == 0
    finally:
        writer.close()
    assert "A load is writing" not in app.get("/").text


def new_version_is_shown(app: Dashboard, sample_sales: list[Sale]) -> None:
    """Cached answers are keyed by the ledger version: a load shows at once."""
    whole = sum((s.total for s in sample_sales), Decimal("0")) + WHITBY_REVENUE
    assert kpi(app.get("/").text, "Revenue") == f"£{whole:,.2f}"
    whitby = app.get("/?branch=Whitby").text
    assert kpi(whitby, "Revenue") == f"£{WHITBY_REVENUE}"
    # The regular's first sale anywhere was in 2021: returning here, though new to Whitby.
    assert kpi(whitby, "Returning customers") == "50.0%"
    assert table_rows(whitby, "New vs returning customers") == [
        ["New", "1", "50.0%", "£4.60"],
        ["Returning", "1", "50.0%", "£2.45"],
    ]
    figures = metrics(app)
    assert figures["brewline_up"] == 1
    assert figures["brewline_files|loaded"] == 34
    assert figures["brewline_rows_loaded_total"] == 10166
    assert figures["brewline_rows_rejected_total"] == 1
    assert figures["brewline_run_duration_seconds_count|succeeded"] == 2
    assert sum(1 for k in figures if k.startswith("brewline_last_load_timestamp")) == 31


def late_branch_is_highlighted(app: Dashboard) -> None:
    operations = app.get("/operations?as_of=2024-12-19").text
    assert "1 of 31 branches late" in operations
    fresh = table_rows(operations, "Freshness")
    assert fresh[0] == ["Whitby", "Tue 17 Dec 2024", "1", fresh[0][3], "late"]
    assert operations.count('<tr class="late">') == 1
    assert {row[4] for row in fresh[1:]} == {"on time"}
    assert table_rows(operations, "Rejected rows by reason") == [
        ["row", "total_mismatch", "1", "1"]
    ]
    assert len(table_rows(operations, "Recent runs")) == 2
    # The threshold is a query parameter.
    lenient = app.get("/operations?as_of=2024-12-19&late_after=1").text
    assert "all 31 branches up to date" in lenient
    assert '<tr class="late">' not in lenient
