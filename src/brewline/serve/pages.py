"""HTML pages: the dashboard's views turned into Jinja2-rendered HTML (pure functions).

``render_sales``, ``render_operations`` and ``render_problem`` take answers
(:mod:`brewline.serve.views`) and return a complete page, with no server
involved. Templates are package files (``brewline/serve/templates/*.html``);
Jinja2 escapes everything by default (branch names come from till exports).
Figures are formatted here: money as ``£1,234.50`` from exact Decimals, shares
as percentages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import urlencode

import jinja2
import polars as pl

from brewline.serve import charts
from brewline.serve.assets import dashboard_css, dashboard_js, plotly_js
from brewline.serve.views import (
    FilterOptions,
    Filters,
    OperationsView,
    SalesView,
    avg_basket,
    best_per_branch,
    by_branch,
    by_day,
    by_month,
    payments,
    ranked_sellers,
    sellers,
    totals,
)
from brewline.totesys.queries import AGEING_BUCKETS, NO_DATE, TotesysReport, labels
from brewline.vocabulary import item_label

__all__ = [
    "Page",
    "Table",
    "compile_templates",
    "money",
    "render_operations",
    "render_problem",
    "render_sales",
    "render_totesys",
]

TOP = 10
"""Rows in each best/worst sellers table."""
BY = {"units": "by units sold", "revenue": "by revenue"}
"""How a sellers title says what it ranks by (every best/worst title does)."""


def money(value: Decimal | None) -> str:
    """``£1,234.50``; an em dash for no value.

    >>> money(Decimal("1234.5"))
    '£1,234.50'
    """
    return "—" if value is None else f"£{value:,.2f}"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _day(value: dt.date | None) -> str:
    return "—" if value is None else value.strftime("%a %d %b %Y")


def _moment(value: dt.datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells; ``numeric`` columns align right.

    ``links`` maps a row index to an href for its first cell; ``classes`` gives
    CSS classes per row (e.g. ``late``); ``wrap`` columns wrap their text (long
    messages) instead of widening the table. A long table scrolls inside its card,
    unless it is ``whole`` (every row on the page).
    """

    title: str
    columns: Sequence[str]
    rows: list[list[str]]
    numeric: frozenset[int] = frozenset()
    links: dict[int, str] = field(default_factory=dict)
    classes: dict[int, str] = field(default_factory=dict)
    note: str = ""
    empty: str = "Nothing to show."
    wide: bool = False
    wrap: frozenset[int] = frozenset()
    whole: bool = False


@dataclass(frozen=True)
class Page:
    """What every page shows around its content."""

    title: str
    active: str
    warehouse: str
    as_of: str = ""


# -- sales --------------------------------------------------------------------------------


def render_sales(
    page: Page, view: SalesView, options: FilterOptions, filters_text: dict[str, str]
) -> str:
    """The sales page: filters, headline figures, charts and tables (or an empty state)."""
    context: dict[str, Any] = {
        "page": page,
        "options": options,
        "form": filters_text,
        "unknown_branch": view.filters.branch is not None
        and view.filters.branch not in options.branches,
        "slice": _slice_text(view.filters),
        "empty": view.empty,
    }
    if not view.empty:
        context.update(_sales_content(view))
    return _render("sales.html", context)


def _slice_text(filters: Filters) -> str:
    branch = f"branch {filters.branch}" if filters.branch is not None else "all branches"
    if filters.start and filters.end:
        when = (
            f"on {_day(filters.start)}"
            if filters.start == filters.end
            else f"from {_day(filters.start)} to {_day(filters.end)}"
        )
    elif filters.start:
        when = f"from {_day(filters.start)} on"
    elif filters.end:
        when = f"up to {_day(filters.end)}"
    else:
        when = "all trading days"
    return f"{branch}, {when}"


def _sales_content(view: SalesView) -> dict[str, Any]:
    head = totals(view.methods)
    branches = by_branch(view.branches)
    mix = payments(view.methods)
    items = sellers(view.items)
    best_units = ranked_sellers(items, "units", limit=TOP)
    best_revenue = ranked_sellers(items, "revenue", limit=TOP)
    figures = [
        charts.daily_chart(by_day(view.days)),
        charts.monthly_chart(by_month(view.days)),
        charts.branch_chart(branches),
        charts.heatmap_chart(view.heat),
        charts.payment_chart(mix),
        charts.sellers_chart("best-units", f"Best sellers {BY['units']}", best_units, "units"),
        charts.sellers_chart(
            "best-revenue", f"Best sellers {BY['revenue']}", best_revenue, "revenue"
        ),
    ]
    if not view.customers.is_empty():
        figures.insert(5, charts.customer_chart(view.customers))
    return {
        "kpis": _kpis(head, view.customers),
        "charts": figures,
        "charts_json": charts.charts_json(figures),
        "tables": [
            _branch_table(branches, view.filters),
            _best_per_branch_table(best_per_branch(view.items), view.filters),
            _sellers_table("Best", "units", best_units),
            _sellers_table("Worst", "units", ranked_sellers(items, "units", worst=True)),
            _sellers_table("Best", "revenue", best_revenue),
            _sellers_table("Worst", "revenue", ranked_sellers(items, "revenue", worst=True)),
            _mix_table("Cash vs card", "Payment", mix, "method"),
            *_customer_tables(view.customers),
        ],
    }


def _kpis(head: dict[str, Any], customers: pl.DataFrame) -> list[tuple[str, str, str]]:
    returning = customers.filter(pl.col("customer") == "returning")["share"]
    tokens = int(customers["sales"].sum()) if customers.height else 0
    return [
        ("Revenue", money(head["revenue"]), ""),
        ("Sales", _count(head["sales"]), "till transactions"),
        ("Average basket", money(head["avg_basket"]), "revenue per sale"),
        (
            "Items per basket",
            "—" if head["avg_items"] is None else f"{head['avg_items']:.2f}",
            f"{head['units']:,} items sold",
        ),
        ("Paid by card", _share(head["card_share"]), "share of sales"),
        (
            "Returning customers",
            _share(float(returning[0]) if returning.len() else (0.0 if tokens else None)),
            f"of {tokens:,} sales with a customer token" if tokens else "no customer tokens",
        ),
    ]


def _sales_link(filters: Filters, branch: str) -> str:
    query = {"branch": branch}
    if filters.start:
        query["start"] = filters.start.isoformat()
    if filters.end:
        query["end"] = filters.end.isoformat()
    return "/?" + urlencode(query)


def _branch_table(branches: pl.DataFrame, filters: Filters) -> Table:
    rows = [
        [
            branch,
            str(rank),
            _count(sales),
            money(revenue),
            _share(share),
            money(avg_basket(revenue, sales)),
        ]
        for rank, branch, sales, revenue, _, share in branches.rows()
    ]
    return Table(
        "Branches by revenue",
        ["Branch", "Rank", "Sales", "Revenue", "Share", "Avg basket"],
        rows,
        numeric=frozenset({1, 2, 3, 4, 5}),
        links={i: _sales_link(filters, row[0]) for i, row in enumerate(rows)},
        note=f"{branches.height:,} branches, ranked by revenue",
    )


def _item_cells(product: str, size: str | None, variant: str | None) -> list[str]:
    return [product, size or "—", variant or "—"]


def _best_per_branch_table(best: pl.DataFrame, filters: Filters) -> Table:
    rows = [
        [branch, item_label(product, size, variant), _count(units), money(revenue)]
        for branch, product, size, variant, units, revenue in best.rows()
    ]
    return Table(
        f"Best seller per branch, {BY['units']}",
        ["Branch", "Item (size, product, variant)", "Units", "Revenue"],
        rows,
        numeric=frozenset({2, 3}),
        links={i: _sales_link(filters, row[0]) for i, row in enumerate(rows)},
        note="ties broken by revenue",
    )


def _sellers_table(which: str, by: str, table: pl.DataFrame) -> Table:
    rows = [
        [*_item_cells(product, size, variant), _count(units), money(revenue)]
        for product, size, variant, units, revenue in table.rows()
    ]
    return Table(
        f"{which} {TOP} sellers {BY[by]}",
        ["Product", "Size", "Variant", "Units", "Revenue"],
        rows,
        numeric=frozenset({3, 4}),
        note="items sold at least once" if which == "Worst" else "",
    )


def _mix_table(title: str, label: str, mix: pl.DataFrame, column: str) -> Table:
    rows = [
        [str(kind).title(), _count(sales), _share(share), money(revenue)]
        for kind, sales, share, revenue in mix.select(column, "sales", "share", "revenue").rows()
    ]
    return Table(title, [label, "Sales", "Share", "Revenue"], rows, numeric=frozenset({1, 2, 3}))


def _customer_tables(customers: pl.DataFrame) -> list[Table]:
    if customers.is_empty():
        return []
    table = _mix_table("New vs returning customers", "Customer", customers, "customer")
    note = "sales with a customer token; new = the customer's first sale anywhere"
    return [Table(table.title, table.columns, table.rows, table.numeric, note=note)]


# -- operations ---------------------------------------------------------------------------


def render_operations(page: Page, view: OperationsView, today: dt.date | None = None) -> str:
    """The operations page: freshness, recent runs, files by state, rejects.

    ``today`` is the branches' local today: the form leaves ``as_of`` empty on it.
    """
    late = int(view.freshness["late"].sum())
    figures = [charts.runs_chart(view.runs), charts.files_chart(view.files)]
    if not view.rejects.is_empty():
        figures.append(charts.rejects_chart(view.rejects))
    context = {
        "page": page,
        "view": view,
        "late": late,
        "newest": _day(view.newest),
        "as_of": _day(view.as_of),
        "as_of_form": "" if view.as_of == today else view.as_of.isoformat(),
        "due": _day(view.due),
        "branches": view.freshness.height,
        "freshness": _freshness_table(view),
        "charts": figures if view.runs.height else [],
        "charts_json": charts.charts_json(figures if view.runs.height else []),
        "tables": [
            _runs_table(view.runs),
            _frame_table("Files by state", view.files, {"state"}),
            _frame_table("Rejected rows by reason", view.rejects, {"level", "reason"}),
            _rejected_files_table(view.rejected_files),
        ],
    }
    return _render("operations.html", context)


def _freshness_table(view: OperationsView) -> Table:
    rows, classes = [], {}
    for i, (branch, last_day, behind, loaded_at, late) in enumerate(view.freshness.rows()):
        flag = "late" if late else "on time"
        rows.append([branch, _day(last_day), _count(behind), _moment(loaded_at), flag])
        if late:
            classes[i] = "late"
    return Table(
        "Freshness: last trading day loaded per branch",
        ["Branch", "Last trading day", "Days behind", "Last loaded (UTC)", "Status"],
        rows,
        numeric=frozenset({2}),
        links={i: "/?" + urlencode({"branch": row[0]}) for i, row in enumerate(rows)},
        classes=classes,
        note="late branches first",
        empty="No branch has been loaded yet.",
        wide=True,
        whole=True,
    )


def _runs_table(runs: pl.DataFrame) -> Table:
    rows = [
        [
            _moment(r["started_at"]),
            r["status"],
            "—" if r["seconds"] is None else f"{r['seconds']:.2f}",
            *(_count(r[k]) for k in ("files_loaded", "files_skipped", "files_replaced")),
            _count(r["files_rejected"]),
            _count(r["rows_loaded"]),
            _count(r["rows_rejected"]),
            r["error"] or "",
        ]
        for r in runs.iter_rows(named=True)
    ]
    columns = ["Started (UTC)", "Status", "Seconds", "Loaded", "Skipped", "Replaced"]
    columns += ["Rejected", "Rows loaded", "Rows rejected", "Error"]
    return Table(
        "Recent runs",
        columns,
        rows,
        numeric=frozenset(range(2, 9)),
        note="files loaded, skipped, replaced, rejected; rows",
        empty="No run yet.",
        wide=True,
        wrap=frozenset({9}),
    )


def _frame_table(title: str, frame: pl.DataFrame, text: set[str]) -> Table:
    columns = frame.columns
    rows = [
        [str(v) if c in text else _count(v) for c, v in zip(columns, row, strict=True)]
        for row in frame.rows()
    ]
    numeric = frozenset(i for i, c in enumerate(columns) if c not in text)
    headers = [c.replace("_", " ").capitalize() for c in columns]
    return Table(title, headers, rows, numeric=numeric, empty="None.")


def _rejected_files_table(files: pl.DataFrame) -> Table:
    rows = [
        [name, reason or "", message or "", _moment(at)]
        for name, reason, message, at in files.rows()
    ]
    return Table(
        "Rejected files",
        ["File", "Reason", "What to do", "Recorded (UTC)"],
        rows,
        empty="No file rejected.",
        wide=True,
        wrap=frozenset({2}),
    )


# -- totesys ------------------------------------------------------------------------------


def _amount(value: Decimal | None, currency: str) -> str:
    """``GBP 1,234.50``: money of the totesys star always says its currency."""
    return "—" if value is None else f"{currency} {value:,.2f}"


def render_totesys(
    page: Page, report: TotesysReport, sync_command: str, today: dt.date | None = None
) -> str:
    """The totesys page: sales of the current order versions per currency, and ageing.

    ``sync_command`` is what the empty state tells people to run; ``today`` is the
    day the form leaves ``as_of`` empty on.
    """
    context: dict[str, Any] = {
        "page": page,
        "report": report,
        "empty": report.empty,
        "sync_command": sync_command,
        "as_of": _day(report.as_of),
        "as_of_form": "" if report.as_of == today else report.as_of.isoformat(),
        "modelled": _generation_time(report.generation),
        "charts": [],
        "charts_json": "[]",
    }
    if not report.empty:
        context.update(_totesys_content(report))
    return _render("totesys.html", context)


def _generation_time(generation: str | None) -> str:
    """A star generation (``20261129T040101123456``) as ``2026-11-29 04:01:01`` UTC."""
    if generation is None:
        return ""
    try:
        return dt.datetime.strptime(generation, "%Y%m%dT%H%M%S%f").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return generation


def _named(frame: pl.DataFrame, column: str, key: str) -> pl.DataFrame:
    """``column`` unique per ``key`` for charts and tables (two designs may share a name)."""
    return frame.with_columns(pl.Series(column, labels(frame, column, key), dtype=pl.String))


def _totesys_content(report: TotesysReport) -> dict[str, Any]:
    designs = _named(report.by_design, "design", "design_id")
    counterparties = _named(report.by_counterparty, "counterparty", "counterparty_id")
    staff = _named(report.by_staff, "staff", "staff_id")
    locations = _named(report.by_location, "city", "location_id")
    figures = [
        charts.totesys_month_chart(report.by_month),
        charts.totesys_units_chart(
            "totesys-designs",
            "Top designs by units sold",
            designs,
            "design",
        ),
        charts.totesys_units_chart(
            "totesys-counterparties",
            "Top counterparties by units sold",
            counterparties,
            "counterparty",
        ),
        charts.totesys_units_chart(
            "totesys-departments", "Units sold by department", report.by_department, "department"
        ),
        charts.totesys_units_chart(
            "totesys-countries",
            "Units sold by delivery country",
            _by_units(report.by_country, "country"),
            "country",
        ),
    ]
    return {
        "kpis": _totesys_kpis(report.by_currency),
        "charts": figures,
        "charts_json": charts.charts_json(figures),
        "ageing": _ageing_table(report),
        "tables": [
            _sales_table("Top designs by units sold", designs, ["rank", "design"], ranked=True),
            _sales_table(
                "Top counterparties by units sold",
                counterparties,
                ["rank", "counterparty"],
                ranked=True,
            ),
            _sales_table(
                "Sales by member of staff", staff, ["rank", "staff", "department"], ranked=True
            ),
            _sales_table(
                "Sales by department (of the seller)", report.by_department, ["department"]
            ),
            _sales_table(
                "Sales by delivery location", locations, ["rank", "city", "country"], ranked=True
            ),
            _sales_table("Sales by delivery country", report.by_country, ["country"]),
            _sales_table(
                "Sales by month (order created)",
                report.by_month.with_columns(pl.col("month").dt.strftime("%b %Y")),
                ["month"],
            ),
        ],
    }


def _by_units(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """``frame`` with its ``key`` groups ordered by units sold (all currencies), most first."""
    order = frame.group_by(key).agg(pl.col("units").sum().alias("_total"))
    return (
        frame.join(order, on=key)
        .sort(["_total", key, "currency"], descending=[True, False, False])
        .drop("_total")
    )


def _totesys_kpis(by_currency: pl.DataFrame) -> list[tuple[str, str, str]]:
    kpis = [
        (
            f"Revenue in {currency}",
            _amount(revenue, currency),
            f"{orders:,} orders, {units:,} units",
        )
        for currency, orders, units, revenue in by_currency.rows()
    ]
    orders, units = int(by_currency["orders"].sum()), int(by_currency["units"].sum())
    return [
        *kpis,
        ("Sales orders", _count(orders), "current version of each order"),
        ("Units sold", _count(units), "all currencies"),
    ]


_SALES_COLUMNS = {
    "rank": "Rank",
    "currency": "Currency",
    "orders": "Orders",
    "units": "Units",
    "revenue": "Revenue",
}


def _sales_table(
    title: str, frame: pl.DataFrame, keys: list[str], *, ranked: bool = False
) -> Table:
    """Rows per key and currency: ``keys``, currency, orders, units, revenue (in its currency).

    A ranked table leaves out ``orders``, so its names fit beside the figures.
    """
    figures = ["units", "revenue"] if ranked else ["orders", "units", "revenue"]
    columns = [*keys, *([] if "currency" in keys else ["currency"]), *figures]
    rows = [
        [
            _amount(row[c], row["currency"])
            if c == "revenue"
            else _count(row[c])
            if c in ("rank", "orders", "units")
            else str(row[c])
            for c in columns
        ]
        for row in frame.iter_rows(named=True)
    ]
    numeric = frozenset(i for i, c in enumerate(columns) if c in _SALES_COLUMNS and c != "currency")
    headers = [_SALES_COLUMNS.get(c, c.capitalize()) for c in columns]
    note = "a row per currency; ranked by units sold in every currency" if ranked else ""
    return Table(title, headers, rows, numeric=numeric, note=note, empty="No sales.")


def _ageing_table(report: TotesysReport) -> Table:
    """Unpaid payments: a row per payment type and currency, a column per overdue bucket."""
    buckets = [*AGEING_BUCKETS]
    if NO_DATE in report.ageing["bucket"].to_list():
        buckets.append(NO_DATE)
    cells: dict[tuple[str, str], dict[str, tuple[int, Decimal]]] = {}
    for kind, currency, bucket, unpaid, amount in report.ageing.rows():
        cells.setdefault((kind, currency), {})[bucket] = (unpaid, amount)
    rows = []
    for (kind, currency), found in cells.items():
        total = sum((amount for _, amount in found.values()), Decimal("0.00"))
        count = sum(n for n, _ in found.values())
        rows.append(
            [
                kind.replace("_", " ").capitalize(),
                currency,
                *(_amount(found[b][1], currency) if b in found else "—" for b in buckets),
                _amount(total, currency),
                _count(count),
            ]
        )
    headers = ["Payment type", "Currency", *(_bucket_header(b) for b in buckets)]
    return Table(
        f"Unpaid payments by days overdue, as of {_day(report.as_of)}",
        [*headers, "Total", "Payments"],
        rows,
        numeric=frozenset(range(2, len(headers) + 2)),
        note="current version of each payment; days past its payment date",
        empty="No unpaid payment.",
        wide=True,
        whole=True,
    )


def _bucket_header(bucket: str) -> str:
    return f"{bucket} days" if bucket[0] in "0123456789>" else bucket.capitalize()


# -- problems -----------------------------------------------------------------------------


def render_problem(page: Page, heading: str, message: str, hint: str = "") -> str:
    """A page that says what went wrong and what to do (bad input, busy warehouse)."""
    context = {"page": page, "heading": heading, "message": message, "hint": hint}
    return _render("problem.html", context)


# -- templates ----------------------------------------------------------------------------


def compile_templates() -> None:
    """Compile every template now (the app does at start), not on the first request."""
    environment = _environment()
    for name in environment.list_templates():
        environment.get_template(name)


def _render(name: str, context: dict[str, Any]) -> str:
    assets = {"css": dashboard_css().name, "js": dashboard_js().name, "plotly": plotly_js().name}
    return _environment().get_template(name).render(assets=assets, **context)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("brewline.serve", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
