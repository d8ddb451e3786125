"""Plotly figure specs built from the dashboard's answers: frames in, plain dicts out.

A :class:`Chart` is what ``Plotly.newPlot`` takes (``data`` traces and a
``layout``), written as plain JSON-ready dicts rather than through
``plotly.graph_objects``: the browser draws it with the Plotly.js that ships in
the ``plotly`` package, and the server does not pay for figure validation on
every request. Money is exact everywhere else; here it becomes float, because
a chart is a picture of the numbers the tables print exactly.

    >>> chart = payment_chart(payments(view.methods))  # doctest: +SKIP
    >>> chart.data[0]["type"]  # doctest: +SKIP
    'pie'
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from brewline.vocabulary import FileState, RunState, item_label

__all__ = [
    "WEEKDAYS",
    "Chart",
    "branch_chart",
    "charts_json",
    "customer_chart",
    "daily_chart",
    "files_chart",
    "heatmap_chart",
    "monthly_chart",
    "payment_chart",
    "rejects_chart",
    "runs_chart",
    "sellers_chart",
    "totesys_month_chart",
    "totesys_units_chart",
]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ROAST = "#6f4e37"
"""The dashboard's main colour (coffee); the others are for second series and states."""
_CREAM, _FOAM, _MINT, _BERRY, _SLATE = "#c8a27a", "#e9dccb", "#3f8f6b", "#b23a48", "#5b6770"
_STATE_COLOURS: dict[str, str] = {
    FileState.LOADED: _MINT,
    FileState.SKIPPED: _SLATE,
    FileState.REPLACED: _CREAM,
    FileState.REJECTED: _BERRY,
    RunState.SUCCEEDED: _MINT,
    RunState.COMPLETED_WITH_REJECTS: _CREAM,
    RunState.FAILED: _BERRY,
    RunState.RUNNING: _SLATE,
    RunState.INTERRUPTED: _CREAM,
    RunState.ABANDONED: _BERRY,
}
"""Bar colours of files by ledger state and of runs by status; any other: slate."""
MODEBAR_BAND = 34
"""Pixels kept free above every plot for Plotly's toolbar, so it never covers a bar or label.

(Plotly shows the toolbar only on hover where the pointer can hover, and always on
touch screens; either way it sits in this band.)"""
_NARROW_LEFT = {"l": 10, "r": 16, "t": MODEBAR_BAND, "b": 44}
"""Margins of horizontal bar charts: their category labels make their own room."""
_BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 16, "t": MODEBAR_BAND, "b": 44},
    "height": 300,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    "colorway": [ROAST, _CREAM, _MINT, _BERRY, _SLATE],
    "showlegend": False,
}
MAX_BRANCH_BARS = 25
"""Branches drawn in the revenue-by-branch chart; the table lists them all."""
_DAY_MS = 86_400_000
"""A day in milliseconds: the unit of bar widths on a Plotly date axis."""
_BAR = 0.8
"""A bar's share of its day or month; the rest is the gap to its neighbour."""
_SOLD = "£%{y:,.2f} from %{customdata:,} sales<extra></extra>"


@dataclass(frozen=True)
class Chart:
    """One figure: an HTML ``id``, a title for its card, Plotly traces and layout."""

    id: str
    title: str
    data: list[dict[str, Any]]
    layout: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def spec(self) -> dict[str, Any]:
        return {"id": self.id, "data": self.data, "layout": {**_BASE_LAYOUT, **self.layout}}


def charts_json(charts: list[Chart]) -> str:
    """The specs as JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps([c.spec() for c in charts], default=_plain, separators=(",", ":"))
    # "</script>" or "<!--" in a branch name must not end the script element.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} in a chart")


def _floats(series: pl.Series) -> list[float]:
    return [float(v) for v in series.to_list()]


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "automargin": True, "gridcolor": "#eee5da", **extra}


_MONEY_AXIS = {"tickprefix": "£", "separatethousands": True}


# -- sales ------------------------------------------------------------------------------


def daily_chart(days: pl.DataFrame) -> Chart:
    """Revenue per trading day: a bar at each day on a date axis.

    A real time axis, so a year without sales shows as a year of empty axis, not as
    neighbouring bars. Bars are a day wide (outlined, so a day stays visible on a
    multi-year axis); ticks fall on whole days when the range is short.
    """
    dates = days["date"].to_list()
    trace = {
        "type": "bar",
        "x": dates,
        "y": _floats(days["revenue"]),
        "width": _BAR * _DAY_MS,
        "customdata": days["sales"].to_list(),
        "hovertemplate": "%{x|%a %d %b %Y}<br>" + _SOLD,
        "marker": {"color": ROAST, "line": {"color": ROAST, "width": 2}},
    }
    span = (dates[-1] - dates[0]).days if dates else 0
    ticks = {"dtick": _DAY_MS, "tickformat": "%a %d %b"} if span <= 14 else {}
    shown = {"range": _padded(dates[0], dates[-1], 1)} if dates else {}
    xaxis = _axis("", type="date", **shown, **ticks)
    layout = {"xaxis": xaxis, "yaxis": _axis("Revenue", **_MONEY_AXIS)}
    return Chart("revenue-by-day", "Revenue by day", [trace], layout)


def monthly_chart(months: pl.DataFrame) -> Chart:
    """Revenue per calendar month: a bar across each month on a date axis."""
    starts = months["month"].to_list()
    trace = {
        "type": "bar",
        "x": starts,
        "xperiod": "M1",
        "xperiodalignment": "middle",
        "width": [_BAR * (_month_end(m) - m).days * _DAY_MS for m in starts],
        "y": _floats(months["revenue"]),
        "customdata": months["sales"].to_list(),
        "hovertemplate": "%{x|%b %Y}<br>" + _SOLD,
        "marker": {"color": _CREAM},
    }
    span = _month_index(starts[-1]) - _month_index(starts[0]) if starts else 0
    every, label = (1, "%b %Y") if span < 12 else (3, "%b %Y") if span < 36 else (12, "%Y")
    shown = {"range": _padded(starts[0], _month_end(starts[-1]), 10)} if starts else {}
    xaxis = _axis(
        "", type="date", dtick=f"M{every}", tickformat=label, ticklabelmode="period", **shown
    )
    layout = {"xaxis": xaxis, "yaxis": _axis("Revenue", **_MONEY_AXIS)}
    return Chart("revenue-by-month", "Revenue by month", [trace], layout)


def _padded(first: dt.date, last: dt.date, least: int) -> list[str]:
    """An x range a little wider than ``first`` to ``last`` (at least ``least`` days each
    side), so no bar stands on the plot's edge and a lone bar keeps its tick label."""
    pad = dt.timedelta(days=max(least, (last - first).days // 40))
    return [(first - pad).isoformat(), (last + pad).isoformat()]


def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month


def _month_end(first: dt.date) -> dt.date:
    """The first day of the month after the one that starts on ``first``."""
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


def branch_chart(branches: pl.DataFrame) -> Chart:
    """The top branches by revenue as horizontal bars, best at the top."""
    top = branches.head(MAX_BRANCH_BARS).reverse()
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": top["branch"].to_list(),
        "x": _floats(top["revenue"]),
        "customdata": top["sales"].to_list(),
        "hovertemplate": "%{y}<br>£%{x:,.2f} from %{customdata:,} sales<extra></extra>",
        "marker": {"color": ROAST},
    }
    layout = {
        "height": max(220, 22 * top.height + 70),
        "margin": _NARROW_LEFT,
        "xaxis": _axis("Revenue", **_MONEY_AXIS),
        "yaxis": _axis("", type="category"),
    }
    title = "Revenue by branch"
    note = f"Top {MAX_BRANCH_BARS} of {branches.height}" if branches.height > top.height else ""
    return Chart("revenue-by-branch", title, [trace], layout, note)


def heatmap_chart(heat: pl.DataFrame) -> Chart:
    """Sales by hour of day (branch local time) and weekday: when the tills are busy."""
    hours = list(range(int(heat["hour"].min()), int(heat["hour"].max()) + 1))  # type: ignore[arg-type]
    cells = {
        (w, h): (s, r) for w, h, s, r in heat.select("weekday", "hour", "sales", "revenue").rows()
    }
    z = [[cells.get((w, h), (0, 0))[0] for h in hours] for w in range(1, 8)]
    revenue = [[float(cells.get((w, h), (0, 0))[1]) for h in hours] for w in range(1, 8)]
    trace = {
        "type": "heatmap",
        "x": [f"{h:02d}:00" for h in hours],
        "y": list(WEEKDAYS),
        "z": z,
        "customdata": revenue,
        "colorscale": [[0, "#fbf7f2"], [0.5, _CREAM], [1, ROAST]],
        "hovertemplate": "%{y} %{x}<br>%{z:,} sales, £%{customdata:,.2f}<extra></extra>",
        "xgap": 2,
        "ygap": 2,
        "colorbar": {"title": {"text": "Sales"}, "thickness": 12},
    }
    layout = {
        "xaxis": _axis("Hour (branch local time)", type="category"),
        "yaxis": _axis("", autorange="reversed", type="category"),
    }
    return Chart("hour-weekday", "Sales by hour and weekday", [trace], layout)


def _donut(chart_id: str, title: str, labels: list[str], values: list[int]) -> Chart:
    """A donut with a legend; slices label themselves with their share, inside.

    Inside labels shrink to fit their slice instead of spilling past the card; a slice
    of nothing gets no label (the legend still names it).
    """
    trace = {
        "type": "pie",
        "hole": 0.55,
        "labels": labels,
        "values": values,
        "sort": False,
        "marker": {"colors": [ROAST, _CREAM, _MINT, _SLATE]},
        "textposition": "inside",
        "texttemplate": ["%{percent}" if v else "" for v in values],
        "insidetextorientation": "horizontal",
        "hovertemplate": "%{label}: %{value:,} sales (%{percent})<extra></extra>",
    }
    layout = {
        "margin": {"l": 10, "r": 10, "t": MODEBAR_BAND, "b": 10},
        "showlegend": True,
        "legend": {"x": 1, "xanchor": "right", "y": 0.5, "yanchor": "middle"},
    }
    return Chart(chart_id, title, [trace], layout)


def payment_chart(mix: pl.DataFrame) -> Chart:
    """Cash vs card, as shares of sales."""
    labels = [str(m).title() for m in mix["method"].to_list()]
    return _donut("payment-mix", "Cash vs card", labels, mix["sales"].to_list())


def customer_chart(mix: pl.DataFrame) -> Chart:
    """New vs returning customers, as shares of sales with a customer token."""
    labels = [str(c).title() for c in mix["customer"].to_list()]
    return _donut("customer-mix", "New vs returning customers", labels, mix["sales"].to_list())


def sellers_chart(chart_id: str, title: str, table: pl.DataFrame, by: str) -> Chart:
    """Horizontal bars of menu items by ``units`` or ``revenue``, first row at the top."""
    rows = table.reverse()
    labels = [item_label(p, s, v) for p, s, v in rows.select("product", "size", "variant").rows()]
    money = by == "revenue"
    value = "£%{x:,.2f}" if money else "%{x:,} sold"
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": labels,
        "x": _floats(rows[by]) if money else rows[by].to_list(),
        "hovertemplate": f"%{{y}}<br>{value}<extra></extra>",
        "marker": {"color": ROAST if money else _CREAM},
    }
    layout = {
        "height": max(220, 24 * rows.height + 70),
        "margin": _NARROW_LEFT,
        "xaxis": _axis("Revenue" if money else "Units sold", **(_MONEY_AXIS if money else {})),
        "yaxis": _axis("", type="category"),
    }
    return Chart(chart_id, title, [trace], layout)


# -- operations ---------------------------------------------------------------------------


def runs_chart(runs: pl.DataFrame) -> Chart:
    """Duration of the recent runs, oldest on the left, coloured by status."""
    rows = runs.sort("started_at")
    statuses = rows["status"].to_list()
    trace = {
        "type": "bar",
        "x": [t.strftime("%d %b %H:%M:%S") for t in rows["started_at"].to_list()],
        "y": [s or 0.0 for s in rows["seconds"].to_list()],
        "text": statuses,
        "marker": {"color": [_STATE_COLOURS.get(s, _SLATE) for s in statuses]},
        "hovertemplate": "%{x} UTC<br>%{text}: %{y:.2f} s<extra></extra>",
    }
    layout = {
        "xaxis": _axis("Run started (UTC)", type="category"),
        "yaxis": _axis("Seconds", rangemode="tozero"),
    }
    return Chart("run-durations", "Run durations", [trace], layout)


def files_chart(files: pl.DataFrame) -> Chart:
    """File versions per ledger state."""
    states = files["state"].to_list()
    trace = {
        "type": "bar",
        "x": states,
        "y": files["files"].to_list(),
        "marker": {"color": [_STATE_COLOURS.get(s, _SLATE) for s in states]},
        "hovertemplate": "%{x}: %{y:,} files<extra></extra>",
    }
    layout = {"xaxis": _axis("", type="category"), "yaxis": _axis("Files", rangemode="tozero")}
    return Chart("files-by-state", "Files by state", [trace], layout)


def rejects_chart(rejects: pl.DataFrame) -> Chart:
    """Rejected rows per reason (row-level and whole-file), largest at the top."""
    rows = rejects.reverse()
    labels = [f"{reason} ({level})" for level, reason in rows.select("level", "reason").rows()]
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": labels,
        "x": rows["rows_rejected"].to_list(),
        "marker": {"color": _BERRY},
        "hovertemplate": "%{y}<br>%{x:,} rows<extra></extra>",
    }
    layout = {
        "height": max(200, 26 * rows.height + 70),
        "margin": _NARROW_LEFT,
        "xaxis": _axis("Rows rejected", rangemode="tozero"),
        "yaxis": _axis("", type="category"),
    }
    return Chart("rejects-by-reason", "Rejected rows by reason", [trace], layout)


# -- totesys ------------------------------------------------------------------------------

_CURRENCY_COLOURS = (ROAST, _MINT, _CREAM, _SLATE, _BERRY)
"""A colour per currency, in the order the currencies are listed (GBP, USD, EUR, ...)."""
_LEGEND_TOP = {
    "orientation": "h",
    "traceorder": "normal",
    "x": 0,
    "xanchor": "left",
    "y": 1.0,
    "yanchor": "bottom",
}


def _currencies(frame: pl.DataFrame) -> list[str]:
    return sorted({str(c) for c in frame["currency"].to_list()})


def totesys_month_chart(months: pl.DataFrame) -> Chart:
    """Revenue per month of order, a bar series per currency (never added together).

    ``months``: ``month`` (first day), ``currency``, ``orders``, ``revenue``. Each
    series is in its own currency; the axis says so and every hover names it.
    """
    traces = []
    for i, code in enumerate(_currencies(months)):
        rows = months.filter(pl.col("currency") == code).sort("month")
        traces.append(
            {
                "type": "bar",
                "name": code,
                "x": rows["month"].to_list(),
                "xperiod": "M1",
                "xperiodalignment": "middle",
                "y": _floats(rows["revenue"]),
                "customdata": rows["orders"].to_list(),
                "hovertemplate": f"%{{x|%b %Y}}<br>{code} %{{y:,.2f}} from %{{customdata:,}} "
                "orders<extra></extra>",
                "marker": {"color": _CURRENCY_COLOURS[i % len(_CURRENCY_COLOURS)]},
            }
        )
    starts = months["month"].to_list()
    span = _month_index(max(starts)) - _month_index(min(starts)) if starts else 0
    every = 1 if span < 12 else 3 if span < 36 else 12
    shown = {"range": _padded(min(starts), _month_end(max(starts)), 10)} if starts else {}
    xaxis = _axis(
        "", type="date", dtick=f"M{every}", tickformat="%b %Y", ticklabelmode="period", **shown
    )
    layout = {
        "barmode": "group",
        "bargap": 0.25,
        "showlegend": True,
        "legend": _LEGEND_TOP,
        "margin": {"l": 60, "r": 16, "t": MODEBAR_BAND + 26, "b": 44},
        "height": 340,
        "xaxis": xaxis,
        "yaxis": _axis("Revenue (in each currency)", separatethousands=True),
    }
    return Chart("totesys-revenue-by-month", "Revenue by month and currency", traces, layout)


def totesys_units_chart(chart_id: str, title: str, frame: pl.DataFrame, label: str) -> Chart:
    """Units sold per ``label`` as horizontal bars, stacked by currency, first row at the top.

    ``frame``: ``label``, ``currency``, ``units``, ``revenue``, in ranked order (its
    first label is drawn at the top). Units add up across currencies, so the stack's
    length ranks the rows; the hover gives each currency's revenue in that currency.
    """
    order = list(dict.fromkeys(frame[label].to_list()))
    traces = []
    for i, code in enumerate(_currencies(frame)):
        rows = frame.filter(pl.col("currency") == code)
        units = dict(zip(rows[label].to_list(), rows["units"].to_list(), strict=True))
        revenue = dict(zip(rows[label].to_list(), _floats(rows["revenue"]), strict=True))
        shown = [name for name in reversed(order) if name in units]
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": code,
                "y": shown,
                "x": [units[name] for name in shown],
                "customdata": [revenue[name] for name in shown],
                "hovertemplate": f"%{{y}}<br>{code}: %{{x:,}} units, {code} "
                "%{customdata:,.2f}<extra></extra>",
                "marker": {"color": _CURRENCY_COLOURS[i % len(_CURRENCY_COLOURS)]},
            }
        )
    layout = {
        "barmode": "stack",
        "height": max(220, 24 * len(order) + 96),
        "margin": {**_NARROW_LEFT, "t": MODEBAR_BAND + 26},
        "showlegend": True,
        "legend": _LEGEND_TOP,
        "xaxis": _axis("Units sold", rangemode="tozero", separatethousands=True),
        "yaxis": _axis("", type="category", categoryorder="array", categoryarray=order[::-1]),
    }
    return Chart(chart_id, title, traces, layout)
