"""The one wiring place: landing files -> ledger decision -> extract -> validate
-> transform -> load, batch by batch.

    >>> from brewline.config import Settings
    >>> report = run(Settings(landing=Path("landing"), warehouse=":memory:"))  # doctest: +SKIP
    >>> report.exit_code
    0

A batch is a run of consecutive files (``batch_files``, ``batch_megabytes``):
they are checked and transformed in one vectorised pass and committed in one
transaction, so each file is either wholly visible or not at all, and the
fixed costs of frame operations and commits are paid once per batch. The next
batch is read on a reader thread and the two after this one are parsed on
worker threads while this one loads (Polars, the warehouse drivers, reads and
hashing release the GIL); memory is bounded by the batches in flight, whatever
the number of files. Decisions that depend on order (is this file
new? a duplicate?) are taken on the main thread, in delivery order.

Errors that stop a run midway do not raise: the report carries the error and
the files that were not committed stay pending for the next run. Errors before
any work (settings, an unreachable warehouse, an older schema) raise.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TypeVar

import polars as pl

from brewline.config import Settings
from brewline.errors import BrewlineError, ConfigError, FileRejected, out_of_room
from brewline.extract import fingerprint
from brewline.extract.layouts import RawExport, read_exports
from brewline.keys import LINE_SPACE
from brewline.load import Replacement, Warehouse, open_warehouse
from brewline.load.commit import commit, retrying
from brewline.load.locations import redact
from brewline.marts import of_batch
from brewline.ops.alerts import DeliveryFailure, alert_run
from brewline.report import FileReport, RunReport, StopRequest
from brewline.schema import TABLES
from brewline.sources import Delivery, Location, Source, open_source
from brewline.transform.pii import key_fingerprint
from brewline.transform.star import FileFacts, StarBatch, build_star
from brewline.validate import write_quarantine
from brewline.validate.rules import validate_exports
from brewline.vocabulary import FileState, local_now

__all__ = ["run"]

log = logging.getLogger("brewline")
_T = TypeVar("_T")

OnFile = Callable[[FileReport], None]
_KEY_META = "pii_key_fingerprint"


def run(
    settings: Settings,
    paths: Sequence[Location] | None = None,
    *,
    source: Source | None = None,
    on_start: Callable[[int], None] | None = None,
    on_file: OnFile | None = None,
    alert: bool = True,
    on_alert_failure: Callable[[DeliveryFailure], None] | None = None,
    stop: StopRequest | None = None,
) -> RunReport:
    """Process every new or changed delivery under ``paths`` (default: the landing area),
    or of ``source`` when given (e.g. just the objects an S3 event names).

    ``on_start(n_files)`` and ``on_file(report)`` let a caller show progress.
    With ``alert``, a finished run that rejected files or stopped sends one alert
    (:func:`brewline.ops.alerts.alert_run`); an alert that cannot be delivered
    never fails the run: it is logged and handed to ``on_alert_failure``.

    Once ``stop`` is asked (a signal handler's :meth:`~brewline.report.StopRequest.ask`),
    the run commits nothing more: it records itself ``interrupted`` with what it
    committed, and the rest stays pending for the next run.
    """
    if source is None:
        source = open_source(paths or [settings.landing], quarantine=settings.quarantine)
    deliveries = source.deliveries()
    key = settings.pii_key.get_secret_value().encode() if settings.pii_key else None
    with open_warehouse(
        settings.warehouse, lock_timeout=settings.lock_timeout, share=True
    ) as warehouse:
        report = RunReport(
            run_id=_new_run_id(),
            warehouse=redact(settings.warehouse),
            started_at=_utcnow(),
            customer_tokens=key is not None,
            ignored=list(source.ignored),
        )
        with warehouse.held():
            warehouse.ensure_schema()
            _check_key(warehouse, key)
            ledger = _Ledger(warehouse.deliveries())
            known = frozenset(warehouse.query("SELECT branch_name FROM dim_branch").to_series())
            warehouse.begin_run(report.run_id, socket.gethostname(), os.getpid())
        log.info("run %s started: %d files", report.run_id, len(deliveries))
        if on_start:
            on_start(len(deliveries))
        holding = _Holding(warehouse)
        stopped_by: int | None = None
        budget = settings.retry_seconds
        try:
            context = _Context(
                settings, key, report.run_id, ledger, source, _window(settings), known
            )
            stopped_by = _commit_all(
                deliveries,
                context,
                warehouse,
                holding=holding,
                report=report,
                on_file=on_file,
                stop=stop,
            )
        except BrewlineError as exc:
            # Files not committed stay pending for the next run; the report says how far we got.
            report.error = str(exc)
            report.pending = _pending(report, len(deliveries))
            budget = 0.0 if exc.transient else budget  # its retry budget is spent already
        finally:
            holding.let_go()
        if stopped_by is not None:  # a stop asked after the last commit changes nothing
            _interrupted(report, stopped_by, len(deliveries))
        report.finished_at = _utcnow()
        _finish(warehouse, report, budget)
        log.info("run %s %s in %.2fs", report.run_id, report.status, report.seconds)
    if alert:
        for failure in alert_run(settings, report):
            if on_alert_failure is not None:
                on_alert_failure(failure)
    return report


def _commit_all(
    deliveries: list[Delivery],
    context: _Context,
    warehouse: Warehouse,
    *,
    holding: _Holding,
    report: RunReport,
    on_file: OnFile | None,
    stop: StopRequest | None,
) -> int | None:
    """Commit batch after batch; return the signal that stopped it before the end, or None."""
    try:
        batches = _batches(deliveries, context.settings)
        for prepared in _prepared_ahead(batches, context, before_waiting=holding.let_go):
            if stop is not None and stop.signum is not None:
                return stop.signum  # before the next commit, never inside one
            holding.hold()
            for result in _commit(prepared, warehouse, context):
                _tell(report, result, on_file)
    except KeyboardInterrupt:
        # Polars answers Ctrl+C itself, beside Python's handler: a query running then
        # (on a parse worker, or in a commit, which rolls back) raises. The stop was
        # asked all the same; what was committed stays.
        if stop is None:
            raise
        return stop.signum or signal.SIGINT  # its handler may not have run yet
    return None


def _pending(report: RunReport, listed: int) -> int:
    """Deliveries the next run takes: those not reached, and those that failed (never committed)."""
    return listed - sum(1 for f in report.files if f.state != FileState.FAILED)


def _interrupted(report: RunReport, signum: int, listed: int) -> None:
    """Say that a signal stopped the run, and how many deliveries it left pending."""
    report.interrupted_by = signum
    report.pending = _pending(report, listed)
    # info, not warning: with no logging set up, Python prints warnings on stderr, and
    # the command line says it in one line of its own.
    log.info("run %s interrupted by signal %d, %d pending", report.run_id, signum, report.pending)


def _finish(warehouse: Warehouse, report: RunReport, retry_seconds: float) -> None:
    """Record the run's end in the ledger, then say in one line how it stopped, if it did."""
    finish = partial(warehouse.finish_run, report.run_id, report.status, report.totals())
    try:
        retrying(warehouse, finish, seconds=retry_seconds)
    except BrewlineError as exc:  # e.g. the server that stopped the run is still down
        if report.error is None:
            report.error = f"the run could not be recorded in the ledger: {exc}"
            log.error("run %s %s", report.run_id, report.error)
        else:
            log.error("run %s stopped (not in the ledger): %s", report.run_id, report.error)
        return
    if report.error is not None:
        log.error("run %s stopped: %s", report.run_id, report.error)


@dataclass(frozen=True)
class _Context:
    settings: Settings
    key: bytes | None
    run_id: str
    ledger: _Ledger
    source: Source
    sold_between: tuple[dt.datetime, dt.datetime]
    """The plausible sale times: from the earliest sale date to a day or so after the start."""
    known_branches: frozenset[str]
    """The branches the warehouse held when the run started: they vouch for a file's branch."""


@dataclass
class _Prepared:
    """A batch parsed ahead of loading: a star batch plus files decided without loading."""

    star: StarBatch | None
    data: dict[int, bytes]  # file_id -> bytes, of the files with rows to quarantine
    verdicts: list[FileReport] = field(default_factory=list)
    ledger_rows: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0


def _batches(deliveries: list[Delivery], settings: Settings) -> Iterator[list[Delivery]]:
    limit = settings.batch_megabytes * 1_000_000
    batch: list[Delivery] = []
    size = 0
    for delivery in deliveries:
        if batch and (len(batch) >= settings.batch_files or size + delivery.size > limit):
            yield batch
            batch, size = [], 0
        batch.append(delivery)
        size += delivery.size
    if batch:
        yield batch


def _prepared_ahead(
    batches: Iterable[list[Delivery]], context: _Context, *, before_waiting: Callable[[], None]
) -> Iterator[_Prepared]:
    """Parse the next batches on worker threads while the caller loads this one.

    Which files need loading is decided here, in delivery order, so duplicate
    detection does not depend on which worker finishes first; only the reading
    (one batch ahead) and the parsing (:data:`PARSE_AHEAD` batches at most) run
    ahead, so memory stays bounded. ``before_waiting`` is called before blocking
    on a batch that is not ready yet.
    """
    with (
        ThreadPoolExecutor(max_workers=PARSE_AHEAD, thread_name_prefix="brewline-parse") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="brewline-read") as reader,
    ):
        pending: deque[Future[_Prepared]] = deque()
        for fetched in _fetched_ahead(batches, context.source, reader, before_waiting):
            pending.append(pool.submit(_parse, _intake(fetched, context), context))
            del fetched  # the bytes now live only as long as their parse needs them
            if len(pending) > PARSE_AHEAD:
                yield _when_done(pending.popleft(), before_waiting)
        while pending:
            yield _when_done(pending.popleft(), before_waiting)


PARSE_AHEAD = 2
"""Batches parsed ahead of the one loading: two workers keep both cores busy."""


@dataclass(frozen=True)
class _Fetched:
    """A batch's files, each as its bytes and fingerprint or why it could not be read."""

    files: list[tuple[Delivery, bytes | OSError, str]]
    seconds: float


def _fetched_ahead(
    batches: Iterable[list[Delivery]],
    source: Source,
    reader: ThreadPoolExecutor,
    before_waiting: Callable[[], None],
) -> Iterator[_Fetched]:
    """Each batch's files read and fingerprinted, the next batch on ``reader`` meanwhile.

    Reading and hashing release the GIL; done ahead, they stay off the thread
    that commits (for ~300-sale files they were a sixth of its time).
    """
    ahead: deque[Future[_Fetched]] = deque()  # popped when yielded: no bytes kept here
    for batch in batches:
        ahead.append(reader.submit(_fetch, batch, source))
        if len(ahead) > 1:
            yield _when_done(ahead.popleft(), before_waiting)
    while ahead:
        yield _when_done(ahead.popleft(), before_waiting)


def _fetch(deliveries: list[Delivery], source: Source) -> _Fetched:
    started = time.perf_counter()
    files = [
        (delivery, data, "" if isinstance(data, OSError) else fingerprint(data))
        for delivery, data in zip(deliveries, source.read_all(deliveries), strict=True)
    ]
    return _Fetched(files, time.perf_counter() - started)


def _when_done(future: Future[_T], before_waiting: Callable[[], None]) -> _T:
    if not future.done():
        before_waiting()
    return future.result()


class _Holding:
    """Keeps a shared warehouse's file open across back-to-back commits.

    Opening a DuckDB file and closing it (a checkpoint) cost ~60 ms a batch.
    The file is let go before any wait for parsing or reading; between commits
    when another process (a dashboard, a report, another runner) has waited
    :data:`PATIENCE_SECONDS` for it, which then gets its turn first; and after
    :data:`HOLD_SECONDS` (holding longer would keep more of what was written
    cached in memory).
    """

    def __init__(self, warehouse: Warehouse):
        self._warehouse = warehouse
        self._held = ExitStack()
        self._since: float | None = None

    def hold(self) -> None:
        if self._since is not None:
            if self._warehouse.wanted_elsewhere(for_seconds=PATIENCE_SECONDS):
                self.let_go()
                self._warehouse.make_way()
            elif time.monotonic() - self._since >= HOLD_SECONDS:
                self.let_go()
        if self._since is None:
            self._held.enter_context(self._warehouse.held())
            self._since = time.monotonic()

    def let_go(self) -> None:
        self._since = None
        self._held.close()


HOLD_SECONDS = 1.0
"""Longest a run keeps a shared warehouse's file across commits."""
PATIENCE_SECONDS = 0.3
"""A run holding the file gives way to a process that has waited this long for it: it
waits about this plus one commit (a dashboard request waits 1 s at most), and a stream
of them slows a run by a bounded share."""


@dataclass
class _Intake:
    prepared: _Prepared
    wanted: list[tuple[FileFacts, bytes]]


def _intake(fetched: _Fetched, context: _Context) -> _Intake:
    """Decide from the ledger which of a batch's files need loading."""
    prepared = _Prepared(star=None, data={}, seconds=fetched.seconds)
    wanted: list[tuple[FileFacts, bytes]] = []
    for delivery, data, sha256 in fetched.files:
        # Known unreadable when listed (a symlink loop), or moved or unreadable since: pending.
        if delivery.problem is not None:
            _fail(prepared, delivery, *delivery.problem)
            continue
        if isinstance(data, OSError):
            _fail(
                prepared,
                delivery,
                "unreadable_file",
                f"cannot read the file: {data.strerror or data}",
            )
            continue
        file = FileFacts(delivery.name, sha256, len(data), layout="", skipped_lines=0)
        if _needs_loading(file, prepared, context):
            wanted.append((file, data))
    return _Intake(prepared, wanted)


def _fail(prepared: _Prepared, delivery: Delivery, reason: str, message: str) -> None:
    """A delivery that cannot be read: reported failed, not recorded, so tried again."""
    prepared.verdicts.append(
        FileReport(delivery.name, FileState.FAILED, reason=reason, message=message)
    )


def _parse(intake: _Intake, context: _Context) -> _Prepared:
    """Extract, check and transform the files a batch needs loaded (runs on a worker)."""
    started = time.perf_counter()
    prepared, wanted = intake.prepared, intake.wanted
    raws: list[RawExport] = []
    facts: list[FileFacts] = []
    results = read_exports([(data, file.source_name) for file, data in wanted])
    for (file, data), result in zip(wanted, results, strict=True):
        refusal = result if isinstance(result, FileRejected) else _too_long(result)
        if refusal is not None:
            _refuse(prepared, file, refusal, _data_lines(data))
            continue
        assert isinstance(result, RawExport)
        raws.append(result)
        facts.append(replace(file, layout=result.layout.name, skipped_lines=result.skipped_lines))
        prepared.data[file.file_id] = data
    if raws:
        checked = validate_exports(
            raws,
            max_item_price=context.settings.max_item_price,
            sold_between=context.sold_between,
            known_branches=context.known_branches,
        )
        star = build_star(checked, facts, context.key)
        refused = {
            facts[i].file_id: (facts[i], refusal, raws[i].rows.height)
            for i, refusal in checked.refused.items()
        }
        refused |= _without_valid_rows(star, {f.file_id: f for f in facts})
        for file, refusal, rows in refused.values():
            _refuse(prepared, file, refusal, rows)
        loading = star.only([f for f in star.files["file_id"] if f not in refused])
        # The marts' rows of the batch are aggregated here, on a worker, to keep
        # them off the thread that commits.
        prepared.star = replace(loading, marts=of_batch(loading.sales, loading.lines))
        # Only files with rejected rows are quarantined; the others' bytes can go now
        # rather than wait in memory for the commit (a batch is up to 28 MB).
        flagged = set(prepared.star.rejects["file_id"].to_list())
        prepared.data = {fid: data for fid, data in prepared.data.items() if fid in flagged}
    prepared.seconds += time.perf_counter() - started
    return prepared


def _without_valid_rows(
    star: StarBatch, facts: dict[int, FileFacts]
) -> dict[int, tuple[FileFacts, FileRejected, int]]:
    """Files whose every row was rejected are refused whole.

    Loading them would record an empty delivery, and a corrected file with no
    valid row would wipe the good rows of the version it replaces.
    """
    empty = star.files.filter((pl.col("rows_loaded") == 0) & (pl.col("rows_read") > 0))
    reasons = (
        star.rejects.filter(pl.col("file_id").is_in(empty["file_id"].implode()))
        .group_by("file_id", "reason")
        .len()
        .sort("file_id", "len", "reason", descending=[False, True, False])
    )
    refused = {}
    for fid, rows in empty.select("file_id", "rows_read").iter_rows():
        counts = reasons.filter(pl.col("file_id") == fid).head(3)
        summary = ", ".join(f"{r} x{n}" for _, r, n in counts.iter_rows())
        refusal = FileRejected(
            "no_valid_rows",
            f"none of its {rows} rows passed the row rules ({summary}); fix or re-export it",
        )
        refused[fid] = (facts[fid], refusal, rows)
    return refused


def _needs_loading(file: FileFacts, prepared: _Prepared, context: _Context) -> bool:
    """Decide from the ledger alone whether a file is new work; record it if not."""
    if context.ledger.unchanged(file):
        prepared.verdicts.append(
            FileReport(
                file.source_name, FileState.SKIPPED, reason="unchanged", message="already processed"
            )
        )
        return False
    twin = context.ledger.twin(file)
    if twin is not None:
        verdict = (FileState.SKIPPED, "duplicate_content", f"same bytes as {twin}")
        _decide(prepared, file, verdict, 0)
        return False
    context.ledger.choose(file)
    return True


def _too_long(raw: RawExport) -> FileRejected | None:
    """Sale keys pack the line number into LINE_SPACE; a day's till export is far smaller."""
    if raw.rows.height and raw.rows["line_no"].max() >= LINE_SPACE:  # type: ignore[operator]
        return FileRejected("too_many_lines", f"more than {LINE_SPACE - 1} lines in one file")
    return None


def _refuse(prepared: _Prepared, file: FileFacts, refusal: FileRejected, rows: int) -> None:
    _decide(prepared, file, (FileState.REJECTED, refusal.reason, refusal.message), rows)


def _decide(prepared: _Prepared, file: FileFacts, verdict: tuple[str, str, str], rows: int) -> None:
    """Record a file that will not be loaded: a ledger row now, a report after commit.

    ``verdict`` is (state, reason, message).
    """
    state, reason, message = verdict
    rejected = rows if state == FileState.REJECTED else 0
    prepared.ledger_rows.append(
        {
            "file_id": file.file_id,
            "source_name": file.source_name,
            "sha256": file.sha256,
            "size_bytes": file.size_bytes,
            "layout": file.layout or None,
            "skipped_lines": file.skipped_lines,
            "rows_loaded": 0,
            "rows_rejected": rejected,
            "rows_read": rows,
            "state": state,
            "reason": reason,
            "message": message,
        }
    )
    prepared.verdicts.append(
        FileReport(
            file.source_name,
            state,
            rows_read=rows,
            rows_rejected=rejected,
            reason=reason,
            message=message,
        )
    )


def _commit(prepared: _Prepared, warehouse: Warehouse, context: _Context) -> list[FileReport]:
    """Write quarantine files, then load the batch in as few transactions as its overlaps allow."""
    # Files decided without loading are reported when the commit records them; these
    # two never reach the ledger (nothing changed, or they could not even be read).
    reports = [
        v for v in prepared.verdicts if v.reason == "unchanged" or v.state == FileState.FAILED
    ]
    star = _with_ledger_rows(prepared, context)
    if star is None:
        return reports
    quarantined = _quarantine(star, prepared, context.source)
    for done in commit(
        star,
        warehouse,
        redelivery=context.settings.redelivery,
        retry_seconds=context.settings.retry_seconds,
    ):
        reports += _file_reports(done.files, done.replaced, quarantined)
        for row in done.files.iter_rows(named=True):
            context.ledger.remember(row["source_name"], row["sha256"], row["state"])
    return reports


def _with_ledger_rows(prepared: _Prepared, context: _Context) -> StarBatch | None:
    """Add ledger columns to loaded files and append the files decided without loading."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    star = prepared.star
    loaded = star.files if star is not None else None
    n_files = (0 if loaded is None else loaded.height) + len(prepared.ledger_rows)
    if n_files == 0:
        return None
    share = prepared.seconds / n_files
    extra = {"run_id": context.run_id, "recorded_at": now, "seconds": share}
    parts = []
    if loaded is not None:
        parts.append(
            loaded.with_columns(
                state=pl.lit(FileState.LOADED.value),
                reason=pl.lit(None, pl.String),
                message=pl.lit(None, pl.String),
            )
        )
    if prepared.ledger_rows:
        parts.append(pl.DataFrame(prepared.ledger_rows, schema=_LEDGER_SCHEMA))
    files = pl.concat(
        [p.select(_LEDGER_SCHEMA.keys()).cast(pl.Schema(_LEDGER_SCHEMA)) for p in parts]
    )
    files = files.with_columns(**{k: pl.lit(v) for k, v in extra.items()})
    if star is None:
        return StarBatch.without_data(files)
    return replace(star, files=files)


def _quarantine(star: StarBatch, prepared: _Prepared, source: Source) -> dict[int, Location]:
    """Write raw rejected lines beside the deliveries, before the commit that records them."""
    written: dict[int, Location] = {}
    if star.rejects.is_empty():
        return written
    for (fid,), rejects in star.rejects.partition_by("file_id", as_dict=True).items():
        row = star.files.filter(pl.col("file_id") == fid).row(0, named=True)
        try:
            path = write_quarantine(
                source.quarantine,
                row["source_name"],
                row["sha256"],
                prepared.data[int(fid)],
                rejects,
            )
        except OSError as exc:  # nothing is committed without its quarantine file
            raise ConfigError(
                out_of_room(exc, str(source.quarantine))
                or f"cannot write to the quarantine {source.quarantine}: {exc.strerror or exc}; "
                "make it writable or set `quarantine` elsewhere"
            ) from None
        if path is not None:
            written[int(fid)] = path
    return written


def _file_reports(
    files: pl.DataFrame, replaced: dict[int, list[Replacement]], quarantined: dict[int, Location]
) -> list[FileReport]:
    return [
        FileReport(
            row["source_name"],
            row["state"],
            rows_read=row["rows_read"],
            rows_loaded=row["rows_loaded"],
            rows_rejected=row["rows_rejected"],
            seconds=round(row["seconds"], 4),
            reason=row["reason"],
            message=row["message"],
            layout=row["layout"],
            replaced=tuple(r.name for r in replaced.get(row["file_id"], ()) if r.whole),
            partly_replaced=tuple(r.name for r in replaced.get(row["file_id"], ()) if not r.whole),
            quarantine=quarantined.get(row["file_id"]),
        )
        for row in files.iter_rows(named=True)
    ]


def _tell(report: RunReport, result: FileReport, on_file: OnFile | None) -> None:
    """Add a file's outcome; a file this run loaded and a later one replaced ends 'replaced'."""
    if result.replaced:
        superseded = set(result.replaced)
        report.files = [
            replace(f, state=FileState.REPLACED)
            if f.state == FileState.LOADED and f.source_name in superseded
            else f
            for f in report.files
        ]
    report.files.append(result)
    log.info(
        "file %s %s read=%d loaded=%d rejected=%d%s",
        result.source_name,
        result.state,
        result.rows_read,
        result.rows_loaded,
        result.rows_rejected,
        f" reason={result.reason}" if result.reason else "",
        extra={  # fields of their own for JSON log formatters (the Lambda's)
            "run_id": report.run_id,
            "file": result.source_name,
            "state": str(result.state),
            "reason": result.reason,
            "rows_read": result.rows_read,
            "rows_loaded": result.rows_loaded,
            "rows_rejected": result.rows_rejected,
        },
    )
    if on_file:
        on_file(result)


class _Ledger:
    """What the warehouse already knows, to decide skip/duplicate without a query per file.

    A file version is *unchanged* once the ledger has it in any state, except a
    version superseded by a newer version of the same name: if those bytes come
    back (A -> B -> A), that is a new delivery. A version another file replaced
    (a redelivery of its branch-day) stays done while it lies in the landing folder.
    """

    def __init__(self, rows: pl.DataFrame):
        self._seen: set[tuple[str, str]] = set()
        self._loaded: dict[str, str] = {}
        columns = ("source_name", "sha256", "state", "replaced_by_name")
        for name, sha, state, by in rows.select(columns).iter_rows():
            self.remember(name, sha, state, replaced_by=by)

    def unchanged(self, facts: FileFacts) -> bool:
        return (facts.source_name, facts.sha256) in self._seen

    def twin(self, facts: FileFacts) -> str | None:
        """Another file with the same bytes, loaded before or chosen earlier in this run."""
        twin = self._loaded.get(facts.sha256)
        return twin if twin is not None and twin != facts.source_name else None

    def choose(self, facts: FileFacts) -> None:
        """This run will load ``facts``: later files with the same bytes are its duplicates."""
        self._loaded.setdefault(facts.sha256, facts.source_name)

    def remember(
        self, name: str, sha256: str, state: str, *, replaced_by: str | None = None
    ) -> None:
        if state == FileState.REPLACED and replaced_by == name:
            return
        self._seen.add((name, sha256))
        if state == FileState.LOADED:
            self._loaded.setdefault(sha256, name)


def _check_key(warehouse: Warehouse, key: bytes | None) -> None:
    """Refuse to mix customer tokens made under different keys (or none)."""
    stored = warehouse.get_meta(_KEY_META)
    current = key_fingerprint(key)
    if stored is None and current is not None:
        warehouse.set_meta(_KEY_META, current)
    elif stored is not None and current != stored:
        problem = "no PII key is set" if current is None else "the PII key differs"
        raise ConfigError(
            f"{problem}, but this warehouse's customer tokens were made with a key: "
            "set BREWLINE_PII_KEY to the key used before, or returning customers would be lost"
        )


_LEDGER_SCHEMA = TABLES["etl_file"].polars_schema(
    [
        "file_id",
        "source_name",
        "sha256",
        "size_bytes",
        "layout",
        "skipped_lines",
        "rows_loaded",
        "rows_rejected",
        "rows_read",
        "state",
        "reason",
        "message",
    ]
)
"""The ledger columns the pipeline decides; the loader adds run, time and replacement."""


def _data_lines(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())


def _window(settings: Settings) -> tuple[dt.datetime, dt.datetime]:
    earliest = dt.datetime.combine(settings.earliest_sale_date, dt.time())
    return earliest, local_now() + dt.timedelta(days=settings.max_days_ahead)


def _new_run_id() -> str:
    return f"{_utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
