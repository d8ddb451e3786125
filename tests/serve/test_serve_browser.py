"""The dashboard in a real browser: headless Chromium (Debian's) driven over the
DevTools protocol. Checks that every chart is drawn, that nothing is fetched
from anywhere but the dashboard itself (it works offline), that the console
stays clean, and saves screenshots under the test's tmp_path for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.serve.cdp import CHROMIUM, Chromium
from tests.serve.conftest import dashboard

PAGES = {
    "sales": "/",
    "sales-leeds": "/?branch=Leeds&start=2024-12-18&end=2024-12-18",
    "operations": "/operations",
}
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


@pytest.mark.browser
def test_charts_render_offline_in_headless_chromium(tmp_path: Path, sample_duckdb: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-system-deps.sh (as root)")
    with dashboard(str(sample_duckdb), tmp_path / "serve") as app, Chromium() as browser:
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
            if name == "sales":
                assert browser.evaluate("document.querySelector('.kpi .value').innerText") == (
                    "£63,758.75"
                )
            shot = browser.screenshot(tmp_path / f"{name}.png")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert shot.stat().st_size > 50_000
