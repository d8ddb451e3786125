"""The ``serve`` command as the CLI registers it (``app.command()(serve)``), on our own Typer app.

Its help and option checks run in-process (CliRunner); the real server runs in a
subprocess (see ``conftest.dashboard``), which is how the page tests start it too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from tests.serve.conftest import dashboard, free_port
from typer.testing import CliRunner

from brewline.cli.serve import serve


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(serve)
    return app


def test_help_explains_every_option() -> None:
    result = CliRunner().invoke(_app(), ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Serve a read-only web dashboard over the warehouse." in result.output
    for option in ("--host", "--port", "--warehouse", "-w", "--late-after"):
        assert option in result.output
    assert "warehouse busy, retry" in result.output
    assert "/metrics" in result.output
    assert "/healthz" in result.output


def test_bad_options_are_usage_errors() -> None:
    for args in (
        ["--port", "0"],
        ["--port", "70000"],
        ["--late-after", "-1"],
        ["--warehouse", ""],
        ["--warehouse", "mysql://user:pw@host/db"],
    ):
        result = CliRunner().invoke(_app(), args)
        assert result.exit_code == 2, (args, result.output)


def test_a_password_in_the_warehouse_url_is_never_shown(tmp_path: Path) -> None:
    url = f"postgresql://brewline:s3cret-pw@127.0.0.1:{free_port()}/sales"
    with dashboard(url, tmp_path) as app:
        page = app.get("/")
        health = app.get("/healthz")
        shown = [page.text, health.text, app.get("/operations").text, app.get("/metrics").text]
        log = app.log()
    assert page.status == health.status == 503
    assert "<h1>Warehouse unavailable</h1>" in page.text
    assert json.loads(health.body)["warehouse"] == url.replace("s3cret-pw", "***")
    assert "Brewline dashboard for postgresql://brewline:***@127.0.0.1" in log
    assert all("s3cret" not in text for text in [*shown, log])


def test_late_after_option_sets_the_default_threshold(tmp_path: Path, sample_duckdb: Path) -> None:
    with dashboard(str(sample_duckdb), tmp_path, "--late-after", "3") as app:
        page = app.get("/operations").text
        overridden = app.get("/operations?late_after=0").text
    assert 'name="late_after" min="0" max="3650" value="3"' in page
    assert "more than 3\n  days before the due day" in page
    assert 'value="0"' in overridden


def test_importing_the_command_loads_no_engine_or_web_library() -> None:
    # The CLI imports this module to register the command; the dashboard's weight
    # (engines, Arrow, Starlette, Plotly) must wait until `brewline serve` runs.
    code = "import sys, brewline.cli.serve; print('\\n'.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    heavy = {"polars", "duckdb", "pyarrow", "psycopg", "plotly", "starlette"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
    assert "brewline.cli.serve" in loaded


def test_a_port_in_use_is_one_line_and_exit_1_before_any_url_is_shown(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "brewline", "serve", "--port", str(port),
             "-w", str(tmp_path / "w.duckdb")],
            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""  # no "dashboard for ...: http://..." as if it had started
    assert result.stderr.splitlines() == [
        f"brewline: error: port {port} on 127.0.0.1 is in use by another program; "
        "pick another with --port"
    ]
