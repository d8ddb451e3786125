"""Totesys reports, the CLI and the ``/totesys`` page, checked against the source tables.

One generated source, changed between syncs (updated orders, payments flipping to
paid, a renamed member of staff), is synced into a DuckDB and a PostgreSQL
warehouse in lockstep, so the facts hold several versions of some rows. Every
figure is then recomputed from the *source* with plain SQL (its tables hold only
the current version of each row), never with Brewline's code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from markupsafe import escape
from tests.pgcluster import PostgresServer
from tests.serve.cdp import CHROMIUM, Chromium
from tests.serve.conftest import dashboard
from typer.testing import CliRunner

from brewline.cli import app
from brewline.load import open_warehouse
from brewline.totesys.generate import Writer, create_source, fill
from brewline.totesys.queries import TotesysReport, totesys_report
from brewline.totesys.sync import sync

pytestmark = pytest.mark.postgres

TODAY = dt.datetime.now(dt.UTC).date()
AS_OF = (TODAY, TODAY - dt.timedelta(days=75))
ODD_NAME = "O'Keefe <b>&amp;</b>"
"""A staff surname with an apostrophe and markup: it must reach a page escaped."""


def _database(server: PostgresServer | None) -> str:
    if server is not None:
        return server.database()
    import os
    import uuid

    base = os.environ["BREWLINE_TEST_POSTGRES_URL"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}".encode())
    return base.rsplit("/", 1)[0] + f"/{name}"


@dataclass(frozen=True)
class Loaded:
    source: str
    warehouses: dict[str, str]
    staff_name: str  # the renamed member of staff, as the page shows them


@pytest.fixture(scope="module")
def loaded(
    postgres_server: PostgresServer | None, tmp_path_factory: pytest.TempPathFactory
) -> Loaded:
    """The source, and both warehouses synced from it after every change."""
    folder = tmp_path_factory.mktemp("totesys-reports")
    source = _database(postgres_server)
    create_source(source)
    fill(source, sales_orders=360, seed=21)
    warehouses = {"duckdb": str(folder / "w.duckdb"), "postgres": _database(postgres_server)}

    def sync_all() -> None:
        for engine, location in warehouses.items():
            with open_warehouse(location) as wh:
                sync(source, folder / f"lake-{engine}", wh)

    sync_all()
    writer = Writer(source, seed=22, batch=4)
    try:
        for _ in range(3):
            for _ in range(8):
                writer.step()
            sync_all()
    finally:
        writer.stop()  # closes its connection
    # The member of staff who sold most gets a surname a page must escape.
    with psycopg.connect(source) as con:
        row = con.execute(
            "SELECT staff_id, first_name FROM sales_order JOIN staff USING (staff_id) "
            "GROUP BY staff_id, first_name ORDER BY count(*) DESC, staff_id LIMIT 1"
        ).fetchone()
        assert row is not None
        con.execute(
            "UPDATE staff SET last_name = %s, last_updated = now() WHERE staff_id = %s",
            (ODD_NAME, row[0]),
        )
    sync_all()
    assert writer.written["sales_order.updated"] > 0
    assert writer.written["payment.updated"] > 0
    return Loaded(source, warehouses, f"{row[1]} {ODD_NAME}")


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def source_rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as con:
        return [tuple(r) for r in con.execute(sql.encode(), params).fetchall()]


def report_of(location: str, as_of: dt.date = TODAY, limit: int = 10) -> TotesysReport:
    with open_warehouse(location, read_only=True) as wh:
        return totesys_report(wh, as_of=as_of, limit=limit)


def rows(frame: Any, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in frame.select(columns).rows()]


# -- independent answers: plain SQL on the source tables ---------------------------------------

_SALES = """
    SELECT {key}, c.currency_code, count(*), sum(s.units_sold), sum(s.units_sold * s.unit_price)
    FROM sales_order s JOIN currency c USING (currency_id) {joins}
    GROUP BY {key}, c.currency_code ORDER BY {key}, c.currency_code
"""


def expected_sales(url: str, key: str, joins: str = "") -> list[tuple[Any, ...]]:
    return source_rows(url, _SALES.format(key=key, joins=joins))


def expected_ranked(url: str, key: str, label: str, joins: str, limit: int | None) -> list[Any]:
    """``rank, id, label, currency, units, revenue``: ranked by units, ties by id."""
    top = "" if limit is None else f"WHERE rank <= {int(limit)}"
    sql = f"""
        WITH ranking AS (
            SELECT {key} AS id, row_number() OVER (ORDER BY sum(units_sold) DESC, {key}) AS rank
            FROM sales_order GROUP BY {key}
        )
        SELECT r.rank, r.id, {label}, c.currency_code, sum(s.units_sold),
               sum(s.units_sold * s.unit_price)
        FROM sales_order s JOIN (SELECT * FROM ranking {top}) r ON r.id = s.{key}
        JOIN currency c ON c.currency_id = s.currency_id {joins}
        GROUP BY r.rank, r.id, {label}, c.currency_code
        ORDER BY r.rank, c.currency_code
    """
    return source_rows(url, sql)


def expected_ageing(url: str, as_of: dt.date) -> list[tuple[Any, ...]]:
    """Unpaid payments per type, currency and bucket, by date arithmetic (not bounds)."""
    days = "(%(as_of)s::date - to_date(p.payment_date, 'YYYY-MM-DD'))"
    bucket = f"""CASE WHEN {days} < 0 THEN 'not yet due' WHEN {days} <= 30 THEN '0-30'
        WHEN {days} <= 60 THEN '31-60' WHEN {days} <= 90 THEN '61-90' ELSE '>90' END"""
    sql = f"""
        SELECT t.payment_type_name, c.currency_code, {bucket} AS bucket, count(*),
               sum(p.payment_amount)
        FROM payment p JOIN currency c USING (currency_id)
        JOIN payment_type t USING (payment_type_id)
        WHERE NOT p.paid GROUP BY 1, 2, 3
    """
    with psycopg.connect(url) as con:
        return sorted(tuple(r) for r in con.execute(sql.encode(), {"as_of": as_of}).fetchall())


# -- the report ---------------------------------------------------------------------------------


def test_every_sales_figure_equals_a_recomputation_from_the_source(
    loaded: Loaded, engine: str
) -> None:
    url = loaded.source
    report = report_of(loaded.warehouses[engine])
    assert rows(report.by_currency, "currency", "orders", "units", "revenue") == [
        (code, orders, units, revenue)
        for _, code, orders, units, revenue in expected_sales(url, "1")
    ]
    month = "date_trunc('month', s.created_at)::date"
    assert rows(report.by_month, "month", "currency", "orders", "units", "revenue") == (
        expected_sales(url, month)
    )
    department = "d.department_name"
    staff_join = "JOIN staff f ON f.staff_id = s.staff_id JOIN department d USING (department_id)"
    assert rows(report.by_department, "department", "currency", "orders", "units", "revenue") == (
        expected_sales(url, department, staff_join)
    )
    place = "JOIN address a ON a.address_id = s.agreed_delivery_location_id"
    assert rows(report.by_country, "country", "currency", "orders", "units", "revenue") == (
        expected_sales(url, "a.country", place)
    )
    figures = ("currency", "units", "revenue")
    design = "JOIN design d ON d.design_id = s.design_id"
    assert rows(report.by_design, "rank", "design_id", "design", *figures) == expected_ranked(
        url, "design_id", "d.design_name", design, 10
    )
    party = "JOIN counterparty p ON p.counterparty_id = s.counterparty_id"
    assert rows(
        report.by_counterparty, "rank", "counterparty_id", "counterparty", *figures
    ) == expected_ranked(url, "counterparty_id", "p.counterparty_legal_name", party, 10)
    staff = (
        "JOIN staff f ON f.staff_id = s.staff_id "
        "JOIN department d ON d.department_id = f.department_id"
    )
    name = "f.first_name || ' ' || f.last_name, d.department_name"
    assert rows(
        report.by_staff, "rank", "staff_id", "staff", "department", *figures
    ) == expected_ranked(url, "staff_id", name, staff, None)
    assert rows(
        report.by_location, "rank", "location_id", "city", "country", *figures
    ) == expected_ranked(url, "agreed_delivery_location_id", "a.city, a.country", place, None)
    assert report.generation is not None
    assert not report.empty


def test_only_the_current_version_of_an_order_counts(loaded: Loaded, engine: str) -> None:
    """The facts hold old versions too; summing them all would give other figures."""
    location = loaded.warehouses[engine]
    with open_warehouse(location, read_only=True) as wh:
        versions, orders, every_version = wh.query(
            "SELECT count(*) AS versions, count(DISTINCT sales_order_id) AS orders, "
            "sum(units_sold) AS units "
            "FROM totesys_fact_sales_order"
        ).row(0)
    assert versions > orders  # some orders were updated between syncs
    report = report_of(location)
    assert int(report.by_currency["orders"].sum()) == orders
    assert int(report.by_currency["units"].sum()) != every_version


@pytest.mark.parametrize("as_of", AS_OF, ids=["today", "75-days-ago"])
def test_unpaid_payments_ageing_equals_the_source(
    loaded: Loaded, engine: str, as_of: dt.date
) -> None:
    report = report_of(loaded.warehouses[engine], as_of)
    expected = expected_ageing(loaded.source, as_of)
    found = rows(report.ageing, "payment_type", "currency", "bucket", "payments", "amount")
    assert sorted(found) == expected
    assert {bucket for _, _, bucket, _, _ in expected} >= {"not yet due", ">90"}
    # Payments flipped to paid between syncs are not counted as unpaid.
    with open_warehouse(loaded.warehouses[engine], read_only=True) as wh:
        ever_unpaid = wh.query(
            "SELECT count(DISTINCT payment_id) FROM totesys_fact_payment WHERE NOT paid"
        ).item()
    assert sum(n for *_, n, _ in expected) < ever_unpaid


def test_both_engines_give_the_same_report(loaded: Loaded) -> None:
    duck, postgres = (report_of(loaded.warehouses[e]) for e in ("duckdb", "postgres"))
    for name, frame in duck.frames().items():
        assert frame.equals(postgres.frames()[name]), name
        assert frame.schema == postgres.frames()[name].schema, name


def test_a_design_not_loaded_yet_still_counts(
    loaded: Loaded, warehouse_url: str, tmp_path: Path
) -> None:
    """A late-arriving design: its orders count under "design #<id> (not loaded yet)"."""
    with open_warehouse(warehouse_url) as wh:
        sync(loaded.source, tmp_path / "lake", wh)
        top = report_of_wh(wh).by_design.row(0, named=True)
        wh.run_admin([f"DELETE FROM totesys_dim_design WHERE design_id = {top['design_id']}"])
    report = report_of(warehouse_url, limit=1_000)
    late = report.by_design.filter(report.by_design["design_id"] == top["design_id"])
    assert set(late["design"]) == {f"design #{top['design_id']} (not loaded yet)"}
    assert late["rank"][0] == 1
    assert int(report.by_design["units"].sum()) == int(report.by_currency["units"].sum())


def report_of_wh(wh: Any) -> TotesysReport:
    return totesys_report(wh, as_of=TODAY)


# -- the command line ---------------------------------------------------------------------------


def invoke(*args: object) -> Any:
    env = {"BREWLINE_CONFIG": "/dev/null", "BREWLINE_WAREHOUSE": None, "COLUMNS": "80"}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def test_report_json_has_every_figure_with_money_as_strings(loaded: Loaded, engine: str) -> None:
    location = loaded.warehouses[engine]
    result = invoke("report", "--source", "totesys", "--json", "-w", location, "--as-of", TODAY)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["source"], answer["as_of"]) == ("totesys", TODAY.isoformat())
    assert list(answer)[3:] == [
        "generation",
        "by_currency",
        "by_month",
        "by_design",
        "by_counterparty",
        "by_staff",
        "by_department",
        "by_location",
        "by_country",
        "ageing",
    ]
    assert [(r["currency"], r["revenue"]) for r in answer["by_currency"]] == [
        (code, str(revenue)) for _, code, _, _, revenue in expected_sales(loaded.source, "1")
    ]
    assert sorted(
        (r["payment_type"], r["currency"], r["bucket"], r["payments"], Decimal(r["amount"]))
        for r in answer["ageing"]
    ) == expected_ageing(loaded.source, TODAY)
    assert all(isinstance(r["amount"], str) for r in answer["ageing"])
    assert answer["by_month"][0]["month"] == re.sub(
        r"-\d\d$", "-01", answer["by_month"][0]["month"]
    )


def test_report_tables_fit_80_columns_and_name_every_currency(loaded: Loaded) -> None:
    result = invoke(
        "report", "--source", "totesys", "-w", loaded.warehouses["duckdb"], "--limit", 30
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for _, code, _, _, revenue in expected_sales(loaded.source, "1"):
        assert f"{code} {revenue:,.2f}" in result.stdout
    assert "£" not in result.stdout
    assert ODD_NAME in result.stdout  # printed as it is (not markup)
    for title in ("Sales by currency", "Top 30 designs", "Unpaid payments by days overdue"):
        assert title in result.stdout


def test_a_warehouse_without_totesys_data_says_what_to_run(tmp_path: Path) -> None:
    location = str(tmp_path / "cafe.duckdb")
    with open_warehouse(location) as wh:
        wh.ensure_schema()
    result = invoke("report", "--source", "totesys", "-w", location)
    assert result.exit_code == 0, result.output
    heading, line = result.stdout.splitlines()  # one line, however long
    assert heading == f"Warehouse {location}"
    assert line == (
        "No totesys data in this warehouse yet: run "
        f"`brewline sync SOURCE_URL --lake LAKE --warehouse {location}`."
    )
    assert (
        json.loads(invoke("report", "--source", "totesys", "--json", "-w", location).stdout)[
            "by_currency"
        ]
        == []
    )


# -- the dashboard page -------------------------------------------------------------------------

_SPECS = re.compile(r'<script id="chart-specs" type="application/json">(.*?)</script>', re.S)


def page_text(body: str) -> tuple[str, list[dict[str, Any]]]:
    """The page without its chart specs, and the specs."""
    found = _SPECS.search(body)
    specs = json.loads(found.group(1)) if found else []
    return _SPECS.sub("", body), specs


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def totesys_dashboard(
    request: pytest.FixtureRequest, loaded: Loaded, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    location = loaded.warehouses[request.param]
    with dashboard(location, tmp_path_factory.mktemp(f"serve-{request.param}")) as running:
        yield running


def test_the_page_shows_the_figures_and_escapes_names(
    totesys_dashboard: Any, loaded: Loaded
) -> None:
    answer = totesys_dashboard.get(f"/totesys?as_of={TODAY.isoformat()}")
    assert answer.status == 200
    text, specs = page_text(answer.text)
    assert '<a href="/totesys" class="active">Totesys</a>' in text
    for _, code, orders, units, revenue in expected_sales(loaded.source, "1"):
        assert f"{code} {revenue:,.2f}" in text
        assert f"{orders:,} orders, {units:,} units" in text
    for kind, code, _, _, amount in expected_ageing(loaded.source, TODAY):
        assert kind.replace("_", " ").capitalize() in text
        assert f"{code} {amount:,.2f}" in text
    top = expected_ranked(
        loaded.source, "design_id", "d.design_name", "JOIN design d USING (design_id)", 1
    )
    assert escape(top[0][2]) in text
    # The renamed member of staff: escaped in the HTML, never raw markup.
    assert escape(loaded.staff_name) in text
    assert "<b>&amp;</b>" not in text
    assert "O'Keefe" not in text
    assert [s["id"] for s in specs] == [
        "totesys-revenue-by-month",
        "totesys-designs",
        "totesys-counterparties",
        "totesys-departments",
        "totesys-countries",
    ]
    # Money is never stacked across currencies: one trace per currency per chart.
    assert [t["name"] for t in specs[0]["data"]] == sorted(
        {c for _, c, *_ in expected_sales(loaded.source, "1")}
    )
    assert (
        "</script" not in answer.text.split('type="application/json">', 1)[1].split("</script>")[0]
    )


def test_a_second_request_is_served_from_the_cache(totesys_dashboard: Any) -> None:
    first = totesys_dashboard.get("/totesys")
    second = totesys_dashboard.get("/totesys")
    assert first.body == second.body
    assert float(re.findall(r"render;dur=([\d.]+)", second.headers["server-timing"])[0]) < 1


def test_bad_as_of_is_a_400(totesys_dashboard: Any) -> None:
    answer = totesys_dashboard.get("/totesys?as_of=yesterday")
    assert answer.status == 400
    assert "as_of must be a date" in answer.text


def test_no_totesys_data_says_so_then_a_sync_shows_it(loaded: Loaded, tmp_path: Path) -> None:
    """One friendly line with the command; after a sync the page shows the figures at once
    (the cache is keyed by the star generation, which a sync changes)."""
    location = str(tmp_path / "w.duckdb")
    with open_warehouse(location) as wh:
        wh.ensure_schema()
    with dashboard(location, tmp_path / "serve") as running:
        empty = running.get("/totesys")
        assert empty.status == 200
        assert "No totesys data in this warehouse yet: run <code>brewline sync SOURCE_URL " in (
            empty.text
        )
        assert 'id="chart-specs"' not in empty.text
        with open_warehouse(location) as wh:
            sync(loaded.source, tmp_path / "lake", wh)
        full = running.get("/totesys")
    assert full.status == 200
    assert "No totesys data" not in full.text
    code, revenue = expected_sales(loaded.source, "1")[0][1::3]
    assert f"{code} {revenue:,.2f}" in full.text


@pytest.mark.browser
def test_the_page_draws_in_headless_chromium(loaded: Loaded, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-system-deps.sh (as root)")
    from tests.serve.test_serve_browser import (
        ALL_CHARTS_DRAWN,
        CHART_LAYOUT,
        DRAWN,
        nothing_covered_or_clipped,
    )

    heights = "Array.from(document.querySelectorAll('.chart')).map(e => e.offsetHeight)"
    location = loaded.warehouses["duckdb"]
    with dashboard(location, tmp_path / "serve") as running, Chromium() as browser:
        browser.open(running.base + "/totesys", ready=DRAWN)
        browser.pump(0.3)
        charts = browser.evaluate(ALL_CHARTS_DRAWN)
        assert len(charts) == 5
        for chart in charts:
            assert min(chart["traces"], chart["svgs"], chart["marks"]) >= 1, chart
        assert browser.problems() == []
        nothing_covered_or_clipped(browser.evaluate(CHART_LAYOUT))
        drawn = browser.evaluate(heights)
        # A window resize keeps every chart at its own height (not the CSS minimum).
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )
        browser.pump(0.5)
        assert browser.evaluate(heights) == drawn
        assert min(drawn) > 250
        shot = browser.screenshot(tmp_path / "totesys.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = Path(__file__).resolve().parents[2] / ".screenshots"
    if keep.is_dir():  # a person looks at them: `mkdir .screenshots` to keep a copy
        shutil.copy(shot, keep / "totesys.png")
