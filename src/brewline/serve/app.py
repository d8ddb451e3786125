"""The dashboard's Starlette app: pages, Plotly.js, ``/metrics`` and ``/healthz``.

Routes::

    GET /                 sales, filtered by ?start=YYYY-MM-DD&end=YYYY-MM-DD&branch=NAME
    GET /operations       runs, files by state, rejects, freshness
                          (?late_after=DAYS&as_of=YYYY-MM-DD; as_of defaults to today)
    GET /totesys          the totesys star: sales per currency by month, design,
                          counterparty, staff, department and delivery location, and
                          unpaid payments by days overdue (?as_of=YYYY-MM-DD; default
                          today, UTC)
    GET /metrics          Prometheus text format (brewline.ops.metrics.LedgerCollector)
    GET /healthz          200 + JSON when the warehouse can be read, else 503 + JSON
    GET /static/NAME      the stylesheet, the chart bootstrap and Plotly.js (cached a year;
                          see :mod:`brewline.serve.assets`)

A query value the dashboard cannot use (longer than 200 characters, a control
character, though a branch may hold any but NUL, a malformed day or number)
answers 400 with a message that quotes at most 40 characters of it; unknown
parameters are ignored. Never a 500.

A page address with a trailing slash (``/operations/``) redirects to the page by a
relative address, whatever the ``Host`` header says.

Every answer of 500 bytes or more is gzip-compressed for clients that accept it
(``GZipMiddleware``): pages, JSON, the metrics text, the stylesheet and scripts.

Every request opens the warehouse read-only and closes it before answering. For
DuckDB this matters: a writer (``brewline run``) can only take the file while no
reader holds it, and a reader cannot open it while the writer does. A request
waits up to ``lock_timeout`` (1 s) for the writer, long enough for a loader that
holds the lock only while it commits a batch; after that it answers 503
"warehouse busy, retry" rather than block the load. A page answered before waits
only ``stale_after`` (0.4 s), then gets its last answer with a note that a load
is writing (stale while busy: 16 clients during a load get pages within a
second; see docs/dashboard.md).

Rendered pages are cached per *ledger version* (:func:`~brewline.serve.views.ledger_version`:
changes with every committed batch, run and schema upgrade), so a repeated page
costs one tiny query; so is the filter-independent part of new-vs-returning. The
totesys page's key adds the star generation the last ``brewline sync`` loaded
(a sync does not write the cafe ledger).
Entries also expire after ``cache_seconds`` in case something changes the
warehouse without going through the ledger.

    >>> app = create_app(DashboardConfig("brewline.duckdb"))  # doctest: +SKIP
    >>> uvicorn.run(app, port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from brewline.errors import BrewlineError, SchemaVersionError, WarehouseBusy, WarehouseError
from brewline.load import Warehouse, open_warehouse
from brewline.load.locations import redact
from brewline.load.migrations import SCHEMA_VERSION
from brewline.ops.metrics import LedgerCollector
from brewline.serve import pages
from brewline.serve.assets import AssetFiles, dashboard_css, dashboard_js, plotly_js
from brewline.serve.views import (
    FilterOptions,
    Filters,
    OperationsView,
    SalesView,
    filter_options,
    ledger_version,
    operations_view,
    sales_view,
)
from brewline.totesys.queries import TotesysReport, loaded_generation, sync_hint, totesys_report
from brewline.vocabulary import due_day, local_now

__all__ = ["DashboardConfig", "create_app"]

log = logging.getLogger("brewline.serve")

MAX_LATE_AFTER = 3650
EARLIEST_AS_OF = dt.date(2000, 1, 1)
"""The earliest ``?as_of=`` day (the default of the earliest plausible sale date)."""
_T = TypeVar("_T")
MAX_PARAM = 200
"""The longest query value the dashboard reads (longer: 400, and never echoed)."""
_SHOWN = 40
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII: \d takes any script's digits
_DAYS = re.compile(r"[0-9]{1,4}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace() and not 0x1C <= c <= 0x1F)
"""Unicode White_Space, what the loader strips from names (Polars' ``strip_chars``):
``str.isspace`` also counts the separators ``\\x1c``-``\\x1f``, which a name may end with."""
_RETRY_AFTER = "5"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class DashboardConfig:
    """How the dashboard reads the warehouse.

    - ``warehouse``: DuckDB file path or ``postgresql://`` URL (never shown unredacted);
    - ``late_after``: default days a branch's last trading day may lag the due day
      before it counts as late (the page's ``?late_after=`` overrides it);
    - ``cutoff_hour``: the due day is yesterday once this hour (branch time) has
      passed, the day before until then: the ``check_cutoff_hour`` setting, so the
      page and ``brewline check`` agree;
    - ``lock_timeout``: seconds a request waits for a DuckDB writer's lock before
      answering 503 "busy, retry" (a loader holds it while it commits a batch: a
      moment, so a page is delayed, not refused);
    - ``stale_after``: seconds a request for a page answered before waits for the
      file before it is answered from that last answer, said to be from before the
      load (so it comes within a second while a load commits);
    - ``cache_entries`` and ``cache_seconds``: bounds of the answer cache.
    """

    warehouse: str
    late_after: int = 0
    cutoff_hour: int = 10
    lock_timeout: float = 1.0
    stale_after: float = 0.4
    cache_entries: int = 64
    cache_seconds: float = 300.0


class BadRequest(Exception):
    """A query parameter the dashboard cannot use; the message says how to fix it."""


# -- reading the warehouse --------------------------------------------------------------------


@dataclass
class _Cache:
    """A small LRU of answers keyed by (question, parameters, ledger version)."""

    entries: int
    seconds: float
    _items: OrderedDict[Hashable, tuple[float, Any]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or time.monotonic() - found[0] > self.seconds:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)


@dataclass
class _Snapshot:
    """One request's read-only connection and the ledger version it saw."""

    wh: Warehouse
    version: tuple[Any, ...]
    cache: _Cache

    def answer(self, question: str, key: Hashable, compute: Callable[[Warehouse], _T]) -> _T:
        """``compute(wh)``, or its cached answer for this ledger version."""
        full = (question, key, self.version)
        found = self.cache.get(full)
        if found is None:
            found = compute(self.wh)
            self.cache.put(full, found)
        return found

    @property
    def as_of(self) -> str:
        finished = self.version[4]
        return finished.strftime("%Y-%m-%d %H:%M") if isinstance(finished, dt.datetime) else ""


class _Reader:
    def __init__(self, config: DashboardConfig):
        self.config = config
        self.cache = _Cache(config.cache_entries, config.cache_seconds)
        self.last = _Cache(config.cache_entries, config.cache_seconds)
        """Each page's (name, parameters) last answer, whatever the ledger version."""

    def open(self, patience: float | None = None) -> Warehouse:
        wait = self.config.lock_timeout if patience is None else patience
        return open_warehouse(self.config.warehouse, read_only=True, lock_timeout=wait)

    @contextmanager
    def snapshot(self, patience: float | None = None) -> Iterator[_Snapshot]:
        with self.open(patience) as wh:
            yield _Snapshot(wh, _checked_version(wh), self.cache)


def _checked_version(wh: Warehouse) -> tuple[Any, ...]:
    """The ledger version, after making sure this Brewline can read the schema.

    The version query reads the schema version too, so the slower catalogue
    lookup of :meth:`~brewline.load.Reader.check_schema` runs only to explain a problem.
    """
    try:
        version = ledger_version(wh)
    except WarehouseError:
        wh.check_schema()  # says "no warehouse yet" or names the wrong version
        raise
    if version[-1] != SCHEMA_VERSION:
        wh.check_schema()
    return version


# -- request parsing --------------------------------------------------------------------------


def _param(request: Request, name: str) -> str:
    """The query value ``name``, stripped; empty when absent.

    Bad-value policy: a value longer than :data:`MAX_PARAM` characters or holding a
    control character (NUL included) is a bad request, never read further nor echoed.
    """
    raw = _capped(request, name)
    if _CONTROL.search(raw):
        raise BadRequest(f"{name} contains a control character.")
    return raw.strip()


def _name_param(request: Request, name: str) -> str:
    """The query value ``name`` as a name in the data may be spelt; empty when absent.

    The loader keeps a branch as the till wrote it, control characters included, and
    the filter offers it so: those are read (the page shows them only escaped). A NUL
    is a bad request (no warehouse holds one in a name), and only what the loader
    strips is stripped, so the value matches the stored name exactly.
    """
    raw = _capped(request, name)
    if "\x00" in raw:
        raise BadRequest(f"{name} contains a NUL character.")
    return raw.strip(_SPACE)


def _capped(request: Request, name: str) -> str:
    """The raw query value ``name``: longer than :data:`MAX_PARAM` is a bad request."""
    raw = request.query_params.get(name, "")
    if len(raw) > MAX_PARAM:
        raise BadRequest(f"{name} is {len(raw):,} characters long; at most {MAX_PARAM} are read.")
    return raw


def _shown(raw: str) -> str:
    """``raw`` as a message may quote it: at most :data:`_SHOWN` characters."""
    return raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "…"


def _day_param(request: Request, name: str) -> dt.date | None:
    raw = _param(request, name)
    if not raw:
        return None
    if not _ISO_DAY.fullmatch(raw):
        raise BadRequest(
            f"{name} must be a date written YYYY-MM-DD (like 2024-12-18), not “{_shown(raw)}”."
        )
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} “{raw}” is not a real calendar date.") from None


def parse_filters(request: Request) -> Filters:
    """The sales filters from ``?start=&end=&branch=``; empty values mean "no limit"."""
    start, end = _day_param(request, "start"), _day_param(request, "end")
    if start and end and start > end:
        raise BadRequest(f"start ({start.isoformat()}) is after end ({end.isoformat()}).")
    return Filters(start, end, _name_param(request, "branch") or None)


def parse_as_of(request: Request, today: dt.date) -> dt.date:
    """The day the operations page looks from: ``?as_of=YYYY-MM-DD`` or ``today``."""
    as_of = _day_param(request, "as_of")
    if as_of is None:
        return today
    if not EARLIEST_AS_OF <= as_of <= today:
        raise BadRequest(
            f"as_of must be a day from {EARLIEST_AS_OF.isoformat()} to today "
            f"({today.isoformat()}), not {as_of.isoformat()}."
        )
    return as_of


def parse_late_after(request: Request, default: int) -> int:
    raw = _param(request, "late_after")
    if not raw:
        return default
    if not _DAYS.fullmatch(raw) or int(raw) > MAX_LATE_AFTER:
        raise BadRequest(
            f"late_after must be a whole number of days from 0 to {MAX_LATE_AFTER}, "
            f"not “{_shown(raw)}”."
        )
    return int(raw)


# -- the app ------------------------------------------------------------------------------------


def create_app(config: DashboardConfig) -> Starlette:
    """The dashboard as an ASGI app (serve it with uvicorn; see :mod:`brewline.cli.serve`)."""
    reader = _Reader(config)
    shown = redact(config.warehouse)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        LedgerCollector.for_location(config.warehouse, lock_timeout=config.lock_timeout)
    )
    assets = AssetFiles([dashboard_css(), dashboard_js(), plotly_js()])
    pages.compile_templates()

    def page(title: str, active: str, as_of: str = "") -> pages.Page:
        return pages.Page(title, active, shown, as_of)

    def sales(request: Request) -> Response:
        return _guarded(
            page("Sales", "sales"), lambda: _sales(request, reader, page), config.lock_timeout
        )

    def operations(request: Request) -> Response:
        return _guarded(
            page("Operations", "operations"),
            lambda: _operations(request, reader, page),
            config.lock_timeout,
        )

    def totesys(request: Request) -> Response:
        return _guarded(
            page("Totesys", "totesys"),
            lambda: _totesys(request, reader, page, shown),
            config.lock_timeout,
        )

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def healthz(request: Request) -> Response:
        return _health(reader, shown)

    routes = [
        Route("/", sales),
        Route("/operations", operations),
        Route("/totesys", totesys),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
    ]
    paths = {route.path for route in routes}

    async def not_found(request: Request, exc: Exception) -> Response:
        moved = _without_slash(request, paths)
        if moved is not None:
            return RedirectResponse(moved, 307)
        body = pages.render_problem(
            page("Not found", ""), "Not found", f"There is no page at {_shown(request.url.path)}."
        )
        return HTMLResponse(body, 404, headers=_PAGE_HEADERS)

    app = Starlette(
        routes=[*routes, Mount("/static", assets)],
        middleware=[Middleware(GZipMiddleware)],
        exception_handlers={404: not_found},
    )
    # Starlette's own slash redirect is absolute, built from the client's Host header.
    app.router.redirect_slashes = False
    return app


def _without_slash(request: Request, paths: set[str]) -> str | None:
    """``/operations/?q`` → ``/operations?q``: a relative address of one of ``paths``, or None.

    Relative, so no Host header chosen by a client ever ends up in a ``Location``;
    only known pages, so no ``//host`` (a protocol-relative address) either.
    """
    path = request.url.path.rstrip("/")
    if path not in paths or path == request.url.path:
        return None
    query = request.url.query
    return f"{path}?{query}" if query else path


PageMaker = Callable[..., pages.Page]


def _sales(request: Request, reader: _Reader, page: PageMaker) -> Response:
    filters = parse_filters(request)
    form = {
        "start": filters.start.isoformat() if filters.start else "",
        "end": filters.end.isoformat() if filters.end else "",
        "branch": filters.branch or "",
    }

    def ask(snap: _Snapshot) -> tuple[FilterOptions, SalesView]:
        return snap.answer("options", None, filter_options), sales_view(snap.wh, filters)

    def render(answer: tuple[FilterOptions, SalesView], as_of: str) -> str:
        options, view = answer
        return pages.render_sales(page("Sales", "sales", as_of), view, options, form)

    return _cached_page(reader, "sales", filters, ask, render)


def _operations(request: Request, reader: _Reader, page: PageMaker) -> Response:
    late_after = parse_late_after(request, reader.config.late_after)
    now = local_now()
    today = now.date()
    as_of = parse_as_of(request, today)
    # Today the clock and the cut-off hour decide (as `brewline check` does); a past day
    # is looked at after its cut-off.
    due = due_day(now if as_of == today else as_of, reader.config.cutoff_hour)

    def render(view: OperationsView, as_of_run: str) -> str:
        return pages.render_operations(page("Operations", "operations", as_of_run), view, today)

    ask = lambda snap: operations_view(snap.wh, late_after, as_of=as_of, due=due)  # noqa: E731
    # The due day is part of the key: lateness changes with the clock, without any load.
    return _cached_page(reader, "operations", (late_after, as_of, due), ask, render)


def _totesys(request: Request, reader: _Reader, page: PageMaker, shown: str) -> Response:
    today = dt.datetime.now(dt.UTC).date()
    as_of = parse_as_of(request, today)
    command = sync_hint(shown)

    def render(report: TotesysReport, _: str) -> str:
        return pages.render_totesys(page("Totesys", "totesys"), report, command, today)

    ask = lambda snap: totesys_report(snap.wh, as_of=as_of)  # noqa: E731
    # The ageing changes with the day, and the star with every sync.
    return _cached_page(reader, "totesys", as_of, ask, render, version=loaded_generation)


def _cached_page(
    reader: _Reader,
    name: str,
    key: Hashable,
    ask: Callable[[_Snapshot], _T],
    render: Callable[[_T, str], str],
    *,
    version: Callable[[Warehouse], Hashable] | None = None,
) -> Response:
    """The page's HTML for this ledger version: from the cache, or asked and rendered.

    Rendered pages are cached rather than frames: smaller, and a hit skips rendering.
    The warehouse is closed before rendering, so a writer waits as little as possible.
    ``version`` adds to the ledger version what else the page depends on.
    """
    started = time.perf_counter()
    page = (name, key)
    last: str | None = reader.last.get(page)
    try:
        with reader.snapshot(None if last is None else reader.config.stale_after) as snap:
            if version is not None:
                key = (key, version(snap.wh))
            cache_key = (name, key, snap.version)
            body: str | None = reader.cache.get(cache_key)
            if body is None:
                answer = ask(snap)
    except WarehouseBusy:
        if last is None:
            raise
        return _html(_before_the_load(last), extra={"Retry-After": _RETRY_AFTER})
    queried = time.perf_counter()
    if body is None:
        body = render(answer, snap.as_of)
        reader.cache.put(cache_key, body)
    reader.last.put(page, body)
    return _html(body, timings=(queried - started, time.perf_counter() - queried))


_BUSY_NOTE = (
    '<p class="busy" role="status">A load is writing to the warehouse: this is the page '
    "as it was just before. Reload in a few seconds for the newest figures.</p>"
)


def _before_the_load(body: str) -> str:
    """A page's last answer, said to be from before the load now committing (the page
    is cached rendered, so the note goes in at the top of its content)."""
    return body.replace("<main>", "<main>\n" + _BUSY_NOTE, 1)


def _guarded(page: pages.Page, answer: Callable[[], Response], waited: float) -> Response:
    """Turn bad parameters into 400 and an unreadable warehouse into 503, never a traceback.

    ``waited``: how long a DuckDB open waited for a writer's lock, said on the busy page.
    """
    try:
        return answer()
    except BadRequest as exc:
        body = pages.render_problem(page, "Bad request", str(exc), "Fix the address and try again.")
        return _html(body, 400)
    except WarehouseBusy:
        body = pages.render_problem(
            page,
            "Warehouse busy, retry",
            "A load (brewline run) is writing to the warehouse right now, and a DuckDB "
            f"file cannot be read while it is written. The dashboard waited {waited:g} s "
            "for it to finish.",
            "Retry in a few seconds: this page will work again as soon as the load commits.",
        )
        return _html(body, 503, {"Retry-After": _RETRY_AFTER})
    except BrewlineError as exc:
        log.warning("dashboard: cannot read the warehouse: %s", exc)
        hint = (
            "Run `brewline init` to upgrade the warehouse."
            if isinstance(exc, SchemaVersionError)
            else "Check that the warehouse exists and is reachable, then retry."
        )
        body = pages.render_problem(page, "Warehouse unavailable", str(exc), hint)
        return _html(body, 503, {"Retry-After": _RETRY_AFTER})


def _html(
    body: str,
    status: int = 200,
    extra: dict[str, str] | None = None,
    timings: tuple[float, float] | None = None,
) -> HTMLResponse:
    headers = {**_PAGE_HEADERS, **(extra or {})}
    if timings is not None:
        headers["Server-Timing"] = (
            f"db;dur={timings[0] * 1000:.1f}, render;dur={timings[1] * 1000:.1f}"
        )
    return HTMLResponse(body, status, headers=headers)


def _health(reader: _Reader, shown: str) -> Response:
    """200 when the warehouse can be read, else 503; busy after a good answer is still
    200 (``"status": "busy"``): a load committing is no reason to take the dashboard out,
    until the last good answer is ``cache_seconds`` old."""
    facts: dict[str, Any] = {"warehouse": shown, "expected_schema_version": SCHEMA_VERSION}
    healthy = reader.last.get("healthz")
    try:
        with reader.open(None if healthy is None else reader.config.stale_after) as wh:
            facts.update(engine=wh.engine, reachable=True)
            wh.check_schema()  # the message names the version it found, if wrong
            facts["schema_version"] = SCHEMA_VERSION
    except BrewlineError as exc:
        busy = isinstance(exc, WarehouseBusy)
        if busy and healthy is not None:
            busy_facts = healthy | {"status": "busy", "busy": True, "error": str(exc)}
            return JSONResponse(busy_facts, headers={"Cache-Control": "no-store"})
        facts.setdefault("reachable", False)
        facts.update(status="unavailable", busy=busy, error=str(exc))
        return JSONResponse(facts, 503, headers={"Cache-Control": "no-store"})
    facts["status"] = "ok"
    reader.last.put("healthz", facts)
    return JSONResponse(facts, headers={"Cache-Control": "no-store"})
