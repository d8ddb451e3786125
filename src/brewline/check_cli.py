"""``brewline check``: data checks for cron, a thin layer over :mod:`brewline.checks`.

Register it on the main app with ``app.command()(check)``. It prints a table
(or ``--json``), sends one alert per failing check to the configured webhook
and/or e-mail (see :class:`brewline.alerts.AlertSettings`), and exits 1 when any
check failed or the checks could not run, 0 otherwise (warnings included)::

    $ brewline check --as-of 2024-11-11 || echo "something is wrong"
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from brewline.config import load_settings
from brewline.console import WarehouseOption, exit_on_error, open_existing, print_json
from brewline.load.open import redact
from brewline.ops.alerts import (
    Alert,
    DeliveryFailure,
    alert_for_error,
    alerts_for_checks,
    send_alerts,
)
from brewline.ops.checks import CheckResult, due_day, local_now, run_checks
from brewline.ops.settings import AlertSettings, CheckSettings

__all__ = ["check", "deliver", "parse_as_of"]

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
    """Check the warehouse: freshness, volume, new branches/products, reject rate.

    Every branch must have data for the due day (yesterday, once the cut-off
    hour has passed); no branch-day may fall far below its trailing mean; new
    branches and products are reported as warnings; the reject rate of the
    latest run must stay under its limit. Thresholds: BREWLINE_CHECK_* settings.

    Read-only. Exits 1 when a check failed or the checks could not run, else 0.
    """
    with exit_on_error(as_json):
        settings = load_settings(warehouse=warehouse)
        checks = CheckSettings.from_settings(settings)
        alerting = AlertSettings.from_settings(settings)
    when = parse_as_of(as_of) or local_now()
    on_error = partial(_alert_error, alerting) if alert else None
    with exit_on_error(as_json, on_error), open_existing(settings) as wh:
        results = run_checks(wh, checks, when)
    send = alert and alerting.enabled
    alerts = alerts_for_checks(results, warnings=alerting.alert_warnings) if send else []
    outcome = _Outcome(
        results, when, due_day(when, checks.check_cutoff_hour), alerts, deliver(alerting, alerts)
    )
    if as_json:
        print_json(outcome.to_dict())
    else:
        _render(outcome, redact(settings.warehouse))
    raise typer.Exit(outcome.exit_code)


def _alert_error(alerting: AlertSettings, error: BaseException) -> None:
    deliver(alerting, [alert_for_error("check", error)])


def deliver(settings: AlertSettings, alerts: Sequence[Alert]) -> list[DeliveryFailure]:
    """Send ``alerts`` (if any channel is configured); say on stderr what did not arrive."""
    if not alerts or not settings.enabled:
        return []
    failures = send_alerts(settings, alerts)
    for failure in failures:
        typer.echo(f"brewline: warning: {failure}", err=True)
    return failures


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
    console = Console()
    table = Table(
        title=f"Checks on {where}",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in ("check", "status", "subject", "detail"):
        table.add_column(column, overflow="fold")
    for r in outcome.results:
        status = Text(r.status, style=_STYLE[r.status])
        table.add_row(Text(r.name), status, Text(r.subject or "-"), Text(r.detail))
    console.print(table)
    counts, when = outcome.counts, outcome.when
    at = when.isoformat(sep=" ", timespec="minutes") if isinstance(when, dt.datetime) else when
    console.print(
        Text(
            f"As of {at} (data due for {outcome.due}): {counts['fail']} failed, "
            f"{counts['warn']} warnings, {counts['ok']} ok.",
            style="bold red" if counts["fail"] else "bold",
        )
    )
