"""The dashboard through real HTTP, on DuckDB and on PostgreSQL (fixture ``sample_dashboard``).

The server is the ``brewline serve`` command in its own process, over a warehouse
loaded from the shared exports. Every expected figure is computed from the raw
CSV files (``sample_sales``), not by asking the warehouse.
"""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.serve.conftest import SHARED_EXPORTS, Dashboard, Response, Sale, dashboard

from brewline.config import Settings
from brewline.load.migrations import SCHEMA_VERSION
from brewline.pipeline import run
from brewline.serve.app import DashboardConfig
from brewline.vocabulary import due_day, local_now

DAY = dt.date(2024, 12, 18)
LEEDS_DAY = "/?branch=Leeds&start=2024-12-18&end=2024-12-18"


def money(value: Decimal) -> str:
    return f"£{value:,.2f}"


def kpi(html: str, label: str) -> str:
    found = re.search(
        rf'<div class="label">{re.escape(label)}</div>\s*<div class="value">([^<]*)</div>', html
    )
    assert found, f"no headline figure {label!r}"
    return found.group(1)


def charts(html: str) -> dict[str, dict[str, Any]]:
    found = re.search(r'<script id="chart-specs" type="application/json">(.*?)</script>', html)
    assert found, "no chart specs on the page"
    return {spec["id"]: spec for spec in json.loads(found.group(1))}


def table_rows(html: str, title: str) -> list[list[str]]:
    """The cells of the table whose heading starts with ``title`` (tags stripped)."""
    sections = [
        html[start : html.index("</section>", start)]
        for start in (m.start() for m in re.finditer(re.escape(f"<h2>{title}"), html))
    ]
    section = next(s for s in sections if "<table>" in s or "<p class" in s)  # not a chart
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", section, flags=re.S)[1:]  # skip the header
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def words(html: str) -> str:
    """``html`` with every run of white space made one space."""
    return " ".join(html.split())


def raw_get(app: Dashboard, path: str, headers: dict[str, str]) -> Response:
    """A GET that sends ``headers`` as they are (Host included) and follows no redirect."""
    connection = http.client.HTTPConnection(app.base.removeprefix("http://"), timeout=30)
    try:
        connection.putrequest("GET", path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return Response(
            answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        )
    finally:
        connection.close()


def revenue(sales: list[Sale]) -> Decimal:
    return sum((s.total for s in sales), Decimal("0"))


# -- sales ------------------------------------------------------------------------------------


def test_sales_page_shows_every_figure_of_the_whole_warehouse(
    sample_dashboard: Dashboard, sample_sales: list[Sale]
) -> None:
    answer = sample_dashboard.get("/")
    html = answer.text
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert kpi(html, "Revenue") == money(revenue(sample_sales)) == "£63,758.75"
    assert kpi(html, "Sales") == "10,163"
    cards = sum(s.card != "" for s in sample_sales)
    assert kpi(html, "Paid by card") == f"{cards / len(sample_sales):.1%}"
    assert kpi(html, "Average basket") == money(
        (revenue(sample_sales) / len(sample_sales)).quantize(Decimal("0.01"))
    )

    per_day: dict[dt.date, Decimal] = defaultdict(Decimal)
    per_branch: dict[str, Decimal] = defaultdict(Decimal)
    for s in sample_sales:
        per_day[s.day] += s.total
        per_branch[s.branch] += s.total
    specs = charts(html)
    assert set(specs) == {
        "revenue-by-day",
        "revenue-by-month",
        "revenue-by-branch",
        "hour-weekday",
        "payment-mix",
        "customer-mix",
        "best-units",
        "best-revenue",
    }
    by_day = specs["revenue-by-day"]["data"][0]
    assert by_day["y"] == [float(per_day[d]) for d in sorted(per_day)]
    # Real date axes: bars stand at their days and months, gaps included.
    assert by_day["x"] == [d.isoformat() for d in sorted(per_day)]
    assert by_day["x"][-1] == "2024-12-18"
    by_month = specs["revenue-by-month"]["data"][0]
    assert by_month["x"] == sorted({d.replace(day=1).isoformat() for d in per_day})
    assert specs["revenue-by-day"]["layout"]["xaxis"]["type"] == "date"
    assert specs["revenue-by-month"]["layout"]["xaxis"]["type"] == "date"
    # Every best or worst sellers title says what it ranks by.
    titles = re.findall(r"<h2>([^<]*)", html)
    assert [t for t in titles if "seller" in t] == [
        "Best sellers by units sold",
        "Best sellers by revenue",
        "Best seller per branch, by units sold",
        "Best 10 sellers by units sold",
        "Worst 10 sellers by units sold",
        "Best 10 sellers by revenue",
        "Worst 10 sellers by revenue",
    ]

    ranking = table_rows(html, "Branches by revenue")
    assert len(ranking) == 30
    top = max(per_branch, key=lambda b: per_branch[b])
    assert ranking[0][:2] == [top, "1"]
    assert ranking[0][3] == money(per_branch[top])
    assert len(table_rows(html, "Best seller per branch")) == 30
    # Every branch is offered in the filter.
    assert all(f'<option value="{b}">' in html for b in per_branch)


def test_filters_by_branch_and_day_give_that_slice_exactly(
    sample_dashboard: Dashboard, sample_sales: list[Sale]
) -> None:
    leeds = [s for s in sample_sales if s.branch == "Leeds" and s.day == DAY]
    html = sample_dashboard.get(LEEDS_DAY).text
    assert kpi(html, "Revenue") == money(revenue(leeds))
    assert kpi(html, "Sales") == f"{len(leeds):,}"
    assert "Showing branch Leeds, on Wed 18 Dec 2024." in html
    assert '<option value="Leeds" selected>' in html
    assert 'value="2024-12-18"' in html
    specs = charts(html)
    assert specs["revenue-by-day"]["data"][0]["y"] == [float(revenue(leeds))]
    assert [row[0] for row in table_rows(html, "Branches by revenue")] == ["Leeds"]
    assert [row[0] for row in table_rows(html, "Best seller per branch")] == ["Leeds"]
    cards = sum(s.card != "" for s in leeds)
    assert kpi(html, "Paid by card") == f"{cards / len(leeds):.1%}"


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ("/?start=2024-12-18&end=2024-12-18", lambda s: s.day == DAY),
        ("/?end=2023-12-31", lambda s: s.day <= dt.date(2023, 12, 31)),
        ("/?start=2023-05-09", lambda s: s.day >= dt.date(2023, 5, 9)),
        ("/?branch=Leeds", lambda s: s.branch == "Leeds"),
    ],
)
def test_every_filter_changes_the_figures(
    sample_dashboard: Dashboard, sample_sales: list[Sale], query: str, keep: Any
) -> None:
    chosen = [s for s in sample_sales if keep(s)]
    assert 0 < len(chosen) < len(sample_sales)
    html = sample_dashboard.get(query).text
    assert kpi(html, "Revenue") == money(revenue(chosen))
    assert kpi(html, "Sales") == f"{len(chosen):,}"
    # Every sales view answers for the same slice.
    specs = charts(html)
    assert sum(specs["revenue-by-day"]["data"][0]["y"]) == pytest.approx(float(revenue(chosen)))
    assert sum(specs["revenue-by-month"]["data"][0]["y"]) == pytest.approx(float(revenue(chosen)))
    assert sum(map(sum, specs["hour-weekday"]["data"][0]["z"])) == len(chosen)
    assert sum(specs["payment-mix"]["data"][0]["values"]) == len(chosen)
    branches = {s.branch for s in chosen}
    assert len(table_rows(html, "Branches by revenue")) == len(branches)


def test_an_unknown_branch_gives_an_empty_page_not_an_error(sample_dashboard: Dashboard) -> None:
    answer = sample_dashboard.get("/?branch=Atlantis")
    assert answer.status == 200
    assert "No sales for branch Atlantis, all trading days." in answer.text
    assert "No branch called “Atlantis” has sent any sales." in answer.text
    assert 'id="chart-specs"' not in answer.text
    # A known branch on a day it did not trade is empty too, with another hint.
    quiet = sample_dashboard.get("/?branch=Leeds&start=2022-01-01&end=2022-12-31").text
    assert "No sales for branch Leeds" in quiet
    assert "Try a wider date range or another branch." in quiet


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("/?start=18/12/2024", "start must be a date written YYYY-MM-DD (like 2024-12-18)"),
        ("/?end=2024-02-30", "end “2024-02-30” is not a real calendar date."),
        ("/?start=2024-12-19&end=2024-12-18", "start (2024-12-19) is after end (2024-12-18)."),
        ("/operations?late_after=-1", "late_after must be a whole number of days from 0 to"),
        ("/operations?late_after=soon", "late_after must be a whole number of days from 0 to"),
        ("/operations?as_of=2999-01-01", "as_of must be a day from 2000-01-01 to today"),
        ("/operations?as_of=1999-12-31", "as_of must be a day from 2000-01-01 to today"),
        ("/operations?as_of=2024-13-01", "as_of “2024-13-01” is not a real calendar date."),
        ("/operations?late_after=%C2%B2", "late_after must be a whole number of days from 0 to"),
        ("/?start=%D9%A2%D9%A0%D9%A2%D9%A4-12-18", "start must be a date written YYYY-MM-DD"),
        ("/?branch=Leeds%00", "branch contains a NUL character."),
        ("/?start=2024%0912-18", "start contains a control character."),
        ("/?branch=" + "a" * 100_000, "branch is 100,000 characters long; at most 200 are read."),
    ],
)
def test_bad_parameters_give_400_with_a_clear_message(
    sample_dashboard: Dashboard, query: str, message: str
) -> None:
    answer = sample_dashboard.get(query)
    assert answer.status == 400
    assert "<h1>Bad request</h1>" in answer.text
    assert message in answer.text
    assert "Traceback" not in answer.text


PARAMETERS = {
    "/": ("start", "end", "branch"),
    "/operations": ("late_after", "as_of"),
    "/metrics": ("anything",),
    "/healthz": ("anything",),
}
LONG = "a" * 100_000
ODD_VALUES = [
    "²",
    "²⁰²⁴-¹²-¹⁸",
    "٢٠٢٤-١٢-١٨",
    "\uff12\uff10\uff12\uff14-\uff11\uff12-\uff11\uff18",  # full-width digits
    "-1",
    "+1",
    "1e3",
    "0x10",
    "9" * 40,
    "9" * 5000,
    "\x00",
    "Leeds\x00",
    "\x7f\x85",
    LONG,
    "2024-02-30",
    "2024-1-1",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\ufffd",
    " ",
]


@pytest.mark.parametrize("path", PARAMETERS)
def test_odd_query_values_give_400_or_the_default_never_500(
    sample_dashboard: Dashboard, path: str
) -> None:
    for name in PARAMETERS[path]:
        for value in ODD_VALUES:
            answer = sample_dashboard.get(f"{path}?{urlencode({name: value})}")
            where = (path, name, value[:12], len(value))
            assert answer.status in (200, 400), where
            assert "Traceback" not in answer.text, where
            assert "<script>alert" not in answer.text, where
            assert LONG[:201] not in answer.text, where  # never echoed past the cap
            assert len(answer.body) < 200_000, where


def test_a_long_path_is_not_echoed_by_the_404_page(sample_dashboard: Dashboard) -> None:
    answer = sample_dashboard.get("/" + LONG)
    assert answer.status == 404
    assert "There is no page at /aaaa" in answer.text
    assert LONG[:201] not in answer.text


# -- operations, health, metrics --------------------------------------------------------------


def test_operations_page_shows_runs_files_rejects_and_freshness(
    sample_dashboard: Dashboard,
) -> None:
    answer = sample_dashboard.get("/operations?as_of=2024-12-19")
    html = answer.text
    assert answer.status == 200
    assert table_rows(html, "Files by state") == [["loaded", "33", "10,163", "10,163", "0"]]
    runs = table_rows(html, "Recent runs")
    assert len(runs) == 1
    assert runs[0][1] == "succeeded"
    assert runs[0][3:9] == ["33", "0", "0", "0", "10,163", "0"]
    fresh = table_rows(html, "Freshness")
    assert len(fresh) == 30
    assert {row[1] for row in fresh} == {"Wed 18 Dec 2024"}
    assert {row[4] for row in fresh} == {"on time"}
    assert "all 30 branches up to date" in html
    assert "every branch should have sent <strong>Wed 18 Dec 2024</strong>" in words(html)
    assert "Newest trading day loaded: Wed 18 Dec 2024." in words(html)
    assert table_rows(html, "Rejected rows by reason") == []
    assert set(charts(html)) == {"run-durations", "files-by-state"}


def test_freshness_is_measured_against_today_not_the_newest_loaded_day(
    sample_dashboard: Dashboard,
) -> None:
    due = due_day(local_now(), DashboardConfig("x").cutoff_hour)  # what `brewline check` uses
    html = sample_dashboard.get("/operations").text
    assert "30 of 30 branches late" in html
    assert f"every branch should have sent <strong>{due:%a %d %b %Y}</strong>" in words(html)
    behind = f"{(due - DAY).days:,}"
    assert {(row[2], row[4]) for row in table_rows(html, "Freshness")} == {(behind, "late")}
    assert html.count('<tr class="late">') == 30
    lenient = sample_dashboard.get(f"/operations?late_after={(due - DAY).days}").text
    assert "all 30 branches up to date" in lenient


def test_as_of_looks_at_a_past_day(sample_dashboard: Dashboard, sample_sales: list[Sale]) -> None:
    as_of = dt.date(2023, 6, 1)
    last: dict[str, dt.date] = {}
    for s in sample_sales:
        if s.day <= as_of:
            last[s.branch] = max(s.day, last.get(s.branch, s.day))
    html = sample_dashboard.get("/operations?as_of=2023-06-01&late_after=30").text
    assert "As of Thu 01 Jun 2023, every branch should have sent" in words(html)
    assert 'name="as_of" min="2000-01-01" value="2023-06-01"' in html
    due = as_of - dt.timedelta(days=1)
    expected = sorted(
        (
            (
                b,
                f"{d:%a %d %b %Y}",
                f"{(due - d).days:,}",
                "late" if (due - d).days > 30 else "on time",
            )
            for b, d in last.items()
        ),
        key=lambda row: (-int(row[2].replace(",", "")), row[0]),
    )
    assert [[r[0], r[1], r[2], r[4]] for r in table_rows(html, "Freshness")] == [
        list(e) for e in expected
    ]
    # One day after the newest trading day, nobody is late.
    assert "all 30 branches up to date" in sample_dashboard.get("/operations?as_of=2024-12-19").text
    one_late_day = sample_dashboard.get("/operations?as_of=2024-12-20").text
    assert "30 of 30 branches late" in one_late_day
    assert (
        "all 30 branches up to date"
        in sample_dashboard.get("/operations?as_of=2024-12-20&late_after=1").text
    )


def test_healthz_reports_a_readable_warehouse(sample_dashboard: Dashboard) -> None:
    answer = sample_dashboard.get("/healthz")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    facts = json.loads(answer.body)
    assert facts["status"] == "ok"
    assert facts["reachable"] is True
    assert facts["schema_version"] == facts["expected_schema_version"] == SCHEMA_VERSION
    assert facts["engine"] in {"duckdb", "postgres"}


def test_metrics_in_prometheus_text_format(sample_dashboard: Dashboard) -> None:
    answer = sample_dashboard.get("/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    assert samples[("brewline_up", ())] == 1
    assert samples[("brewline_files", (("state", "loaded"),))] == 33
    assert samples[("brewline_files", (("state", "rejected"),))] == 0
    assert samples[("brewline_rows_loaded_total", ())] == 10163
    assert samples[("brewline_rows_read_total", ())] == 10163
    assert samples[("brewline_rows_rejected_total", ())] == 0
    runs = (("status", "succeeded"),)
    assert samples[("brewline_run_duration_seconds_count", runs)] == 1
    assert samples[("brewline_run_duration_seconds_bucket", (("le", "+Inf"), *runs))] == 1
    assert samples[("brewline_run_duration_seconds_sum", runs)] > 0
    loads = {
        k[1][0][1]: v for k, v in samples.items() if k[0] == "brewline_last_load_timestamp_seconds"
    }
    assert len(loads) == 30
    now = dt.datetime.now(dt.UTC).timestamp()
    assert all(now - 3600 < stamp <= now + 1 for stamp in loads.values())
    days = {
        k[1][0][1]: v
        for k, v in samples.items()
        if k[0] == "brewline_last_trading_day_timestamp_seconds"
    }
    assert set(days.values()) == {dt.datetime(2024, 12, 18, tzinfo=dt.UTC).timestamp()}


# -- privacy, assets, headers -----------------------------------------------------------------


def test_no_customer_name_or_card_number_reaches_any_page(
    sample_dashboard: Dashboard, sample_sales: list[Sale]
) -> None:
    pages = "\n".join(
        sample_dashboard.get(path).text
        for path in ("/", LEEDS_DAY, "/operations", "/metrics", "/healthz", "/?branch=Atlantis")
    )
    names = Counter(s.name for s in sample_sales)
    cards = {s.card for s in sample_sales if s.card}
    assert len(names) > 1000
    assert len(cards) > 1000
    assert [n for n in names if n in pages] == []
    assert [c for c in cards if c in pages] == []


def test_plotly_is_served_by_the_app_with_long_cache_headers(sample_dashboard: Dashboard) -> None:
    html = sample_dashboard.get("/").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(s.startswith(("/", "?", "data:")) for s in sources), sources
    plotly = next(s for s in sources if re.fullmatch(r"/static/plotly-[0-9a-f]{12}\.min\.js", s))
    plain = sample_dashboard.get(plotly)
    assert plain.status == 200
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["content-type"].startswith("text/javascript")
    assert len(plain.body) > 1_000_000
    assert b"plotly.js" in plain.body[:2000]
    packed = sample_dashboard.get(plotly, {"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert sample_dashboard.get("/static/plotly-unknown.min.js").status == 404


def test_pages_and_scripts_are_gzipped_for_clients_that_accept_it(
    sample_dashboard: Dashboard,
) -> None:
    page = sample_dashboard.get("/")
    files = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert len(files) == 3  # stylesheet, Plotly.js, chart bootstrap
    sizes: dict[str, tuple[int, int]] = {}
    for path in ["/", "/operations", *files]:
        plain = sample_dashboard.get(path)
        packed = sample_dashboard.get(path, {"Accept-Encoding": "gzip"})
        assert packed.status == 200, path
        assert packed.headers["content-encoding"] == "gzip", path
        assert "Accept-Encoding" in packed.headers["vary"], path
        assert packed.headers["content-type"] == plain.headers["content-type"], path
        assert gzip.decompress(packed.body) == plain.body, path
        sizes[path] = (len(plain.body), len(packed.body))
    assert "content-encoding" not in page.headers  # only when asked for
    assert sizes["/"][1] < sizes["/"][0] / 4
    plain_js, packed_js = next(size for path, size in sizes.items() if "/plotly-" in path)
    assert plain_js > 3_000_000
    assert packed_js < plain_js / 2


def test_static_files_are_only_the_hashed_names_and_revalidate(
    sample_dashboard: Dashboard,
) -> None:
    html = sample_dashboard.get("/").text
    found = re.search(r'href="(/static/dashboard-[0-9a-f]{12}\.css)"', html)
    assert found, "no stylesheet link"
    css = sample_dashboard.get(found.group(1))
    assert css.status == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert css.headers["x-content-type-options"] == "nosniff"
    again = sample_dashboard.get(found.group(1), {"If-None-Match": css.headers["etag"]})
    assert (again.status, again.body) == (304, b"")
    for path in ("/static/dashboard.css", "/static/plotly.min.js", "/static/widgetbundle.js"):
        assert sample_dashboard.get(path).status == 404, path


def test_pages_carry_a_strict_content_security_policy(sample_dashboard: Dashboard) -> None:
    headers = sample_dashboard.get("/").headers
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy  # no CDN, no inline script
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert "server" not in {k.lower() for k in headers}


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/operations/", "/operations"),
        ("/operations/?late_after=2", "/operations?late_after=2"),
        ("/healthz//", "/healthz"),
    ],
)
def test_trailing_slash_redirects_are_relative_whatever_the_host_header(
    sample_dashboard: Dashboard, path: str, location: str
) -> None:
    answer = raw_get(sample_dashboard, path, {"Host": "evil.example"})
    assert answer.status == 307
    assert answer.headers["location"] == location


def test_no_redirect_leaves_the_dashboard(sample_dashboard: Dashboard) -> None:
    # "//evil.example/" without its slash would be a protocol-relative address.
    for path in ("//evil.example/", "/\\evil.example/", "/nowhere/"):
        answer = raw_get(sample_dashboard, path, {"Host": "evil.example"})
        assert answer.status == 404, path
        assert "location" not in answer.headers, path


def test_unknown_paths_are_404_pages(sample_dashboard: Dashboard) -> None:
    answer = sample_dashboard.get("/nowhere")
    assert answer.status == 404
    assert "There is no page at /nowhere." in answer.text


# -- branch names as the tills wrote them -------------------------------------------------------

ODD_BRANCHES = {"belfast": "Bel\x07fast\tQuay", "birmingham": "Birmingham\x1f"}
"""Control characters a till left in the branch column: inside the name, and at its end
(Python's ``str.strip`` takes ``\\x1f``, the loader's Unicode-whitespace strip does not)."""


class _Options(HTMLParser):
    """The branch filter's options as a browser reads them: (value, label, selected)."""

    def __init__(self) -> None:
        super().__init__()
        self.options: list[tuple[str, str, bool]] = []
        self._open: tuple[str, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "option":
            found = dict(attrs)
            self._open = (found.get("value") or "", "selected" in found)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.options.append((self._open[0], data, self._open[1]))
            self._open = None


def options(html: str) -> list[tuple[str, str, bool]]:
    parser = _Options()
    parser.feed(html)
    return parser.options


@pytest.fixture(scope="module")
def odd_branches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard over two real exports whose branch column holds control characters."""
    folder = tmp_path_factory.mktemp("odd-branches")
    landing = folder / "landing"
    landing.mkdir()
    for path in sorted((SHARED_EXPORTS / "coffeetl-2024-12-18").glob("b[ei]*.csv")):
        town = path.name.split("_")[0]
        text = path.read_text(encoding="utf-8")
        (landing / path.name).write_text(
            text.replace(f",{town.title()},", f",{ODD_BRANCHES[town]},"), encoding="utf-8"
        )
    warehouse = folder / "w.duckdb"
    settings = Settings(landing=landing, warehouse=str(warehouse), quarantine=folder / "q")
    assert run(settings).rows_rejected == 0
    with dashboard(str(warehouse), folder) as running:
        yield running


def test_a_branch_named_with_control_characters_can_be_chosen_in_the_filter(
    odd_branches: Dashboard,
) -> None:
    offered = options(odd_branches.get("/").text)
    assert [value for value, _, _ in offered] == ["", *sorted(ODD_BRANCHES.values())]
    for value, label, _ in offered[1:]:
        assert label == value  # shown as it is, escaped by the template
        chosen = odd_branches.get("/?" + urlencode({"branch": value}))
        assert chosen.status == 200, chosen.text
        assert [o for o in options(chosen.text) if o[2]] == [(value, value, True)]
        town = next(t for t, odd in ODD_BRANCHES.items() if odd == value)
        export = next((SHARED_EXPORTS / "coffeetl-2024-12-18").glob(f"{town}_*.csv"))
        assert kpi(chosen.text, "Sales") == f"{len(export.read_text().splitlines()):,}"
    # NUL is still refused: no warehouse can hold it in a name.
    assert odd_branches.get("/?branch=Bel%00fast").status == 400
