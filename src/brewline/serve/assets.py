"""The dashboard's own static files (stylesheet, chart bootstrap) and Plotly.js.

Everything the page loads comes from the app itself, so the dashboard works with
no internet; Plotly.js is the copy bundled inside the ``plotly`` package. Each
file is served under a name that changes with its content (a version or a hash),
so browsers may cache it for a year.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache

__all__ = ["Asset", "dashboard_css", "dashboard_js", "plotly_js"]


@dataclass(frozen=True)
class Asset:
    """A static file: URL name, media type, bytes and their gzip form."""

    name: str
    media_type: str
    body: bytes
    gzipped: bytes


def _asset(stem: str, suffix: str, media_type: str, body: bytes, tag: str | None = None) -> Asset:
    tag = tag or hashlib.sha256(body).hexdigest()[:12]
    return Asset(f"{stem}-{tag}.{suffix}", media_type, body, gzip.compress(body, mtime=0))


@cache
def plotly_js() -> Asset:
    """Plotly.js from the installed ``plotly`` package (read and compressed once)."""
    from plotly.offline import get_plotlyjs

    body = get_plotlyjs().encode()
    return _asset("plotly", "min.js", "text/javascript; charset=utf-8", body)


@cache
def dashboard_js() -> Asset:
    return _asset("dashboard", "js", "text/javascript; charset=utf-8", _JS.encode())


@cache
def dashboard_css() -> Asset:
    return _asset("dashboard", "css", "text/css; charset=utf-8", _CSS.encode())


# Draws every chart spec found in <script id="chart-specs" type="application/json">.
# A separate file (not inline) so the Content-Security-Policy can forbid inline scripts.
_JS = """\
(function () {
  "use strict";
  // No modeBarButtonsToRemove: Plotly then shows the mode bar only on hover.
  var config = {displaylogo: false, responsive: true};
  function draw() {
    var node = document.getElementById("chart-specs");
    if (!node) { return; }
    if (typeof Plotly === "undefined") {
      document.body.classList.add("no-charts");
      return;
    }
    JSON.parse(node.textContent).forEach(function (spec) {
      var target = document.getElementById(spec.id);
      if (target) { Plotly.newPlot(target, spec.data, spec.layout, config); }
    });
    document.body.classList.add("charts-drawn");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
"""

_CSS = """\
:root {
  --roast: #6f4e37; --cream: #c8a27a; --foam: #f6efe6; --ink: #2b2118; --muted: #7a6a5c;
  --line: #eadfd2; --berry: #b23a48; --mint: #3f8f6b; --card: #fff;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--ink); background: var(--foam); }
a { color: var(--roast); }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 24px;
             background: var(--roast); color: #fff; flex-wrap: wrap; }
header.top .brand { font-weight: 700; font-size: 18px; letter-spacing: .3px; }
header.top nav a { color: #f3e6d8; text-decoration: none; margin-right: 16px; padding: 4px 0; }
header.top nav a.active { color: #fff; border-bottom: 2px solid var(--cream); }
header.top .where { margin-left: auto; font-size: 12px; color: #e8d8c6; }
main { padding: 18px 24px 8px; max-width: 1500px; margin: 0 auto; }
h1 { font-size: 20px; margin: 4px 0 12px; }
h2 { font-size: 15px; margin: 0 0 8px; }
form.filters { display: flex; gap: 12px; align-items: flex-end; flex-wrap: wrap;
               background: var(--card); padding: 12px 14px; border: 1px solid var(--line);
               border-radius: 8px; margin-bottom: 12px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted);
                     gap: 3px; }
form.filters input, form.filters select { font: inherit; padding: 5px 8px; border-radius: 5px;
                                          border: 1px solid #d8c8b6; background: #fff; }
form.filters button { font: inherit; padding: 6px 16px; border: 0; border-radius: 5px;
                      background: var(--roast); color: #fff; cursor: pointer; }
.slice { color: var(--muted); margin: 0 0 14px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
        margin-bottom: 14px; }
.kpi { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
       padding: 10px 14px; }
.kpi .label { font-size: 12px; color: var(--muted); }
.kpi .value { font-size: 22px; font-weight: 650; }
.kpi .hint { font-size: 11px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 14px;
        margin-bottom: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
        padding: 12px 14px; min-width: 0; }
.card .note { font-size: 12px; color: var(--muted); font-weight: 400; margin-left: 6px; }
.card.wide { grid-column: 1 / -1; }
.chart { width: 100%; min-height: 200px; }
.tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 14px; }
.scroll { max-height: 420px; overflow: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
         white-space: nowrap; }
th { position: sticky; top: 0; background: #fbf7f2; font-weight: 600; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.late td { background: #fbe9ea; }
tr.late td:last-child { color: var(--berry); font-weight: 650; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         background: #eee; }
.badge.late { background: var(--berry); color: #fff; }
.badge.ok { background: var(--mint); color: #fff; }
.empty { background: var(--card); border: 1px dashed #d8c8b6; border-radius: 8px;
         padding: 28px; text-align: center; color: var(--muted); }
.empty strong { color: var(--ink); }
.problem { background: var(--card); border-left: 4px solid var(--berry); border-radius: 6px;
           padding: 16px 20px; max-width: 760px; }
footer { color: var(--muted); font-size: 12px; padding: 8px 24px 24px; max-width: 1500px;
         margin: 0 auto; }
body.no-charts .chart::before { content: "Charts could not load (Plotly.js missing)."; }
"""
