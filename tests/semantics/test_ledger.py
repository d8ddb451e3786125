"""Loading semantics: ledger states, replacement semantics and idempotency on real warehouses.

Edge cases found in review: each test pins what a data engineer would expect.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import PII_KEY
from tests.semantics._util import line, rows, snapshot, write

from brewline.config import Settings
from brewline.pipeline import run

TWO_SALES = line() + line(ts="25/08/2021 09:05")


def states(url: str) -> list[tuple[object, ...]]:
    return rows(url, "SELECT source_name, state, reason FROM etl_file ORDER BY source_name, state")


# -- defects ------------------------------------------------------------------------------------


def test_a_replaced_delivery_left_in_the_landing_folder_is_not_reloaded_next_run(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """leeds.csv then leeds (1).csv (same branch-day) both stay in the landing folder, as the
    README's own example has it. Run 1: (1) wins. Run 2 must change nothing; instead leeds.csv
    (ledger state 'replaced') is treated as new, reloaded and wins - and run 3 flips it back."""
    settings = make_settings(warehouse=warehouse_url)
    write(landing, "leeds.csv", TWO_SALES, 1000)
    write(landing, "leeds (1).csv", line(ts="25/08/2021 11:00"), 2000)
    run(settings)
    before = snapshot(warehouse_url)
    again = run(settings)
    assert [(f.source_name, f.state) for f in again.files] == [
        ("leeds.csv", "skipped"),
        ("leeds (1).csv", "skipped"),
    ]
    assert snapshot(warehouse_url) == before


def test_same_bytes_under_two_names_in_one_run_loads_once_and_skips_the_copy(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """README: same bytes under another name -> skipped (duplicate_content). Across runs it is;
    within one run (same batch) the copy is loaded and 'replaces' the original instead."""
    write(landing, "leeds.csv", TWO_SALES, 1000)
    write(landing, "leeds copy.csv", TWO_SALES, 2000)
    report = run(make_settings())
    assert [(f.source_name, f.state, f.reason) for f in report.files] == [
        ("leeds.csv", "loaded", None),
        ("leeds copy.csv", "skipped", "duplicate_content"),
    ]


def test_same_bytes_under_two_names_in_one_run_is_not_rejected_under_policy_reject(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """A byte-identical copy is a duplicate, not a competing delivery: it must not fail the run."""
    write(landing, "leeds.csv", TWO_SALES, 1000)
    write(landing, "leeds copy.csv", TWO_SALES, 2000)
    report = run(make_settings(redelivery="reject"))
    assert report.exit_code == 0
    assert [(f.state, f.reason) for f in report.files] == [
        ("loaded", None),
        ("skipped", "duplicate_content"),
    ]


def test_batch_files_1_and_default_batches_build_identical_warehouses(
    tmp_path: Path, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """Batching is a performance knob: it must not change what the warehouse holds."""
    write(landing, "leeds.csv", TWO_SALES, 1000)
    write(landing, "york.csv", line(branch="York"), 1001)
    write(landing, "bath.csv", line(branch="Bath"), 1002)
    write(landing, "leeds copy.csv", TWO_SALES, 1003)  # >= 2 batches after the original
    one = str(tmp_path / "one.duckdb")
    many = str(tmp_path / "many.duckdb")
    run(make_settings(warehouse=one, batch_files=1))
    run(make_settings(warehouse=many))
    first, second = snapshot(one), snapshot(many)
    assert {t: first[t] == second[t] for t in first} == dict.fromkeys(first, True)


def test_redelivery_loads_when_the_same_names_new_version_is_rejected_whole(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """leeds.csv is loaded; then its new version is unreadable and leeds (1).csv re-delivers the
    same branch-day. Expected: the new leeds.csv version is rejected, leeds (1).csv replaces the
    branch-day. Got: a primary-key violation on etl_file_branch_day stops the run, every run."""
    settings = make_settings(warehouse=warehouse_url)
    write(landing, "leeds.csv", TWO_SALES, 1000)
    assert run(settings).exit_code == 0
    write(landing, "leeds.csv", b"\xff\xfe not a csv\n", 2000)
    write(landing, "leeds (1).csv", line(ts="25/08/2021 10:00"), 2001)
    report = run(settings)
    assert report.error is None
    assert {f.source_name: (f.state, f.reason) for f in report.files} == {
        "leeds.csv": ("rejected", "not_utf8"),
        "leeds (1).csv": ("loaded", None),
    }
    assert rows(warehouse_url, "SELECT count(*) FROM fact_sale") == [(1,)]


def test_correction_whose_every_row_is_rejected_keeps_the_previous_rows(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """A 'corrected' leeds.csv in which no row passes the rules carries no data; replacing the
    good version with it silently deletes a whole branch-day (and the run exits 0)."""
    settings = make_settings(warehouse=warehouse_url)
    write(landing, "leeds.csv", TWO_SALES, 1000)
    run(settings)
    broken = line(total="9.99") + line(ts="25/08/2021 09:05", total="9.99")
    write(landing, "leeds.csv", broken, 2000)
    run(settings)
    assert rows(warehouse_url, "SELECT count(*) FROM fact_sale") == [(2,)]


def test_partly_replaced_file_is_reported_as_the_ledger_records_it(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """f.csv covers 25 and 26 Aug; g.csv re-delivers 26 Aug only. The ledger keeps f.csv
    'loaded' (partly_replaced) - the run report must not call it 'replaced'."""
    settings = make_settings()
    write(landing, "f.csv", line() + line(ts="26/08/2021 09:00"), 1000)
    write(landing, "g.csv", line(ts="26/08/2021 10:00"), 2000)
    report = run(settings)
    assert states(settings.warehouse) == [
        ("f.csv", "loaded", "partly_replaced"),
        ("g.csv", "loaded", None),
    ]
    assert [(f.source_name, f.state) for f in report.files] == [
        ("f.csv", "loaded"),
        ("g.csv", "loaded"),
    ]
    assert report.to_dict()["files_replaced"] == 0


def test_quarantine_folder_inside_the_landing_folder_is_not_read_as_input(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """quarantine = <landing>/rejects (a documented setting): its *.rejected.csv files are
    picked up as new exports, rejected, and every later run exits 1."""
    settings = make_settings(quarantine=landing / "rejects")
    write(landing, "leeds.csv", TWO_SALES + line(ts="25/08/2021 09:09", total="9.99"), 1000)
    first = run(settings)
    assert first.files[0].quarantine is not None
    second = run(settings)
    assert [(f.source_name, f.state) for f in second.files] == [("leeds.csv", "skipped")]
    assert second.exit_code == 0


def test_rejected_whole_file_does_not_count_its_header_as_a_read_row(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    """Loaded files count header lines in skipped_lines, not rows_read; a file rejected whole
    counts the header in both (rows_read 3 + skipped_lines 1 for a 3-line file)."""
    settings = make_settings()
    header = "Date,Branch,Customer,Basket,Total,Payment,Card\n"
    write(landing, "us.csv", header + line(ts="08/25/2021 09:00") + line(ts="08/26/2021 09:00"), 1)
    report = run(settings)
    assert (report.files[0].state, report.files[0].reason) == ("rejected", "month_first_dates")
    assert rows(
        settings.warehouse, "SELECT rows_read, rows_rejected, skipped_lines FROM etl_file"
    ) == [(2, 2, 1)]


# -- checked and correct ------------------------------------------------------------------------


def test_flip_flop_a_b_a_under_one_name_ends_with_a_loaded_and_idempotent(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(warehouse=warehouse_url)
    a = TWO_SALES
    b = line(basket="Regular Latte - 2.15", total="2.15")
    write(landing, "leeds.csv", a, 1000)
    run(settings)
    facts_a = snapshot(warehouse_url)["fact_sale"]
    write(landing, "leeds.csv", b, 2000)
    run(settings)
    write(landing, "leeds.csv", a, 3000)
    report = run(settings)
    assert [(f.state, f.replaced) for f in report.files] == [("loaded", ("leeds.csv",))]
    after = snapshot(warehouse_url)
    assert after["fact_sale"] == facts_a
    assert sorted(r[5] for r in after["etl_file"]) == ["loaded", "replaced"]
    assert run(settings).count("skipped") == 1
    assert snapshot(warehouse_url) == after


def test_rejected_whole_correction_keeps_the_old_rows(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(warehouse=warehouse_url)
    write(landing, "leeds.csv", TWO_SALES, 1000)
    run(settings)
    write(landing, "leeds.csv", b"\xff\xfe garbage\n", 2000)
    report = run(settings)
    assert [(f.state, f.reason) for f in report.files] == [("rejected", "not_utf8")]
    assert rows(warehouse_url, "SELECT count(*) FROM fact_sale") == [(2,)]
    assert sorted(r[1] for r in states(warehouse_url)) == ["loaded", "rejected"]


def test_every_file_ends_in_one_state_with_balanced_counts_and_a_rerun_changes_nothing(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(warehouse=warehouse_url, pii_key=PII_KEY)
    write(landing, "f.csv", line(branch="York") + line(branch="York", ts="26/08/2021 09:00"), 1)
    write(landing, "g.csv", line(branch="York", ts="26/08/2021 10:00"), 2)
    write(landing, "leeds.csv", TWO_SALES + line(ts="25/08/2021 09:09", total="1"), 3)
    write(landing, "all bad.csv", line(branch="Bath", total="1"), 5)
    write(landing, "empty.csv", "", 6)
    report = run(settings)
    ledger = rows(
        warehouse_url,
        "SELECT source_name, state, rows_read, rows_loaded, rows_rejected FROM etl_file",
    )
    assert len(ledger) == 5
    assert all(state in {"loaded", "skipped", "replaced", "rejected"} for _, state, *_ in ledger)
    assert all(read == loaded + rejected for _, _, read, loaded, rejected in ledger)
    # empty.csv and "all bad.csv" (every row rejected: refused whole as no_valid_rows)
    assert report.count("rejected") == 2
    before = snapshot(warehouse_url)
    again = run(settings)
    assert {f.state for f in again.files} == {"skipped"}
    assert snapshot(warehouse_url) == before


def test_later_mtime_wins_whatever_the_names(
    landing: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    write(landing, "z.csv", line(basket="Regular Latte - 2.15", total="2.15"), 1000)
    write(landing, "a.csv", line(), 2000)
    report = run(settings)
    assert [(f.source_name, f.state) for f in report.files] == [
        ("z.csv", "replaced"),
        ("a.csv", "loaded"),
    ]
    assert rows(settings.warehouse, "SELECT CAST(total AS VARCHAR) FROM fact_sale") == [("2.45",)]


def test_two_deliveries_of_a_branch_day_in_one_batch_under_policy_reject(
    warehouse_url: str, landing: Path, make_settings: Callable[..., Settings]
) -> None:
    write(landing, "leeds.csv", TWO_SALES, 1000)
    write(landing, "leeds (1).csv", line(ts="25/08/2021 10:00"), 2000)
    report = run(make_settings(warehouse=warehouse_url, redelivery="reject"))
    assert [(f.state, f.reason) for f in report.files] == [
        ("loaded", None),
        ("rejected", "branch_day_owned"),
    ]
    assert rows(warehouse_url, "SELECT count(*) FROM fact_sale") == [(2,)]
