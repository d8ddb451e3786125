"""Operations: is the loaded data right, and who hears when it is not.

- :mod:`brewline.ops.settings` — the ``check_*`` and ``alert_*`` sections of the
  settings (pydantic only: importing them costs no Polars, no warehouse);
- :mod:`brewline.ops.checks` — data checks over a loaded warehouse (freshness,
  volume, new branches and products, reject rate);
- :mod:`brewline.ops.alerts` — alerts for runs and checks, by webhook and/or e-mail;
- :mod:`brewline.ops.metrics` — Prometheus metrics read from the ledger.

This package imports nothing itself; import the module you need.
"""

__all__: list[str] = []
