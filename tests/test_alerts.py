"""Alerts delivered to real local servers: a webhook (http.server) and an SMTP server.

Both servers run in threads on 127.0.0.1 on free ports. The SMTP server is a
small real implementation of the protocol's core (EHLO, AUTH PLAIN, MAIL, RCPT,
DATA, QUIT) written with socketserver; smtplib talks to it as to any server.
Every body is asserted whole, and scanned for the names and cards of the input.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email
import email.policy
import io
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.test_checks import build_landing, command_app
from typer.testing import CliRunner

from brewline.config import Settings
from brewline.errors import ConfigError
from brewline.ops.alerts import (
    Alert,
    DeliveryFailure,
    alert_for_error,
    alerts_for_checks,
    alerts_for_run,
    notify,
    send_alerts,
)
from brewline.ops.checks import CheckResult
from brewline.ops.settings import AlertSettings
from brewline.pipeline import run
from brewline.report import FileReport, RunReport
from brewline.synth import SynthSpec, generate_landing

# -- a webhook receiver --------------------------------------------------------------------------


@dataclass
class Webhook:
    """A local HTTP server recording every POST; ``status`` is what it answers."""

    url: str
    bodies: list[Any] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    status: int = 200


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Run a socketserver on a thread for the duration of the block."""
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hook.bodies.append(json.loads(self.rfile.read(length)))
            hook.content_types.append(self.headers["Content-Type"])
            self.send_response(hook.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts what arrived."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret-token"
    with serving(server):
        yield hook


# -- an SMTP receiver ---------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    login: tuple[str, str] | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _SMTPHandler(socketserver.StreamRequestHandler):
    """One SMTP session: enough of RFC 5321 (and AUTH PLAIN, RFC 4616) for smtplib."""

    server: SMTPServer

    def reply(self, *lines: str) -> None:
        *more, last = lines
        text = "".join(f"{line[:3]}-{line[4:]}\r\n" for line in more) + f"{last}\r\n"
        self.wfile.write(text.encode())

    def handle(self) -> None:
        self.reply("220 brewline-test ESMTP")
        sender, login = "", None
        recipients: list[str] = []
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb, _, argument = command.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250 brewline-test", "250 AUTH PLAIN", "250 HELP")
            elif verb == "AUTH":
                login = self.authenticate(argument)
            elif verb == "MAIL":
                sender, recipients = argument.split(":", 1)[1].strip("<> "), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(argument.split(":", 1)[1].strip("<> "))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                self.server.mails.append(Mail(sender, recipients, self.read_data(), login))
                self.reply("250 OK: queued")
            elif verb in ("RSET", "NOOP", "HELO"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")

    def authenticate(self, argument: str) -> tuple[str, str]:
        mechanism, _, initial = argument.partition(" ")
        assert mechanism.upper() == "PLAIN"
        if not initial:
            self.reply("334 ")
            initial = self.rfile.readline().decode().strip()
        _, user, password = base64.b64decode(initial).decode().split("\0")
        self.reply("235 Authentication successful")
        return user, password

    def read_data(self) -> bytes:
        """The message up to the lone dot, un-dot-stuffed, with local (LF) line ends."""
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            line = line[1:] if line.startswith(b"..") else line
            lines.append(line.removesuffix(b"\r\n") + b"\n")
        return b"".join(lines)


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SMTPHandler)
        self.mails: list[Mail] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    with serving(server):
        yield server


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- inputs with PII to hunt for -----------------------------------------------------------------

SECRET_NAME, SECRET_CARD = "Secret Person", "4111111111111111"
BROKEN = f"not,a till export\n{SECRET_NAME},{SECRET_CARD}\n"
LATIN1 = "18/12/2024 10:00,Café Royal,José Diaz,Large Latte - 2.45,2.45,CARD,4929000000000006\n"


def personal_data(folder: Path) -> set[str]:
    """Every customer name and card number in the landing files (read with csv, not Brewline)."""
    found = {SECRET_NAME, SECRET_CARD, "José Diaz", "4929000000000006"}
    for path in folder.glob("*.csv"):
        text = path.read_bytes().decode("utf-8", errors="replace")
        for row in csv.reader(io.StringIO(text)):
            if len(row) == 7:
                found |= {row[2], row[6]} - {""}
    return found


def assert_no_pii(secrets: set[str], *texts: str) -> None:
    leaks = {secret for secret in secrets for text in texts if secret in text}
    assert not leaks, f"personal data in an alert: {sorted(leaks)[:3]}"


@pytest.fixture
def rejecting_run(tmp_path: Path) -> tuple[RunReport, set[str]]:
    """A real run: 2 files loaded (one with a bad row), 3 files rejected for 3 reasons."""
    landing = tmp_path / "landing"
    first, _ = generate_landing(landing, SynthSpec(branches=1, days=2, sales_per_branch_day=5))
    rows = list(csv.reader(io.StringIO(first.read_text())))
    rows[2][4] = "99.99"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    first.write_text(out.getvalue())
    (landing / "broken_a.csv").write_text(BROKEN)
    (landing / "empty_b.csv").write_text("")
    (landing / "latin_c.csv").write_bytes(LATIN1.encode("latin-1"))
    report = run(Settings(landing=landing, warehouse=str(tmp_path / "w.duckdb")))
    assert [f.state for f in report.files].count("rejected") == 3
    return report, personal_data(landing)


def run_alert_body(report: RunReport) -> str:
    return (
        f"Run {report.run_id} on {report.warehouse}: completed_with_rejects "
        f"in {report.seconds:.1f}s.\n"
        "Files: 2 loaded, 0 skipped, 3 rejected, 0 failed.\n"
        "Rows: 13 read, 9 loaded, 4 rejected.\n"
        "Rejected or failed files:\n"
        "- broken_a.csv: rejected, unrecognised_layout (2 rows rejected)\n"
        "- empty_b.csv: rejected, empty_file (0 rows rejected)\n"
        "- latin_c.csv: rejected, not_utf8 (1 row rejected)\n"
        "Details: brewline status"
    )


def settings(**values: Any) -> AlertSettings:
    return AlertSettings.from_settings(None, **values)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No alert settings from the machine; a TOML path tests may write."""
    for name in AlertSettings.model_fields:
        monkeypatch.delenv(f"BREWLINE_{name.upper()}", raising=False)
    toml = tmp_path / "brewline.toml"
    toml.write_text("")
    monkeypatch.setenv("BREWLINE_CONFIG", str(toml))
    return toml


# -- run alerts ----------------------------------------------------------------------------------


def test_a_run_with_several_rejects_sends_exactly_one_message(
    rejecting_run: tuple[RunReport, set[str]], webhook: Webhook
) -> None:
    report, secrets = rejecting_run
    failures = send_alerts(settings(alert_webhook_url=webhook.url), alerts_for_run(report))
    assert failures == []
    assert webhook.bodies == [
        {"text": f"*Brewline run {report.run_id}: 3 files rejected*\n{run_alert_body(report)}"}
    ]
    assert webhook.content_types == ["application/json; charset=utf-8"]
    assert_no_pii(secrets, json.dumps(webhook.bodies, ensure_ascii=False))


def test_a_clean_run_sends_nothing(tmp_path: Path, webhook: Webhook) -> None:
    generate_landing(tmp_path / "l", SynthSpec(branches=1, days=1, sales_per_branch_day=3))
    report = run(Settings(landing=tmp_path / "l", warehouse=str(tmp_path / "w.duckdb")))
    assert alerts_for_run(report) == []
    assert send_alerts(settings(alert_webhook_url=webhook.url), []) == []
    assert webhook.bodies == []


def test_a_run_stopped_by_an_error_says_why_in_one_line() -> None:
    started = dt.datetime(2024, 11, 11, 6, 0, tzinfo=dt.UTC)
    report = RunReport(
        run_id="20241111T060000-abcdef",
        warehouse="postgresql://loader:***@db/brewline",
        started_at=started,
        customer_tokens=True,
        files=[FileReport("leeds_10-11-2024_08-00-00.csv", "loaded", 40, 40)],
        finished_at=started + dt.timedelta(seconds=2.5),
        error="PostgreSQL at postgresql://loader:***@db/brewline: server closed the connection\n"
        "DETAIL: more lines are not sent",
    )
    assert alerts_for_run(report) == [
        Alert(
            "Brewline run 20241111T060000-abcdef: stopped by an error",
            "Run 20241111T060000-abcdef on postgresql://loader:***@db/brewline: failed in 2.5s.\n"
            "Files: 1 loaded, 0 skipped, 0 rejected, 0 failed.\n"
            "Rows: 40 read, 40 loaded, 0 rejected.\n"
            "Error: PostgreSQL at postgresql://loader:***@db/brewline: "
            "server closed the connection\n"
            "Details: brewline status",
        )
    ]


def test_blocks_are_sent_when_asked(webhook: Webhook) -> None:
    alert = Alert("Brewline check failed: volume, Leeds & York", "2024-11-10: <10> sales")
    assert notify(settings(alert_webhook_url=webhook.url, alert_webhook_blocks=True), alert) == []
    assert webhook.bodies == [
        {
            "text": "*Brewline check failed: volume, Leeds &amp; York*\n"
            "2024-11-10: &lt;10&gt; sales",
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": "Brewline check failed: volume, Leeds & York",
                    },
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "2024-11-10: &lt;10&gt; sales"},
                },
            ],
        }
    ]


# -- check alerts --------------------------------------------------------------------------------

RESULTS = [
    CheckResult("freshness", "ok", "Chesterfield", "latest trading day 2024-11-10, due 2024-11-10"),
    CheckResult("freshness", "fail", "Leeds", "2 days missing (2024-11-09 to 2024-11-10)"),
    CheckResult("volume", "fail", "Chesterfield", "2024-11-10: 10 sales, 25% of the mean"),
    CheckResult("new_products", "warn", "Large Pumpkin latte", "first seen on 2024-11-10"),
    CheckResult("reject_rate", "ok", "run-1", "0 of 5 rows rejected (0.0%; limit 2.0%)"),
]


def test_one_alert_per_failing_check(webhook: Webhook) -> None:
    assert send_alerts(settings(alert_webhook_url=webhook.url), alerts_for_checks(RESULTS)) == []
    assert webhook.bodies == [
        {"text": "*Brewline check failed: freshness, Leeds*\n" + RESULTS[1].detail},
        {"text": "*Brewline check failed: volume, Chesterfield*\n" + RESULTS[2].detail},
    ]


def test_warnings_only_when_asked() -> None:
    titles = [a.title for a in alerts_for_checks(RESULTS, warnings=True)]
    assert titles == [
        "Brewline check failed: freshness, Leeds",
        "Brewline check failed: volume, Chesterfield",
        "Brewline check warning: new_products, Large Pumpkin latte",
    ]
    assert alerts_for_checks(RESULTS, warnings=True)[-1].severity == "warning"


def test_the_check_command_alerts_once_per_failing_check(
    tmp_path: Path, webhook: Webhook, smtp: SMTPServer
) -> None:
    landing = tmp_path / "landing"
    build_landing(landing)
    warehouse = str(tmp_path / "w.duckdb")
    run(Settings(landing=landing, warehouse=warehouse, quarantine=tmp_path / "q"))
    env = {
        "BREWLINE_CONFIG": os.devnull,
        "BREWLINE_ALERT_WEBHOOK_URL": webhook.url,
        "BREWLINE_ALERT_SMTP_HOST": "127.0.0.1",
        "BREWLINE_ALERT_SMTP_PORT": str(smtp.port),
        "BREWLINE_ALERT_SMTP_STARTTLS": "false",
        "BREWLINE_ALERT_EMAIL_FROM": "brewline@example.com",
        "BREWLINE_ALERT_EMAIL_TO": "data@example.com, owner@example.com",
    }
    args = ["check", "-w", warehouse, "--as-of", "2024-11-11", "--json"]
    result = CliRunner().invoke(command_app(), args, env=env)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["alerts"] == 2
    assert [body["text"].split("\n")[0] for body in webhook.bodies] == [
        "*Brewline check failed: freshness, Leeds*",
        "*Brewline check failed: volume, Chesterfield*",
    ]
    assert [m.message["Subject"] for m in smtp.mails] == [
        "[Brewline] Brewline check failed: freshness, Leeds",
        "[Brewline] Brewline check failed: volume, Chesterfield",
    ]
    assert_no_pii(
        personal_data(landing),
        json.dumps(webhook.bodies, ensure_ascii=False),
        *(m.data.decode() for m in smtp.mails),
    )
    quiet = CliRunner().invoke(command_app(), [*args, "--no-alert"], env=env)
    assert quiet.exit_code == 1
    assert len(webhook.bodies) == 2


def test_the_check_command_alerts_when_it_cannot_run(tmp_path: Path, webhook: Webhook) -> None:
    env = {
        "BREWLINE_CONFIG": os.devnull,
        "BREWLINE_ALERT_WEBHOOK_URL": webhook.url,
    }
    missing = str(tmp_path / "gone.duckdb")
    result = CliRunner().invoke(command_app(), ["check", "-w", missing], env=env)
    assert result.exit_code == 1
    assert webhook.bodies == [
        {
            "text": "*Brewline check could not run*\n"
            f"no warehouse at {missing}; load one with `brewline run`"
        }
    ]
    assert alert_for_error("run", "x\ny") == Alert("Brewline run could not run", "x")


# -- e-mail --------------------------------------------------------------------------------------


def test_email_alert_received_by_a_local_smtp_server(
    rejecting_run: tuple[RunReport, set[str]], smtp: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, secrets = rejecting_run
    monkeypatch.setenv("BREWLINE_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("BREWLINE_ALERT_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("BREWLINE_ALERT_SMTP_STARTTLS", "false")
    monkeypatch.setenv("BREWLINE_ALERT_SMTP_USER", "alerts")
    monkeypatch.setenv("BREWLINE_ALERT_SMTP_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("BREWLINE_ALERT_EMAIL_FROM", "brewline@example.com")
    monkeypatch.setenv("BREWLINE_ALERT_EMAIL_TO", "data@example.com,owner@example.com")
    alerting = AlertSettings.from_settings()
    assert alerting.channels == ["email"]
    assert send_alerts(alerting, alerts_for_run(report)) == []
    (mail,) = smtp.mails
    assert mail.login == ("alerts", "s3cret-pw")
    assert mail.sender == "brewline@example.com"
    assert mail.recipients == ["data@example.com", "owner@example.com"]
    message = mail.message
    assert message["Subject"] == f"[Brewline] Brewline run {report.run_id}: 3 files rejected"
    assert message["From"] == "brewline@example.com"
    assert message["To"] == "data@example.com, owner@example.com"
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == run_alert_body(report) + "\n"
    assert_no_pii(secrets, mail.data.decode())


def test_webhook_and_email_together(webhook: Webhook, smtp: SMTPServer) -> None:
    both = settings(
        alert_webhook_url=webhook.url,
        alert_smtp_host="127.0.0.1",
        alert_smtp_port=smtp.port,
        alert_smtp_starttls=False,
        alert_email_from="brewline@example.com",
        alert_email_to=["data@example.com"],
    )
    assert both.channels == ["webhook", "email"]
    assert notify(both, Alert("Brewline check failed: freshness, Leeds", "late")) == []
    assert len(webhook.bodies) == 1
    (mail,) = smtp.mails
    assert mail.login is None
    assert mail.message.get_content() == "late\n"


# -- delivery failures -------------------------------------------------------------------------


def test_delivery_failures_are_reported_and_logged_not_raised(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.status = 500
    down = settings(
        alert_webhook_url=webhook.url,
        alert_smtp_host="127.0.0.1",
        alert_smtp_port=closed_port(),
        alert_smtp_starttls=False,
        alert_email_from="brewline@example.com",
        alert_email_to=["data@example.com"],
        alert_timeout=5,
    )
    alert = Alert("Brewline check failed: freshness, Leeds", "late")
    with caplog.at_level(logging.WARNING, logger="brewline"):
        failures = notify(down, alert)
    assert [(f.channel, f.title) for f in failures] == [
        ("webhook", alert.title),
        ("email", alert.title),
    ]
    assert failures[0].error == "HTTP 500 Internal Server Error"
    assert failures[1].error.startswith("ConnectionRefusedError")
    assert [r.getMessage() for r in caplog.records] == [str(f) for f in failures]
    assert "secret-token" not in caplog.text
    assert len(webhook.bodies) == 1  # the server did receive it, and said no


def test_an_unreachable_webhook_never_leaks_its_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}/services/secret-token"
    (failure,) = notify(settings(alert_webhook_url=url), Alert("t", "b"))
    assert failure == DeliveryFailure(
        "webhook", "t", "cannot reach the server ([Errno 111] Connection refused)"
    )
    assert "secret-token" not in str(settings(alert_webhook_url=url))


def test_the_check_command_survives_a_dead_webhook(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    build_landing(landing)
    warehouse = str(tmp_path / "w.duckdb")
    run(Settings(landing=landing, warehouse=warehouse, quarantine=tmp_path / "q"))
    env = {
        "BREWLINE_CONFIG": os.devnull,
        "BREWLINE_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{closed_port()}/hook",
    }
    result = CliRunner().invoke(
        command_app(), ["check", "-w", warehouse, "--as-of", "2024-11-11", "--json"], env=env
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["delivery_failures"] == [
        "webhook alert 'Brewline check failed: freshness, Leeds' not delivered: "
        "cannot reach the server ([Errno 111] Connection refused)",
        "webhook alert 'Brewline check failed: volume, Chesterfield' not delivered: "
        "cannot reach the server ([Errno 111] Connection refused)",
    ]
    assert "brewline: warning: webhook alert" in result.stderr


# -- settings ----------------------------------------------------------------------------------


def test_nothing_configured_means_no_channel() -> None:
    assert settings().enabled is False
    assert notify(settings(), Alert("t", "b")) == []


def test_the_smtp_password_is_read_from_the_environment_only(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env.write_text('alert_smtp_host = "mail"\nalert_smtp_password = "in-a-file"\n')
    with pytest.raises(ConfigError, match="BREWLINE_ALERT_SMTP_PASSWORD"):
        AlertSettings.from_settings()
    clean_env.write_text(
        'alert_smtp_host = "mail"\nalert_smtp_user = "alerts"\n'
        'alert_email_from = "b@example.com"\nalert_email_to = ["d@example.com"]\n'
    )
    with pytest.raises(ConfigError, match="BREWLINE_ALERT_SMTP_PASSWORD"):
        AlertSettings.from_settings()
    monkeypatch.setenv("BREWLINE_ALERT_SMTP_PASSWORD", "from-env")
    loaded = AlertSettings.from_settings()
    assert loaded.alert_email_to == ["d@example.com"]
    assert loaded.alert_smtp_password is not None
    assert "from-env" not in repr(loaded)


def test_incomplete_or_invalid_alert_settings_fail_loudly() -> None:
    with pytest.raises(ConfigError, match="alert_email_from and alert_email_to"):
        settings(alert_smtp_host="mail")
    with pytest.raises(ConfigError, match="http:// or https://"):
        settings(alert_webhook_url="ftp://example.com/hook")


def test_a_run_alert_lists_at_most_fifty_files() -> None:
    started = dt.datetime(2024, 11, 11, 6, 0, tzinfo=dt.UTC)
    files = [
        FileReport(f"f{i:02d}.csv", "rejected", 1, 0, 1, reason="empty_file") for i in range(52)
    ]
    report = RunReport("r1", "w.duckdb", started, False, files, finished_at=started)
    (alert,) = alerts_for_run(report)
    assert alert.title == "Brewline run r1: 52 files rejected"
    listed = [line for line in alert.body.splitlines() if line.startswith("- ")]
    assert listed[0] == "- f00.csv: rejected, empty_file (1 row rejected)"
    assert listed[49] == "- f49.csv: rejected, empty_file (1 row rejected)"
    assert listed[50:] == ["- and 2 more files"]


def test_brewline_run_sends_one_alert_for_a_run_with_rejected_files(
    tmp_path: Path, webhook: Webhook
) -> None:
    from brewline.cli import app

    landing = tmp_path / "landing"
    generate_landing(landing, SynthSpec(branches=1, days=1, sales_per_branch_day=5))
    (landing / "broken_a.csv").write_text(BROKEN)
    (landing / "empty_b.csv").write_text("")
    env = {
        "BREWLINE_CONFIG": os.devnull,
        "BREWLINE_ALERT_WEBHOOK_URL": webhook.url,
    }
    args = ["run", str(landing), "-w", str(tmp_path / "w.duckdb"), "--json"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 1, result.output
    assert len(webhook.bodies) == 1
    text = webhook.bodies[0]["text"]
    assert "broken_a.csv" in text
    assert "empty_b.csv" in text
    assert_no_pii(personal_data(landing), text)
    again = CliRunner().invoke(app, [*args, "--no-alert"], env=env)
    assert again.exit_code == 0  # unchanged rejected files are not retried nor re-alerted
    assert len(webhook.bodies) == 1


def test_the_library_run_sends_the_run_alert_itself(tmp_path: Path, webhook: Webhook) -> None:
    landing = tmp_path / "landing"
    generate_landing(landing, SynthSpec(branches=1, days=1, sales_per_branch_day=5))
    (landing / "broken_a.csv").write_text(BROKEN)
    config = Settings(
        landing=landing, warehouse=str(tmp_path / "w.duckdb"), alert_webhook_url=webhook.url
    )
    failures: list[DeliveryFailure] = []
    report = run(config, on_alert_failure=failures.append)
    assert report.exit_code == 1
    assert webhook.bodies == [{"text": alerts_for_run(report)[0].webhook_payload()["text"]}]
    assert failures == []
    (landing / "broken_b.csv").write_text(BROKEN)
    assert run(config, alert=False).exit_code == 1
    assert len(webhook.bodies) == 1


def test_an_undelivered_run_alert_never_fails_the_run(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate_landing(landing, SynthSpec(branches=1, days=1, sales_per_branch_day=5))
    (landing / "broken_a.csv").write_text(BROKEN)
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    failures: list[DeliveryFailure] = []
    report = run(
        Settings(landing=landing, warehouse=str(tmp_path / "w.duckdb"), alert_webhook_url=dead),
        on_alert_failure=failures.append,
    )
    assert (report.status, report.count("loaded")) == ("completed_with_rejects", 1)
    assert failures == [
        DeliveryFailure(
            "webhook",
            f"Brewline run {report.run_id}: 1 file rejected",
            "cannot reach the server ([Errno 111] Connection refused)",
        )
    ]


def test_brewline_run_reports_an_undelivered_alert_on_stderr(tmp_path: Path) -> None:
    from brewline.cli import app

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "broken_a.csv").write_text(BROKEN)
    env = {
        "BREWLINE_CONFIG": os.devnull,
        "BREWLINE_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{closed_port()}/hook",
    }
    args = ["run", str(landing), "-w", str(tmp_path / "w.duckdb"), "--json"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert result.stderr.splitlines()[-1] == (
        f"brewline: warning: webhook alert 'Brewline run {report['run_id']}: 1 file rejected' "
        "not delivered: cannot reach the server ([Errno 111] Connection refused)"
    )
