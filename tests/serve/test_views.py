"""brewline.serve.views on synthetic sales with returning customers, on DuckDB and PostgreSQL.

New vs returning is the subtle one: a sale is new when it is the customer's first
anywhere (earliest ``sold_at``, ties broken by ``sale_key``), whatever the slice.
The expected answer is worked out in Python from the raw tokenised sales.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brewline import queries
from brewline.config import Settings
from brewline.load import Warehouse, open_warehouse
from brewline.pipeline import run
from brewline.serve import views
from brewline.synth import SynthSpec, generate_landing
from brewline.vocabulary import date_key, local_now

KEY = "views-test-key-0123456789abcdef"
START = dt.date(2024, 11, 1)


@pytest.fixture
def synthetic(warehouse_url: str, tmp_path: Path) -> str:
    landing = tmp_path / "landing"
    generate_landing(landing, SynthSpec(branches=3, days=4, sales_per_branch_day=400, seed=11))
    settings = Settings(
        landing=landing, warehouse=warehouse_url, quarantine=tmp_path / "q", pii_key=KEY
    )
    assert run(settings).rows_loaded == 3 * 4 * 400
    return warehouse_url


def _expected_mix(wh: Warehouse, filters: views.Filters) -> dict[str, tuple[int, Decimal]]:
    """Independently: sort every tokenised sale, mark each customer's first, count the slice."""
    rows = wh.query(
        "SELECT s.customer_key, s.sold_at, s.sale_key, b.branch_name AS branch, s.date_key, "
        "s.total FROM fact_sale s JOIN dim_branch b ON b.branch_key = s.branch_key "
        "WHERE s.customer_key IS NOT NULL"
    ).rows()
    seen: set[int] = set()
    mix: dict[str, tuple[int, Decimal]] = {"new": (0, Decimal(0)), "returning": (0, Decimal(0))}
    for customer, _, _, branch, key, total in sorted(rows, key=lambda r: (r[1], r[2])):
        kind = "returning" if customer in seen else "new"
        seen.add(customer)
        day = dt.date(key // 10000, key // 100 % 100, key % 100)
        inside = (filters.start is None or day >= filters.start) and (
            filters.end is None or day <= filters.end
        )
        if inside and (filters.branch is None or branch == filters.branch):
            count, amount = mix[kind]
            mix[kind] = (count + 1, amount + total)
    return mix


@pytest.mark.parametrize(
    "filters",
    [
        views.Filters(),
        views.Filters(start=START + dt.timedelta(days=2)),
        views.Filters(end=START),
        views.Filters(start=START + dt.timedelta(days=1), end=START + dt.timedelta(days=2)),
    ],
)
def test_new_vs_returning_counts_each_customers_first_sale_anywhere(
    synthetic: str, filters: views.Filters
) -> None:
    with open_warehouse(synthetic, read_only=True) as wh:
        branch = sorted(views.filter_options(wh).branches)[1]
        for chosen in (filters, views.Filters(filters.start, filters.end, branch)):
            mix = views.sales_view(wh, chosen).customers
            got = {c: (s, r) for c, s, r in mix.select("customer", "sales", "revenue").rows()}
            expected = _expected_mix(wh, chosen)
            assert got == expected
            assert expected["returning"][0] > 0  # the data does have regulars
        if filters == views.Filters():
            # The same answer as `brewline report`'s window-function query.
            report = queries.customer_mix(wh).select("customer", "sales", "revenue").rows()
            whole = _expected_mix(wh, filters).items()
            assert sorted(report) == sorted((c, s, r) for c, (s, r) in whole)


def test_sales_views_agree_with_each_other_under_a_filter(synthetic: str) -> None:
    day = START + dt.timedelta(days=1)
    with open_warehouse(synthetic, read_only=True) as wh:
        options = views.filter_options(wh)
        assert (options.first, options.last) == (START, START + dt.timedelta(days=3))
        view = views.sales_view(wh, views.Filters(day, day, options.branches[0]))
        facts = wh.query(
            "SELECT COUNT(*) AS n, SUM(s.total) AS revenue FROM fact_sale s "
            "JOIN dim_branch b ON b.branch_key = s.branch_key "
            "WHERE s.date_key = ? AND b.branch_name = ?",
            (date_key(day), options.branches[0]),
        ).row(0)
    head = views.totals(view.methods)
    assert head["sales"] == facts[0] == 400
    assert head["revenue"] == facts[1]
    assert int(view.heat["sales"].sum()) == 400
    assert views.by_day(view.days)["date"].to_list() == [day]
    assert views.by_branch(view.branches)["branch"].to_list() == [options.branches[0]]
    items = views.sellers(view.items)
    assert int(items["units"].sum()) == head["units"]
    assert items["revenue"].sum() == head["revenue"]
    best = views.ranked_sellers(items, "units", limit=3)
    worst = views.ranked_sellers(items, "units", worst=True, limit=3)
    assert best["units"].to_list() == sorted(items["units"].to_list(), reverse=True)[:3]
    assert worst["units"].to_list() == sorted(items["units"].to_list())[:3]
    assert sum(Counter(view.customers["customer"].to_list()).values()) == 2


def test_freshness_counts_days_behind_the_due_day_as_of_a_day(synthetic: str) -> None:
    last = START + dt.timedelta(days=3)
    with open_warehouse(synthetic, read_only=True) as wh:
        branches = views.filter_options(wh).branches

        def seen(late_after: int, as_of: dt.date | None) -> list[tuple[object, ...]]:
            fresh = views.freshness(wh, late_after, as_of=as_of)
            return fresh.select("branch", "last_day", "days_behind", "late").rows()

        # The day after the last trading day: that day is due and loaded.
        assert seen(0, last + dt.timedelta(days=1)) == [(b, last, 0, False) for b in branches]
        # Three days on, two days are missing: late unless two days of lag are allowed.
        later = last + dt.timedelta(days=3)
        assert seen(1, later) == [(b, last, 2, True) for b in branches]
        assert seen(2, later) == [(b, last, 2, False) for b in branches]
        # A past day sees only what was traded by then; ahead of the due day is not behind.
        assert seen(0, START + dt.timedelta(days=1)) == [
            (b, START + dt.timedelta(days=1), 0, False) for b in branches
        ]
        # By default, today: these 2024 sales are long overdue.
        overdue = (local_now().date() - dt.timedelta(days=1) - last).days
        assert seen(0, None) == [(b, last, overdue, True) for b in branches]


_DAYS = st.dates(dt.date(2022, 1, 1), dt.date(2025, 12, 31))


@given(start=st.none() | _DAYS, end=st.none() | _DAYS)
def test_a_slice_reads_every_day_of_its_range_once_from_months_and_edge_days(
    start: dt.date | None, end: dt.date | None
) -> None:
    spans = views.Filters(start, end).spans()
    day = dt.date(2021, 12, 1)
    while day <= dt.date(2026, 1, 31):
        key = day.year * 10000 + day.month * 100 + day.day
        period = {"day": key, "month": key // 100, "year": key // 10000}
        covered = sum(low <= period[grain] <= high for grain, low, high in spans)
        inside = (start is None or day >= start) and (end is None or day <= end)
        assert covered == (1 if inside else 0), (day, spans)
        day += dt.timedelta(days=1)


@pytest.fixture
def three_months(warehouse_url: str, tmp_path: Path) -> str:
    landing = tmp_path / "landing"
    spec = SynthSpec(branches=2, start=dt.date(2024, 10, 20), days=75, sales_per_branch_day=15)
    generate_landing(landing, spec)
    settings = Settings(landing=landing, warehouse=warehouse_url, quarantine=tmp_path / "q")
    assert run(settings).exit_code == 0
    return warehouse_url


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2024, 10, 25), dt.date(2024, 12, 20)),  # two edges and a whole month
        (dt.date(2024, 11, 1), dt.date(2024, 12, 31)),  # whole months only
        (None, dt.date(2024, 11, 15)),
        (dt.date(2024, 11, 3), dt.date(2024, 11, 9)),  # inside one month: days only
    ],
)
def test_a_slice_over_months_answers_as_the_facts_do(
    three_months: str, start: dt.date | None, end: dt.date | None
) -> None:
    with open_warehouse(three_months, read_only=True) as wh:
        branch = views.filter_options(wh).branches[0]
        for filters in (views.Filters(start, end), views.Filters(start, end, branch)):
            view = views.sales_view(wh, filters)
            where, params = filters.where("s")
            sales, revenue, units = wh.query(
                "SELECT COUNT(*) AS n, SUM(total) AS revenue, SUM(items) AS units "
                f"FROM fact_sale s WHERE {where}",
                params,
            ).row(0)
            head = views.totals(view.methods)
            assert (head["sales"], head["revenue"], head["units"]) == (sales, revenue, units)
            assert views.by_branch(view.branches)["sales"].sum() == sales
            assert views.by_day(view.days)["sales"].sum() == sales
            assert view.heat["sales"].sum() == sales
            line_units = wh.query(
                f"SELECT SUM(quantity) AS units FROM fact_sale_line s WHERE {where}", params
            )["units"][0]
            assert view.items["units"].sum() == line_units
