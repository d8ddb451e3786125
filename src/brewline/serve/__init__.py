"""``brewline serve``: a read-only web dashboard over the warehouse, plus ``/metrics``.

Modules, from data to HTTP:

- :mod:`brewline.serve.views` — the dashboard's questions in portable SQL, every
  sales view under one :class:`~brewline.serve.views.Filters` (dates, branch);
- :mod:`brewline.serve.charts` — Plotly figure specs built from those answers (pure);
- :mod:`brewline.serve.pages` — pages rendered from ``templates/*.html`` (pure);
- :mod:`brewline.serve.assets` — ``static/`` and Plotly.js from the ``plotly``
  package, under content-hashed names;
- :mod:`brewline.serve.app` — the Starlette app: a fresh read-only connection per
  request, answers cached per warehouse version, responses gzip-compressed;
- :mod:`brewline.cli.serve` — the Typer command that runs it under uvicorn.

This package imports nothing heavy, so the CLI stays quick to start::

    >>> from brewline.serve.app import DashboardConfig, create_app  # doctest: +SKIP
    >>> app = create_app(DashboardConfig("brewline.duckdb"))  # doctest: +SKIP
"""

__all__: list[str] = []
