"""Readers on their own connections see exactly the exporting transaction's snapshot."""

from __future__ import annotations

import threading

import psycopg
import pytest

from brewline.errors import TransientError
from brewline.totesys.snapshot import export_snapshot, snapshot_readers

pytestmark = pytest.mark.postgres


def test_readers_see_the_exported_snapshot_and_not_what_commits_after_it(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as writer:
        writer.execute("CREATE TABLE t (id integer PRIMARY KEY)")
        writer.execute("INSERT INTO t VALUES (1)")
        with psycopg.connect(postgres_url, autocommit=True) as con, con.transaction():
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = export_snapshot(con)
            writer.execute("INSERT INTO t VALUES (2)")  # committed after the export ...
            with snapshot_readers(postgres_url, snapshot, 1) as (first,):
                writer.execute("INSERT INTO t VALUES (3)")  # ... and after a reader began
                with snapshot_readers(postgres_url, snapshot, 2) as (_, second):
                    seen = [
                        r.read("SELECT id FROM t ORDER BY id")["id"].to_list()
                        for r in (first, second)
                    ]
                    mode = second.read(
                        "SELECT current_setting('transaction_isolation') AS isolation, "
                        "current_setting('transaction_read_only') AS read_only"
                    ).row(0)
        now = [i for (i,) in writer.execute("SELECT id FROM t ORDER BY id").fetchall()]
    assert seen == [[1], [1]]
    assert mode == ("repeatable read", "on")
    assert now == [1, 2, 3]


def test_a_reader_whose_source_goes_away_mid_read_fails_transient(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as con, con.transaction():
        con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with snapshot_readers(postgres_url, export_snapshot(con), 1) as (reader,):
            pid = reader.read("SELECT pg_backend_pid() AS pid")["pid"][0]

            def terminate() -> None:
                with psycopg.connect(postgres_url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

            # Rows stream while the query sleeps between them; the backend is ended then.
            timer = threading.Timer(0.3, terminate)
            timer.start()
            try:
                with pytest.raises(TransientError, match="went away"):
                    reader.read(
                        "SELECT g, pg_sleep(CASE WHEN g % 1000 = 0 THEN 0.1 ELSE 0 END)::text "
                        "FROM generate_series(1, 30000) g"
                    )
            finally:
                timer.join()
            with pytest.raises(TransientError, match="went away"):  # and it stays gone
                reader.read("SELECT 1 AS one")
