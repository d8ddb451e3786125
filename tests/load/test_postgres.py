"""PostgreSQL specifics on a real server: schema versions, roles, runners, faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from tests.conftest import PostgresServer, copy_exports
from tests.test_faults import RUNNER

from brewline.config import Settings
from brewline.errors import SchemaVersionError, TransientError, WarehouseError
from brewline.load import open_warehouse
from brewline.load.admin import grant_readonly, init_warehouse, readonly_sql
from brewline.load.migrations import SCHEMA_VERSION, migrations
from brewline.pipeline import run
from brewline.synth import SynthSpec, generate_landing

FILES, SALES = 24, 1500


@pytest.fixture(scope="module")
def pg_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pg-landing")
    generate_landing(folder, SynthSpec(branches=6, days=4, sales_per_branch_day=SALES, seed=11))
    return folder


def start(landing: Path, url: str, tmp_path: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", RUNNER, str(landing), url, str(tmp_path / "q")]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def counts(url: str) -> tuple[int, int, list[tuple[str, int, int]]]:
    with psycopg.connect(url) as con:
        loaded = con.execute("SELECT count(*) FROM etl_file WHERE state = 'loaded'").fetchone()
        sales = con.execute("SELECT count(*) FROM fact_sale").fetchone()
        wrong = con.execute(
            "SELECT f.source_name, f.rows_loaded, count(s.sale_key)::int FROM etl_file f "
            "LEFT JOIN fact_sale s USING (file_id) WHERE f.state = 'loaded' "
            "GROUP BY 1, 2 HAVING count(s.sale_key) <> f.rows_loaded"
        ).fetchall()
    assert loaded is not None
    assert sales is not None
    return loaded[0], sales[0], wrong


def test_an_older_schema_is_refused_until_init_upgrades_it(postgres_url: str) -> None:
    with open_warehouse(postgres_url) as wh:
        for version, statements in migrations("postgres", 0)[:1]:
            wh.run_admin([*statements, f"INSERT INTO schema_version VALUES ({version}, now())"])
        with pytest.raises(SchemaVersionError, match="run `brewline init`"):
            wh.ensure_schema()
        assert init_warehouse(wh) == SCHEMA_VERSION
        assert wh.schema_version() == SCHEMA_VERSION
        indexes = wh.query("SELECT indexname FROM pg_indexes WHERE tablename = 'fact_sale'")
    assert "fact_sale_date_brin" in indexes["indexname"].to_list()


def test_readonly_role_can_read_and_not_write(
    postgres_url: str, landing: Path, shared_exports: Path, tmp_path: Path
) -> None:
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    run(Settings(landing=landing, warehouse=postgres_url, quarantine=tmp_path / "q"))
    with open_warehouse(postgres_url) as wh:
        grant_readonly(wh, "analyst")
        grant_readonly(wh, "analyst")  # idempotent
    as_analyst = postgres_url.replace("postgres@", "analyst@", 1)
    with psycopg.connect(as_analyst) as con:
        assert con.execute("SELECT count(*) FROM fact_sale").fetchone() == (50,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            con.execute("DELETE FROM fact_sale")


def test_concurrent_runners_load_every_file_exactly_once(
    postgres_url: str, pg_landing: Path, tmp_path: Path
) -> None:
    runners = [start(pg_landing, postgres_url, tmp_path) for _ in range(3)]
    reports = []
    for runner in runners:
        out, err = runner.communicate(timeout=180)
        assert runner.returncode == 0, err
        reports.append(json.loads(out.split("done ", 1)[1]))
    assert sum(r["rows_loaded"] for r in reports) == FILES * SALES
    assert sum(r["loaded"] for r in reports) == FILES
    assert counts(postgres_url) == (FILES, FILES * SALES, [])


@pytest.mark.parametrize("files_done", [0, 5])
def test_sigkill_leaves_no_partial_file_and_the_next_run_completes(
    postgres_url: str, pg_landing: Path, tmp_path: Path, files_done: int
) -> None:
    from tests.test_faults import kill_after

    kill_after(start(pg_landing, postgres_url, tmp_path), files_done, 0.01)
    loaded, _, wrong = counts(postgres_url)
    assert wrong == []
    assert loaded < FILES
    survivor = start(pg_landing, postgres_url, tmp_path)
    _, err = survivor.communicate(timeout=180)
    assert survivor.returncode == 0, err
    assert counts(postgres_url) == (FILES, FILES * SALES, [])
    with psycopg.connect(postgres_url) as con:
        statuses = dict(con.execute("SELECT status, count(*) FROM etl_run GROUP BY 1").fetchall())
    assert statuses == {"abandoned": 1, "succeeded": 1}


def test_server_restart_mid_run_is_retried_and_the_run_completes(
    postgres_server: PostgresServer | None, postgres_url: str, pg_landing: Path, tmp_path: Path
) -> None:
    if postgres_server is None:
        pytest.skip("needs the suite's own server to restart it")
    runner = start(pg_landing, postgres_url, tmp_path)
    assert runner.stdout is not None
    for line in runner.stdout:
        if line.startswith("file"):
            break
    postgres_server.stop("fast")
    time.sleep(1.0)
    postgres_server.start()
    _out, err = runner.communicate(timeout=180)
    assert runner.returncode == 0, err
    assert "transient warehouse error, retrying" in err  # the restart was seen and survived
    assert counts(postgres_url) == (FILES, FILES * SALES, [])


def test_a_server_that_stays_down_is_a_clear_transient_error(tmp_path: Path) -> None:
    url = "postgresql://brewline:secret-password@127.0.0.1:1/warehouse"
    settings = Settings(landing=tmp_path, warehouse=url, quarantine=tmp_path / "q")
    with pytest.raises(TransientError) as caught:
        run(settings)
    message = str(caught.value)
    assert "cannot reach PostgreSQL" in message
    assert "secret-password" not in message
    assert "***" in message


def test_grant_readonly_command(postgres_url: str) -> None:
    from typer.testing import CliRunner

    from brewline.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["init", "-w", postgres_url]).exit_code == 0
    done = runner.invoke(app, ["grant-readonly", "dashboards", "-w", postgres_url])
    assert done.exit_code == 0, done.output
    with psycopg.connect(postgres_url.replace("postgres@", "dashboards@", 1)) as con:
        assert con.execute("SELECT count(*) FROM etl_file").fetchone() == (0,)
    shown = runner.invoke(app, ["grant-readonly", "dashboards", "--show-sql", "-w", postgres_url])
    assert "GRANT SELECT ON ALL TABLES IN SCHEMA public TO dashboards" in shown.output
    bad = runner.invoke(app, ["grant-readonly", "Robert'); DROP", "-w", postgres_url])
    assert bad.exit_code == 1
    assert "role name" in bad.output


def test_readonly_for_the_usual_owner_loads_analyst_reads_setup(
    postgres_url: str, landing: Path, shared_exports: Path, tmp_path: Path
) -> None:
    """The owner role (no CREATEROLE) grants; tables it creates later stay readable."""
    tag = uuid.uuid4().hex[:8]
    loader, analyst = f"loader_{tag}", f"analyst_{tag}"
    with psycopg.connect(postgres_url, autocommit=True) as admin_con:
        admin_con.execute(f"CREATE ROLE {loader} LOGIN")
        admin_con.execute(f"CREATE ROLE {analyst} LOGIN")
        admin_con.execute(f"GRANT CREATE ON SCHEMA public TO {loader}")
    as_loader = postgres_url.replace("postgres@", f"{loader}@", 1)
    copy_exports(shared_exports, landing, ["leeds_09-05-2023_09-00-00_done.csv"])
    run(Settings(landing=landing, warehouse=as_loader, quarantine=tmp_path / "q"))
    with open_warehouse(as_loader) as wh:
        done = grant_readonly(wh, analyst)
        assert not any(s.startswith(("CREATE ROLE", "ALTER ROLE")) for s in done)
        for unsafe in ("postgres", loader):
            with pytest.raises(WarehouseError):
                grant_readonly(wh, unsafe)
        with pytest.raises(WarehouseError, match="may not create roles"):
            grant_readonly(wh, f"nobody_{tag}")
        wh.run_admin(["CREATE TABLE later_table AS SELECT 1 AS x"])  # e.g. a new Brewline table
    with psycopg.connect(postgres_url.replace("postgres@", f"{analyst}@", 1)) as con:
        assert con.execute("SELECT count(*) FROM fact_sale").fetchone() == (50,)
        assert con.execute("SELECT x FROM later_table").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("DELETE FROM fact_sale")
    with psycopg.connect(postgres_url) as con:  # the superuser was never made read-only
        assert con.execute("SHOW default_transaction_read_only").fetchone() == ("off",)


def test_readonly_sql_is_refused_for_duckdb(tmp_path: Path) -> None:
    with open_warehouse(str(tmp_path / "w.duckdb")) as wh, pytest.raises(WarehouseError):
        readonly_sql(wh, "analyst")


def test_an_outage_longer_than_the_retry_budget_ends_the_run_saying_how_long_it_tried(
    postgres_server: PostgresServer | None, postgres_url: str, pg_landing: Path, tmp_path: Path
) -> None:
    if postgres_server is None:
        pytest.skip("needs the suite's own server to stop it")
    args = [sys.executable, "-c", RUNNER, str(pg_landing), postgres_url, str(tmp_path / "q")]
    env = {**os.environ, "BREWLINE_RETRY_SECONDS": "3"}
    runner = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert runner.stdout is not None
    for line in runner.stdout:
        if line.startswith("file"):
            break
    postgres_server.stop("fast")
    try:
        started = time.monotonic()
        _out, err = runner.communicate(timeout=60)
        gave_up_after = time.monotonic() - started
    finally:
        postgres_server.start()
    assert runner.returncode == 0  # the library reports the error; the CLI exits 1 on it
    assert "gave up after retrying for" in err
    assert "retry_seconds setting is 3s" in err
    assert gave_up_after < 20
    assert "error ignored terminating" not in err
    loaded, _, wrong = counts(postgres_url)
    assert wrong == []  # what was committed is whole; the rest stays pending
    assert loaded < FILES


def test_grant_readonly_show_sql_on_duckdb_is_an_error_not_postgres_sql(tmp_path: Path) -> None:
    """It printed PostgreSQL SQL with the file path as a database name, and exited 0."""
    from typer.testing import CliRunner

    from brewline.cli import app

    warehouse = str(tmp_path / "w.duckdb")
    assert CliRunner().invoke(app, ["init", "-w", warehouse]).exit_code == 0
    shown = CliRunner().invoke(app, ["grant-readonly", "analyst", "--show-sql", "-w", warehouse])
    assert shown.exit_code == 1
    assert "GRANT" not in shown.output
    assert "PostgreSQL feature" in shown.output


def test_grant_readonly_says_exactly_what_the_role_can_do_and_how_to_close_the_rest(
    postgres_server: PostgresServer | None, postgres_url: str
) -> None:
    """It said "(and nothing else)" while the role could create temporary tables and
    connect to every other database (PostgreSQL's default grants to PUBLIC)."""
    from typer.testing import CliRunner

    from brewline.cli import app

    role = f"reader_{uuid.uuid4().hex[:8]}"
    database = postgres_url.rsplit("/", 1)[1]
    other = postgres_server.database() if postgres_server else postgres_url  # one more database
    other_name = other.rsplit("/", 1)[1]
    runner = CliRunner()
    assert runner.invoke(app, ["init", "-w", postgres_url]).exit_code == 0
    done = runner.invoke(app, ["grant-readonly", role, "-w", postgres_url])
    assert done.exit_code == 0, done.output
    assert "nothing else" not in done.output
    lines = done.output.splitlines()
    assert lines[0].startswith(f"Role {role} can now log in to ")
    assert "SELECT every table in schema public" in lines[0]
    assert f"create temporary tables in {database}" in lines[1]
    assert "connect to the server's other databases (" in lines[1]
    assert other_name in lines[1]
    lockdown = [line.strip().rstrip(";") for line in lines if line.startswith("  ")]
    assert f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC' in lockdown
    assert f'REVOKE CONNECT ON DATABASE "{other_name}" FROM PUBLIC' in lockdown

    as_role = postgres_url.replace("postgres@", f"{role}@", 1)
    with psycopg.connect(as_role) as con:  # what the message says, the server does
        assert con.execute("SELECT count(*) FROM etl_file").fetchone() == (0,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            con.execute("INSERT INTO schema_version VALUES (99, now())")
        con.rollback()
        con.execute("SET TRANSACTION READ WRITE")  # read-only is only the role's default
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("INSERT INTO schema_version VALUES (99, now())")
        con.rollback()
        con.execute("SET TRANSACTION READ WRITE")
        con.execute("CREATE TEMP TABLE scratch (x int)")  # PUBLIC's TEMPORARY
    psycopg.connect(other.replace("postgres@", f"{role}@", 1)).close()  # PUBLIC's CONNECT

    mine = [s for s in lockdown if f'"{database}"' in s or f'"{other_name}"' in s]
    with psycopg.connect(postgres_url, autocommit=True) as admin_con:
        for statement in mine:  # only this test's databases: others' belong to other tests
            admin_con.execute(statement)
    with psycopg.connect(as_role) as con:
        con.execute("SET TRANSACTION READ WRITE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("CREATE TEMP TABLE scratch (x int)")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(other.replace("postgres@", f"{role}@", 1))
    again = runner.invoke(app, ["grant-readonly", role, "-w", postgres_url])
    assert f"create temporary tables in {database}" not in again.output


def test_a_server_stopped_for_good_ends_the_run_in_few_consistent_lines(
    postgres_server: PostgresServer | None, postgres_url: str, pg_landing: Path, tmp_path: Path
) -> None:
    """One retry budget (the setting, for the ledger's last update too), one warning, one
    final line, and a summary saying the run stopped early with files still pending."""
    if postgres_server is None:
        pytest.skip("needs the suite's own server to stop it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREWLINE_")}
    env |= {"BREWLINE_CONFIG": os.devnull, "BREWLINE_RETRY_SECONDS": "2", "COLUMNS": "200"}
    env |= {"BREWLINE_BATCH_FILES": "2"}
    args = ["run", pg_landing, "-w", postgres_url, "--quarantine", tmp_path / "q", "--no-alert"]
    runner = subprocess.Popen(
        [sys.executable, "-m", "brewline", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    while counts(postgres_url)[0] == 0 if _has_ledger(postgres_url) else True:
        time.sleep(0.02)
    postgres_server.stop("fast")
    try:
        out, err = runner.communicate(timeout=120)
    finally:
        postgres_server.start()
    loaded = counts(postgres_url)[0]
    assert 0 < loaded < FILES
    assert runner.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) <= 3, err
    assert sum("retrying for up to 2s" in line for line in lines) == 1, err
    assert sum("gave up after retrying" in line for line in lines) == 1, err
    assert "retry_seconds setting is 2s" in err
    assert "15s" not in err
    summary = " ".join(out.split())
    assert "Stopped early:" in summary
    assert f"Stopped early: {loaded} files committed, {FILES - loaded} pending" in summary


def _has_ledger(url: str) -> bool:
    with psycopg.connect(url) as con:
        return con.execute("SELECT to_regclass('etl_file') IS NOT NULL").fetchone() == (True,)


def test_a_full_disk_on_the_server_stops_the_run_at_once(
    postgres_server: PostgresServer | None, postgres_url: str, pg_landing: Path, tmp_path: Path
) -> None:
    """The server's "No space left on device" was retried like a lost connection."""
    if postgres_server is None or os.geteuid() != 0:
        pytest.skip("needs the suite's own server and root to mount a tiny tablespace")
    mount = Path(tempfile.mkdtemp(prefix="brewline-tiny-"))  # the server's user must reach it
    mounting = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]
    if subprocess.run(mounting, check=False, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    tablespace = f"tiny_{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["chown", "postgres", str(mount)], check=True)
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute(f"CREATE TABLESPACE {tablespace} LOCATION '{mount}'")
            database = postgres_url.rsplit("/", 1)[1]
            con.execute(f"ALTER DATABASE {database} SET default_tablespace = {tablespace}")
        settings = Settings(
            landing=pg_landing, warehouse=postgres_url, quarantine=tmp_path / "q", retry_seconds=600
        )
        report = run(settings, alert=False)
        assert report.error is not None
        assert "disk full on the PostgreSQL server" in report.error
        assert "free space and run again" in report.error
        assert "gave up after retrying" not in report.error
    finally:  # the tablespace's files go with the database, then the tablespace can
        with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as con:
            con.execute(f"DROP DATABASE {postgres_url.rsplit('/', 1)[1]} WITH (FORCE)")
            con.execute(f"DROP TABLESPACE IF EXISTS {tablespace}")
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()
