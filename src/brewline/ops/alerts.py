"""Alerts: tell a person when a run or a check fails, by webhook and/or e-mail.

One alert per problem, never one per row: a run with rejected files is one
message listing the files and their reasons; each failing check is one message.
Alerts carry file names, reasons, counts, branch and product names only: never
row content, customer names or card numbers, and never a file's free-text
message (``brewline status`` shows those to whoever may read the ledger).

    >>> from brewline.ops.alerts import alerts_for_run, send_alerts
    >>> failures = send_alerts(settings, alerts_for_run(report))  # doctest: +SKIP

Where alerts go is :class:`brewline.ops.settings.AlertSettings` (the main
:class:`~brewline.config.Settings` is one). Delivery never raises: a webhook or
mail server that is down becomes a :class:`DeliveryFailure` (logged as a warning
and returned), so a run or a check is never stopped by its own alerting.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from brewline.ops.settings import AlertSettings
from brewline.report import RunReport
from brewline.vocabulary import FileState, counted

if TYPE_CHECKING:
    from brewline.ops.checks import CheckResult  # Polars: only its type is needed here

__all__ = [
    "Alert",
    "DeliveryFailure",
    "alert_error",
    "alert_for_error",
    "alert_run",
    "alerts_for_checks",
    "alerts_for_run",
    "notify",
    "send_alerts",
]

log = logging.getLogger("brewline")

MAX_ERROR_CHARS = 300
"""A run error is cut to its first line and this many characters in an alert."""

MAX_LISTED_FILES = 50
"""A run alert lists at most this many rejected files (then says how many more)."""

_BAD_STATES = (FileState.REJECTED, FileState.FAILED)


# -- alerts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One problem, ready to send: a one-line ``title`` and a plain-text ``body``."""

    title: str
    body: str
    severity: Literal["error", "warning"] = "error"

    def webhook_payload(self, *, blocks: bool = False) -> dict[str, Any]:
        """Slack-compatible JSON: ``{"text": ...}`` and, if asked, Block Kit ``blocks``.

        >>> Alert("Run failed", "warehouse <down>").webhook_payload()
        {'text': '*Run failed*\\nwarehouse &lt;down&gt;'}
        """
        payload: dict[str, Any] = {"text": f"*{_slack(self.title)}*\n{_slack(self.body)}"}
        if blocks:
            payload["blocks"] = [
                {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": _slack(self.body)[:3000]}},
            ]
        return payload

    def email(self, sender: str, recipients: Sequence[str]) -> EmailMessage:
        """The alert as an e-mail: subject ``[Brewline] <title>``, the body as plain text."""
        message = EmailMessage()
        message["Subject"] = f"[Brewline] {self.title}"
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain="brewline")
        message.set_content(self.body + "\n")
        return message


def _slack(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alerts_for_run(report: RunReport) -> list[Alert]:
    """One alert summarising a run that failed or rejected files; none for a clean run.

    Lists each rejected or failed file with its reason and row count, and the
    run's error (first line) if it stopped.

        >>> alerts_for_run(report)[0].title  # doctest: +SKIP
        'Brewline run 20241111T060000-ab12cd: 3 files rejected'
    """
    if report.exit_code == 0:
        return []
    bad = [f for f in report.files if f.state in _BAD_STATES]
    counts = {state: report.count(state) for state in _BAD_STATES}
    problems = [f"{counted(n, 'file')} {state}" for state, n in counts.items() if n]
    headline = "stopped by an error" if report.error else ", ".join(problems)
    totals = report.totals()
    lines = [
        f"Run {report.run_id} on {report.warehouse}: {report.status} in {report.seconds:.1f}s.",
        f"Files: {totals['files_loaded']:,} loaded, {totals['files_skipped']:,} skipped, "
        f"{totals['files_rejected']:,} rejected, {report.count('failed'):,} failed.",
        f"Rows: {totals['rows_read']:,} read, {totals['rows_loaded']:,} loaded, "
        f"{totals['rows_rejected']:,} rejected.",
    ]
    if report.error:
        lines.append(f"Error: {_first_line(report.error)}")
    if bad:
        lines.append("Rejected or failed files:")
        lines += [
            f"- {f.source_name}: {f.state}, {f.reason or 'no reason'} "
            f"({counted(f.rows_rejected, 'row')} rejected)"
            for f in bad[:MAX_LISTED_FILES]
        ]
        if len(bad) > MAX_LISTED_FILES:
            lines.append(f"- and {counted(len(bad) - MAX_LISTED_FILES, 'more file')}")
    lines.append("Details: brewline status")
    return [Alert(f"Brewline run {report.run_id}: {headline}", "\n".join(lines))]


def alerts_for_checks(results: Iterable[CheckResult], *, warnings: bool = False) -> list[Alert]:
    """One alert per failing check result (and per warning when ``warnings``).

    >>> from brewline.ops.checks import CheckResult
    >>> [a.title for a in alerts_for_checks([CheckResult("volume", "fail", "Leeds", "low")])]
    ['Brewline check failed: volume, Leeds']
    """
    wanted = ("fail", "warn") if warnings else ("fail",)
    return [_check_alert(r) for r in results if r.status in wanted]


def alert_for_error(command: str, error: BaseException | str) -> Alert:
    """One alert for a command stopped before it had anything to report.

    The error's first line only (Brewline errors never hold row content).

        >>> alert_for_error("check", "no warehouse at w.duckdb").title
        'Brewline check could not run'
    """
    return Alert(f"Brewline {command} could not run", _first_line(str(error)))


def _check_alert(result: CheckResult) -> Alert:
    verb = "failed" if result.status == "fail" else "warning"
    about = f"{result.name}, {result.subject}" if result.subject else result.name
    return Alert(
        f"Brewline check {verb}: {about}",
        result.detail,
        severity="error" if result.status == "fail" else "warning",
    )


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


# -- delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFailure:
    """An alert that did not reach a channel (``webhook``, ``email`` or ``sns``), and why."""

    channel: str
    title: str
    error: str

    def __str__(self) -> str:
        return f"{self.channel} alert {self.title!r} not delivered: {self.error}"


def notify(settings: AlertSettings, alert: Alert) -> list[DeliveryFailure]:
    """Send ``alert`` to every configured channel; return (and log) what failed.

    Never raises for a delivery problem: a run or a check must not die of its alerting.
    """
    failures = []
    if settings.alert_webhook_url is not None:
        url = settings.alert_webhook_url.get_secret_value()
        payload = alert.webhook_payload(blocks=settings.alert_webhook_blocks)
        failures += _attempt("webhook", alert, partial(_post, url, payload, settings.alert_timeout))
    if settings.alert_smtp_host is not None:
        host = settings.alert_smtp_host
        failures += _attempt("email", alert, partial(_mail, settings, host, alert))
    if settings.alert_topic_arn is not None:
        failures += _attempt("sns", alert, partial(_publish, settings.alert_topic_arn, alert))
    return failures


def send_alerts(settings: AlertSettings, alerts: Iterable[Alert]) -> list[DeliveryFailure]:
    """:func:`notify` each alert; return every delivery failure."""
    return [failure for alert in alerts for failure in notify(settings, alert)]


def alert_run(settings: AlertSettings, report: RunReport) -> list[DeliveryFailure]:
    """Send the alert a finished run calls for (see :func:`alerts_for_run`); return what failed.

    Nothing is sent for a clean run or when no channel is configured.
    :func:`brewline.pipeline.run` calls it once the run's report is finished.

        >>> alert_run(settings, report)  # doctest: +SKIP
        []
    """
    return send_alerts(settings, alerts_for_run(report))


def alert_error(
    settings: AlertSettings, command: str, error: BaseException | str
) -> list[DeliveryFailure]:
    """Send the alert for ``command`` stopped before it had anything to report; return what failed.

    See :func:`alert_for_error`. Callers send it for errors a run raises before
    any work (bad settings, an unreachable warehouse).

        >>> alert_error(settings, "run", exc)  # doctest: +SKIP
        []
    """
    return send_alerts(settings, [alert_for_error(command, error)])


def _attempt(channel: str, alert: Alert, send: Callable[[], None]) -> list[DeliveryFailure]:
    """Run ``send``; a network or protocol error becomes a logged :class:`DeliveryFailure`."""
    try:
        send()
    except OSError as exc:  # smtplib, ssl, urllib and socket errors are all OSErrors
        failure = DeliveryFailure(channel, alert.title, _describe(exc))
        log.warning("%s", failure)
        return [failure]
    return []


def _describe(exc: BaseException) -> str:
    """A short reason that never repeats the webhook URL (it holds a token)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the server ({exc.reason})"
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error
        text = said.decode(errors="replace") if isinstance(said, bytes) else said
        return f"SMTP {exc.smtp_code} {text}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _post(url: str, payload: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the open response
        raise


def _publish(topic_arn: str, alert: Alert) -> None:
    """Publish to SNS; AWS errors become ``OSError`` like every other channel's."""
    import boto3
    import botocore.exceptions

    subject = "".join(c if c.isprintable() and c.isascii() else "?" for c in alert.title)
    try:
        boto3.client("sns").publish(
            TopicArn=topic_arn,
            Subject=f"[Brewline] {subject}"[:100],
            Message=f"{alert.title}\n\n{alert.body}",  # subscribers without a subject see it
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise OSError(str(exc)) from None


def _mail(settings: AlertSettings, host: str, alert: Alert) -> None:
    message = alert.email(settings.alert_email_from or "", settings.alert_email_to)
    with smtplib.SMTP(host, settings.alert_smtp_port, timeout=settings.alert_timeout) as smtp:
        if settings.alert_smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.alert_smtp_user is not None and settings.alert_smtp_password is not None:
            smtp.login(settings.alert_smtp_user, settings.alert_smtp_password.get_secret_value())
        smtp.send_message(message)
