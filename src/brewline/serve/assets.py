"""The files a dashboard page loads, served by the app itself under content-hashed names.

- ``static/dashboard.css`` and ``static/dashboard.js`` (package data next to this
  module). The script draws every chart spec found in
  ``<script id="chart-specs" type="application/json">``; it is a file rather than
  inline so the Content-Security-Policy can forbid inline scripts.
- ``plotly.min.js`` from the installed ``plotly`` package, so charts work with no
  internet (found without importing ``plotly``).

Each is served as ``/static/<stem>-<first 12 hex of its SHA-256>.<suffix>``: the
name changes with the content, so browsers may cache it for a year. Any other
name under ``/static/`` is 404. Compression is the app's ``GZipMiddleware``.

    >>> dashboard_css().name  # doctest: +SKIP
    'dashboard-98c187454e40.css'
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

__all__ = ["STATIC", "Asset", "AssetFiles", "dashboard_css", "dashboard_js", "plotly_js"]

STATIC = Path(__file__).parent / "static"
"""The dashboard's own stylesheet and script (package data)."""
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class Asset:
    """A static file: its URL name (content-hashed) and where it lies."""

    name: str
    path: Path


def _asset(path: Path) -> Asset:
    tag = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    stem, _, suffix = path.name.partition(".")
    return Asset(f"{stem}-{tag}.{suffix}", path)


@cache
def plotly_js() -> Asset:
    """Plotly.js as the installed ``plotly`` package ships it (hashed once)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the dashboard needs the plotly package", name="plotly")
    return _asset(Path(spec.origin).parent / "package_data" / "plotly.min.js")


@cache
def dashboard_js() -> Asset:
    """The chart bootstrap: draws the page's chart specs with Plotly."""
    return _asset(STATIC / "dashboard.js")


@cache
def dashboard_css() -> Asset:
    """The dashboard's stylesheet."""
    return _asset(STATIC / "dashboard.css")


class AssetFiles(StaticFiles):
    """Starlette's ``StaticFiles`` for exactly ``assets``, by URL name, cached a year.

    Keeps what ``StaticFiles`` gives (ETag and Last-Modified, 304 answers, HEAD,
    streaming) and adds the long cache headers and an exact media type.

    >>> Mount("/static", AssetFiles([dashboard_css(), plotly_js()]))  # doctest: +SKIP
    """

    def __init__(self, assets: Iterable[Asset]):
        super().__init__(check_dir=False)
        self.assets = {a.name: a for a in assets}

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        asset = self.assets.get(path)
        if asset is None:
            return "", None
        return str(asset.path), asset.path.stat()

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        media_type = _MEDIA_TYPES[Path(full_path).suffix]
        response = FileResponse(
            full_path, status_code, _HEADERS, media_type, stat_result=stat_result
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response
