"""The dashboard in a real browser: headless Chromium (Debian's) driven over the
DevTools protocol. Checks that every chart is drawn, that nothing is fetched
from anywhere but the dashboard itself (it works offline), that the console
stays clean, that nothing is covered, clipped or hidden, and saves screenshots
under the test's tmp_path for a person to look at.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from tests.serve.cdp import CHROMIUM, Chromium
from tests.serve.conftest import PII_KEY, copy_warehouse, dashboard

from brewline.config import Settings
from brewline.pipeline import run

PAGES = {
    "sales": "/",
    "sales-leeds": "/?branch=Leeds&start=2024-12-18&end=2024-12-18",
    "operations": "/operations",
}
# A branch that last traded the day before the others, and a file no layout matches.
WHITBY = "17/12/2024 10:00,Whitby,Ann Example,Regular Latte - 2.15,2.15,CASH,\n"
MYSTERY = "this;is;not;a;till;export\n1;2;3;4;5;6\n"
DRAWN = "document.body !== null && document.body.classList.contains('charts-drawn')"
# Every chart container became a Plotly plot with data and an SVG drawn.
ALL_CHARTS_DRAWN = """
Array.from(document.querySelectorAll('.chart')).map(el => ({
    id: el.id,
    traces: (el._fullData || []).length,
    svgs: el.querySelectorAll('.main-svg').length,
    marks: el.querySelectorAll('.point, .slice, .hm, .scatterlayer .trace, image').length,
}))
"""
# Per chart: texts drawn outside the chart's box, and what Plotly's toolbar lies over.
CHART_LAYOUT = """
(() => {
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1
      && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const within = (a, box) => a.left >= box.left - 1 && a.right <= box.right + 1
      && a.top >= box.top - 1 && a.bottom <= box.bottom + 1;
  const shown = r => r.width > 0 && r.height > 0;
  return Array.from(document.querySelectorAll('.chart')).map(el => {
    const box = el.getBoundingClientRect();
    const texts = Array.from(el.querySelectorAll('.main-svg text'))
      .filter(t => t.textContent.trim() && shown(t.getBoundingClientRect()));
    const marks = [el.closest('.card').querySelector('h2'), ...texts,
      ...el.querySelectorAll('.point path, .slice path, .hm image, .colorbar rect')];
    const toolbar = Array.from(el.querySelectorAll('.modebar-group'))
      .map(g => g.getBoundingClientRect()).filter(shown);
    return {
      id: el.id,
      toolbar: toolbar.length,
      clipped: texts.filter(t => !within(t.getBoundingClientRect(), box)).map(t => t.textContent),
      covered: marks.filter(m => toolbar.some(r => overlap(m.getBoundingClientRect(), r)))
        .map(m => m.textContent.trim() || m.getAttribute('class') || m.tagName),
    };
  });
})()
"""
# The centre x of every bar of a chart, left to right.
BAR_CENTRES = """
Array.from(document.querySelectorAll('#{id} .point path'))
  .map(p => { const r = p.getBoundingClientRect(); return r.left + r.width / 2; })
  .sort((a, b) => a - b)
"""
# The scroll box of the table under a heading: its sizes, and its cells cut short.
TABLE_BOX = """
(() => {
  const card = Array.from(document.querySelectorAll('section.card'))
    .find(s => s.querySelector('h2').innerText.startsWith('{title}'));
  const box = card.querySelector('.scroll');
  const cut = Array.from(box.querySelectorAll('td'))
    .filter(td => td.scrollWidth > td.clientWidth + 1).map(td => td.innerText);
  return {rows: box.querySelectorAll('tbody tr').length, cut,
          scrollHeight: box.scrollHeight, clientHeight: box.clientHeight,
          scrollWidth: box.scrollWidth, clientWidth: box.clientWidth};
})()
"""


@pytest.fixture(scope="module")
def lively_duckdb(sample_duckdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared exports, a branch that stopped a day early and a rejected file."""
    folder = tmp_path_factory.mktemp("lively")
    path = copy_warehouse(sample_duckdb, folder / "warehouse.duckdb")
    landing = folder / "landing"
    landing.mkdir()
    (landing / "whitby_17-12-2024_09-00-00.csv").write_text(WHITBY)
    (landing / "mystery_export.csv").write_text(MYSTERY)
    settings = Settings(
        landing=landing, warehouse=str(path), quarantine=folder / "q", pii_key=PII_KEY
    )
    report = run(settings)
    assert (report.totals()["files_loaded"], report.totals()["files_rejected"]) == (1, 1)
    return path


@pytest.mark.browser
def test_charts_render_offline_in_headless_chromium(tmp_path: Path, lively_duckdb: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-system-deps.sh (as root)")
    with dashboard(str(lively_duckdb), tmp_path / "serve") as app, Chromium() as browser:
        for name, path in PAGES.items():
            browser.events.clear()
            browser.open(app.base + path, ready=DRAWN)
            browser.pump(0.3)  # late console messages, if any
            charts = browser.evaluate(ALL_CHARTS_DRAWN)
            assert len(charts) >= 2, name
            for chart in charts:
                assert chart["traces"] >= 1, chart
                assert chart["svgs"] >= 1, chart
                assert chart["marks"] >= 1, chart
            assert browser.evaluate("document.querySelectorAll('.main-svg').length") >= len(charts)
            assert browser.problems() == [], name
            fetched = browser.requested()
            assert any("/static/plotly-" in url for url in fetched)
            assert [u for u in fetched if not u.startswith((app.base, "data:"))] == []
            nothing_covered_or_clipped(browser.evaluate(CHART_LAYOUT))
            if name == "sales":
                assert browser.evaluate("document.querySelector('.kpi .value').innerText") == (
                    "£63,760.90"
                )
                days_stand_at_their_dates(browser)
            if name == "operations":
                tables_show_everything(browser)
            shot = browser.screenshot(tmp_path / f"{name}.png")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.stat().st_size > 50_000


@pytest.mark.browser
def test_every_page_fits_a_phone_without_scrolling_sideways(
    tmp_path: Path, lively_duckdb: Path
) -> None:
    """At a phone's 390 px (device emulation: ``--window-size`` stops near 500 px) the page
    is no wider than the screen: cards and charts stack; only a table may scroll inside
    its own card."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-system-deps.sh (as root)")
    wider = """[...document.querySelectorAll('body *')]
      .filter(e => !e.closest('.scroll, table'))
      .filter(e => e.getBoundingClientRect().right > 391)
      .map(e => e.tagName + '.' + e.className)"""
    with (
        dashboard(str(lively_duckdb), tmp_path / "serve") as app,
        Chromium(390, 844, mobile=True) as browser,
    ):
        for name, path in PAGES.items():
            browser.open(app.base + path, ready=DRAWN)
            # A page wider than the screen makes the phone zoom out to fit it (innerWidth too).
            width = browser.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width == [390, 390], (name, width, browser.evaluate(wider)[:5])
            browser.screenshot(tmp_path / f"{name}-phone.png")


def nothing_covered_or_clipped(charts: list[dict[str, Any]]) -> None:
    """Plotly's toolbar lies over no title, bar, slice or label; no label is cut off."""
    assert any(chart["toolbar"] for chart in charts)  # headless: it always shows
    for chart in charts:
        assert chart["covered"] == [], chart
        assert chart["clipped"] == [], chart


def days_stand_at_their_dates(browser: Chromium) -> None:
    """Days a year and more apart are far apart; neighbouring days are neighbours."""
    # Trading days: 25 Aug 2021, 9 May and 8 Aug 2023, 17 and 18 Dec 2024.
    centres = browser.evaluate(BAR_CENTRES.replace("{id}", "revenue-by-day"))
    assert len(centres) == 5
    gaps = [b - a for a, b in itertools.pairwise(centres)]
    assert gaps[3] * 100 < gaps[2]  # a day vs 497 days
    assert gaps[1] < gaps[2] < gaps[0]  # 91 < 497 < 622 days


def tables_show_everything(browser: Chromium) -> None:
    """Every branch's freshness without an inner scroll; rejection advice wrapped in full."""
    fresh = browser.evaluate(TABLE_BOX.replace("{title}", "Freshness"))
    assert fresh["rows"] == 31
    assert fresh["scrollHeight"] <= fresh["clientHeight"] + 1, fresh
    rejected = browser.evaluate(TABLE_BOX.replace("{title}", "Rejected files"))
    assert rejected["rows"] == 1
    assert rejected["scrollWidth"] <= rejected["clientWidth"] + 1, rejected
    assert rejected["cut"] == [], rejected
