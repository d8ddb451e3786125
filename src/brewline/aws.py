"""AWS Lambda entry points: load S3 deliveries as they arrive, run the checks on a schedule.

``handler(event, context)`` takes S3 event notifications, delivered directly or
through SQS (their standard JSON shapes), and loads the objects they name into
the warehouse with the same pipeline as ``brewline run``:

- **exactly once under at-least-once delivery**: the ledger skips a version it
  already has, and the loader refuses, under its commit lock, a version another
  invocation committed first; a redelivered event or two racing invocations
  load an object once;
- **one poison message never blocks the others**: from SQS it answers
  ``batchItemFailures`` naming only the messages whose objects failed (or that
  are not S3 events), so SQS retries those and, after ``maxReceiveCount``,
  moves them to the dead-letter queue; rejected files are handled, not failed
  (their lines are in the quarantine and the ledger says why);
- the warehouse URL and the PII key come from AWS Secrets Manager (the
  ``secret_id`` setting, ``BREWLINE_SECRET_ID``), never from plain environment
  values; every other setting is read as usual (``BREWLINE_*``);
- logs are JSON lines with the run id (AWS Lambda Powertools), and per run it
  emits CloudWatch metrics in Embedded Metric Format: files by state, rows read,
  loaded and rejected, and the run's seconds. Nothing logged or measured holds
  row content: names are object keys, figures are counts.

``check_handler(event, context)`` runs ``brewline check`` (on an EventBridge
schedule), publishes each failure to the ``alert_topic_arn`` SNS topic (and any
other configured channel), and emits ``ChecksFailed``/``ChecksWarned``.

``sync_handler(event, context)`` runs a totesys sync (every few minutes) from
the source in the secret into the lake on S3 and the warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import SecretStr

from brewline.config import Settings, load_settings
from brewline.errors import BrewlineError, ConfigError
from brewline.events import failed_objects, messages
from brewline.report import RunReport
from brewline.vocabulary import FileState

__all__ = ["check_handler", "handler", "settings_from_aws", "sync_handler"]

logger = Logger(service="brewline", level="INFO")
"""The ``brewline`` logger the pipeline logs to, made to write JSON lines."""
metrics = Metrics(namespace="Brewline", service="brewline")


@cache
def _secret(secret_id: str) -> dict[str, str]:
    """The secret's JSON, fetched once per Lambda container."""
    import boto3
    import botocore.exceptions

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise ConfigError(f"cannot read the secret {secret_id!r}: {exc}") from None
    try:
        secret = json.loads(value.get("SecretString") or "")
    except ValueError:
        secret = None
    if not isinstance(secret, dict) or not isinstance(secret.get("warehouse"), str):
        raise ConfigError(
            f"the secret {secret_id!r} must be JSON with a 'warehouse' URL "
            "(and a 'pii_key'); see deploy/aws/README.md"
        )
    return {k: v for k, v in secret.items() if isinstance(v, str)}


def settings_from_aws() -> Settings:
    """Settings from the environment, with the warehouse and PII key from Secrets Manager.

    Built once per Lambda container (per distinct ``BREWLINE_*`` environment).
    """
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("BREWLINE_")))
    return _settings(environment)


@cache
def _settings(environment: tuple[tuple[str, str], ...]) -> Settings:
    secret_id = Settings.from_settings(None).secret_id  # before require_pii_key is enforced
    if secret_id is None:
        return load_settings()
    secret = _secret(secret_id)
    return load_settings(warehouse=secret["warehouse"], pii_key=secret.get("pii_key"))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Load the objects an S3 or SQS event names; report the SQS messages that failed."""
    from brewline.pipeline import run
    from brewline.sources import open_source

    batch = messages(event)
    failed: set[str] = set()  # bucket/key names that must be retried
    try:
        settings = settings_from_aws()
        by_bucket: dict[str, list[str]] = defaultdict(list)
        for message in batch:
            for bucket, key in message.objects:
                by_bucket[bucket].append(key)
        for bucket, keys in by_bucket.items():
            source = open_source([f"s3://{bucket}/"], quarantine=settings.quarantine, only=keys)
            report = run(settings, source=source)
            _record(report)
            failed |= failed_objects(report, (f"{bucket}/{k}" for k in keys))
    except BrewlineError as exc:  # before any work: bad settings, no warehouse, an old schema
        logger.error("nothing loaded: %s", exc)
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
        failed = {name for m in batch for name in m.names()}
        if not any(m.id for m in batch):
            raise
    retry = [m for m in batch if m.problem or m.names() & failed]
    for message in retry:
        logger.warning(
            "message %s will be retried: %s",
            message.id,
            message.problem or "an object in it failed",
        )
    if batch and batch[0].id is None:
        if retry:  # a direct S3 invocation: raising makes Lambda retry it
            raise RuntimeError(f"{len(failed)} object(s) failed; see the log for why")
        return {"retry": []}
    return {"batchItemFailures": [{"itemIdentifier": m.id} for m in retry]}


def _record(report: RunReport) -> None:
    """One JSON log line and the EMF metrics of a run (counts only, never row content)."""
    totals = report.totals()
    logger.append_keys(run_id=report.run_id)
    logger.info(
        "run finished",
        extra={
            "status": report.status,
            "files": {state.value: report.count(state) for state in FileState},
            "rows_read": totals["rows_read"],
            "rows_loaded": totals["rows_loaded"],
            "rows_rejected": totals["rows_rejected"],
            "seconds": round(report.seconds, 3),
            "error": report.error,
        },
    )
    for state in FileState:
        name = f"Files{state.value.capitalize()}"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=report.count(state))
    for figure in ("rows_read", "rows_loaded", "rows_rejected"):
        name = "".join(part.capitalize() for part in figure.split("_"))
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=totals[figure])
    metrics.add_metric(name="RunSeconds", unit=MetricUnit.Seconds, value=report.seconds)
    if report.error:
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def check_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the data checks; alert on failures (SNS and any configured channel).

    ``event`` may carry ``"as_of": "YYYY-MM-DD"`` to check a past day; a
    scheduled event checks now. Checks that cannot run raise (a Lambda error,
    which the template alarms on) after alerting.
    """
    from brewline.load import open_warehouse
    from brewline.ops.alerts import alert_error, alerts_for_checks, send_alerts
    from brewline.ops.checks import run_checks
    from brewline.vocabulary import local_now

    as_of: dt.date | dt.datetime = local_now()
    if isinstance(event, dict) and event.get("as_of"):
        as_of = dt.date.fromisoformat(str(event["as_of"]))
    settings = settings_from_aws()
    try:
        source, lake = _totesys(settings)
        if source and lake:  # the Syncer's source: reconcile it with the lake and warehouse
            settings = settings.model_copy(
                update={"check_totesys_source": SecretStr(source), "check_totesys_lake": lake}
            )
        with open_warehouse(
            settings.warehouse, read_only=True, lock_timeout=settings.lock_timeout
        ) as warehouse:
            results = run_checks(warehouse, settings, as_of)
    except BrewlineError as exc:
        logger.error("checks could not run: %s", exc)
        metrics.add_metric(name="ChecksFailed", unit=MetricUnit.Count, value=1)
        alert_error(settings, "check", exc)
        raise
    failed = [r for r in results if r.status == "fail"]
    warned = [r for r in results if r.status == "warn"]
    undelivered = send_alerts(
        settings, alerts_for_checks(results, warnings=settings.alert_warnings)
    )
    metrics.add_metric(name="ChecksFailed", unit=MetricUnit.Count, value=len(failed))
    metrics.add_metric(name="ChecksWarned", unit=MetricUnit.Count, value=len(warned))
    logger.info(
        "checks finished",
        extra={
            "failed": [r.to_dict() for r in failed],
            "warned": len(warned),
            "alerts_undelivered": [str(f) for f in undelivered],
        },
    )
    return {"failed": len(failed), "warned": len(warned), "checked": len(results)}


def _totesys(settings: Settings) -> tuple[str | None, str | None]:
    """The totesys source URL (the secret's ``totesys_source``) and lake
    (``BREWLINE_TOTESYS_LAKE``), each None when not configured."""
    secret = _secret(settings.secret_id) if settings.secret_id else {}
    source = secret.get("totesys_source") or os.environ.get("BREWLINE_TOTESYS_SOURCE")
    return source, os.environ.get("BREWLINE_TOTESYS_LAKE")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def sync_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sync the totesys source (on an EventBridge schedule): extract, model, load.

    The source URL comes from the same secret as the warehouse (its
    ``totesys_source`` key), the lake from ``BREWLINE_TOTESYS_LAKE``
    (``s3://bucket/prefix/``). Emits ``RowsExtracted``, ``SyncSeconds`` and
    ``SyncLagSeconds`` (how far the extract's bound is behind the source: a
    transaction left open there shows here); a failed sync raises (the
    template alarms on the function's errors) after alerting.
    """
    from brewline.load import open_warehouse
    from brewline.ops.alerts import alert_error
    from brewline.totesys.sync import sync

    settings = settings_from_aws()
    try:
        source, lake = _totesys(settings)
        if not lake or not source:
            raise ConfigError(
                "the sync needs BREWLINE_TOTESYS_LAKE and a 'totesys_source' URL in the secret"
            )
        with open_warehouse(
            settings.warehouse, lock_timeout=settings.lock_timeout, share=True
        ) as warehouse:
            report = sync(source, lake, warehouse, full=bool(event.get("full")))
    except (BrewlineError, OSError) as exc:  # the source, the warehouse or the lake
        logger.error("sync failed: %s", exc)
        metrics.add_metric(name="SyncsFailed", unit=MetricUnit.Count, value=1)
        alert_error(settings, "sync", exc)
        raise
    summary = report.to_dict()
    rows = sum(report.rows_extracted.values())
    logger.info("sync finished", extra={"sync": summary})
    metrics.add_metric(name="RowsExtracted", unit=MetricUnit.Count, value=rows)
    metrics.add_metric(
        name="SyncSeconds", unit=MetricUnit.Seconds, value=sum(report.seconds.values())
    )
    metrics.add_metric(
        name="SyncLagSeconds", unit=MetricUnit.Seconds, value=report.lag_seconds or 0.0
    )
    return summary
