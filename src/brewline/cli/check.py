"""``brewline check``: data checks for cron, a thin layer over :mod:`brewline.ops.checks`.

It prints a table (or ``--json``), sends one alert per failing check to the
configured webhook and/or e-mail (see :class:`brewline.ops.settings.AlertSettings`),
and exits 1 when any check failed or the checks could not run, 0 otherwise
(warnings included)::

    $ brewline check --as-of 2024-11-11 || echo "something is wrong"
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from brewline.cli.output import (
    WarehouseOption,
    alert_on_error,
    exit_on_error,
    open_existing,
    print_json,
    table,
    text,
    warn,
)
from brewline.vocabulary import counted

if TYPE_CHECKING:
    from brewline.ops.alerts import Alert, DeliveryFailure
    from brewline.ops.checks import CheckResult

__all__ = ["check", "parse_as_of"]

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}
_AS_OF_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M")


def parse_as_of(value: str | None) -> dt.date | dt.datetime | None:
    """``2024-11-11`` (a date) or ``2024-11-11T09:30`` (branch local time); None stays None.

    >>> parse_as_of("2024-11-11T09:30")
    datetime.datetime(2024, 11, 11, 9, 30)
    """
    if value is None:
        return None
    for fmt in _AS_OF_FORMATS:
        try:
            parsed = dt.datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        return parsed.date() if fmt == "%Y-%m-%d" else parsed
    raise typer.BadParameter("use YYYY-MM-DD or YYYY-MM-DDTHH:MM (branch local time)")


def _validate_as_of(value: str | None) -> str | None:
    parse_as_of(value)
    return value


def check(
    warehouse: WarehouseOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="WHEN",
            callback=_validate_as_of,
            help="Check as at this date (YYYY-MM-DD: after the cut-off hour that day) or "
            "branch-local time (YYYY-MM-DDTHH:MM) [default: now].",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
    ] = False,
    alert: Annotated[
        bool,
        typer.Option(
            "--alert/--no-alert",
            help="Send one alert per failing check to the configured webhook and/or e-mail "
            "(nothing is sent when none is configured).",
        ),
    ] = True,
) -> None:
    """Check the warehouse: freshness, volume, news, reject rate, sources, marts.

    Every branch must have data for the due day (yesterday, once the cut-off
    hour has passed); no branch-day may fall far below its trailing mean; new
    branches and products are reported as warnings; the reject rate of the
    latest run must stay under its limit; incremental sources (totesys) must
    have synced recently; every mart must equal its aggregate of the facts.
    Thresholds: BREWLINE_CHECK_* settings.

    Read-only. Exits 1 when a check failed or the checks could not run, else 0.
    """
    from brewline.config import load_settings
    from brewline.load.locations import redact
    from brewline.ops.alerts import alerts_for_checks, send_alerts
    from brewline.ops.checks import due_day, local_now, run_checks

    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse)  # thresholds and alerting included
    when = parse_as_of(as_of) or local_now()
    on_error = alert_on_error(settings, "check") if alert else None
    with exit_on_error(as_json, on_error), open_existing(settings) as wh:
        results = run_checks(wh, settings, when)
    send = alert and settings.enabled
    alerts = alerts_for_checks(results, warnings=settings.alert_warnings) if send else []
    failures = send_alerts(settings, alerts)
    for failure in failures:
        warn(failure)
    outcome = _Outcome(results, when, due_day(when, settings.check_cutoff_hour), alerts, failures)
    if as_json:
        print_json(outcome.to_dict())
    else:
        _render(outcome, redact(settings.warehouse))
    raise typer.Exit(outcome.exit_code)


@dataclass(frozen=True)
class _Outcome:
    """What one ``check`` found and what it sent."""

    results: list[CheckResult]
    when: dt.date | dt.datetime
    due: dt.date
    alerts: list[Alert]
    failures: list[DeliveryFailure]

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(r.status for r in self.results)
        return {status: found.get(status, 0) for status in ("fail", "warn", "ok")}

    @property
    def exit_code(self) -> int:
        return 1 if self.counts["fail"] else 0

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "status": "fail" if counts["fail"] else "warn" if counts["warn"] else "ok",
            "exit_code": self.exit_code,
            "as_of": self.when.isoformat(),
            "due_day": self.due.isoformat(),
            "counts": counts,
            "results": [r.to_dict() for r in self.results],
            "alerts": len(self.alerts),
            "delivery_failures": [str(f) for f in self.failures],
        }


def _render(outcome: _Outcome, where: str) -> None:
    from rich.console import Console

    console = Console()
    results = table(f"Checks on {where}", ("check", "status", "subject", "detail"))
    for r in outcome.results:
        status = text(r.status, style=_STYLE[r.status])
        results.add_row(r.name, status, r.subject or "-", r.detail)
    console.print(results)
    counts, when = outcome.counts, outcome.when
    at = when.isoformat(sep=" ", timespec="minutes") if isinstance(when, dt.datetime) else when
    console.print(
        text(
            f"As of {at} (data due for {outcome.due}): {counts['fail']} failed, "
            f"{counted(counts['warn'], 'warning')}, {counts['ok']} ok.",
            style="bold red" if counts["fail"] else "bold",
        )
    )
