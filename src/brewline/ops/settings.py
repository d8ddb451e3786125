"""The operations sections of the settings: data-check thresholds and where alerts go.

Both are plain pydantic settings (no Polars, no network), so
:class:`brewline.config.Settings` can be made of them and imported anywhere at
little cost. Each field is prefixed (``check_``, ``alert_``) so it joins the main
settings as is; :meth:`~brewline.settings_base.BrewlineSettings.from_settings`
builds a section from the main settings, the environment and the TOML file::

    >>> CheckSettings.from_settings(None, check_cutoff_hour=9).check_cutoff_hour
    9
    >>> AlertSettings.from_settings(None).enabled  # doctest: +SKIP
    False
"""

from __future__ import annotations

from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from brewline.settings_base import BrewlineSettings

__all__ = ["AlertSettings", "CheckSettings"]


class CheckSettings(BrewlineSettings):
    """Thresholds of ``brewline check``; env ``BREWLINE_<FIELD>``, or the same key in the TOML.

    Every field is prefixed ``check_`` so it can join :class:`brewline.config.Settings` as is.
    """

    check_cutoff_hour: int = Field(
        default=10,
        ge=0,
        le=23,
        description="Hour of the day (branch local time) by which every branch's data for "
        "the previous day must be loaded. Before it, freshness expects the day before yesterday.",
    )
    check_closed_after_days: int = Field(
        default=14,
        ge=1,
        description="A branch with no data for more than this many days before the due day "
        "is reported as a warning (closed or renamed?) instead of failing every day.",
    )
    check_window_days: int = Field(
        default=1,
        ge=1,
        description="Trading days, ending on the due day, that the volume and "
        "new-branch/new-product checks examine.",
    )
    check_volume_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A branch-day fails the volume check when its sales are below this "
        "fraction of the branch's trailing mean.",
    )
    check_volume_trailing_days: int = Field(
        default=7,
        ge=1,
        description="Calendar days before a branch-day whose sales make its trailing mean "
        "(days without data are left out of the mean; freshness reports them).",
    )
    check_volume_min_days: int = Field(
        default=3,
        ge=1,
        description="Fewest trailing days with data needed to judge a branch-day's volume; "
        "with fewer the branch-day is ok with 'not enough history'.",
    )
    check_max_reject_rate: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Fail when rejected rows / rows read over the latest runs exceeds this "
        "fraction (whole rejected files count all their rows).",
    )
    check_source_stale_minutes: int = Field(
        default=60,
        ge=1,
        description="An incremental source (totesys) fails freshness when a table's "
        "watermark (the source's clock when its last extract began) is more than this many "
        "minutes behind the clock: syncs stopped or failing.",
    )
    check_marts_days: int = Field(
        default=35,
        ge=1,
        description="Trading days, ending on the due day, over which the marts check "
        "compares every mart with the facts (with their months and the customers who "
        "bought then); the whole history of a large chain takes minutes.",
    )
    check_totesys_source: SecretStr | None = Field(
        default=None,
        description="The totesys source (postgresql:// URL of a read-only role) that "
        "`check` reconciles with the lake and the warehouse, table by table (with "
        "check_totesys_lake); unset = no reconciliation. A secret: never printed.",
    )
    check_totesys_lake: str | None = Field(
        default=None, description="The totesys lake (folder or s3://) that sync writes."
    )
    check_reject_runs: int = Field(
        default=1,
        ge=1,
        description="How many of the latest runs that read any rows the reject rate covers.",
    )


class AlertSettings(BrewlineSettings):
    """Where alerts go; env ``BREWLINE_<FIELD>``, or the same key in the TOML.

    No webhook URL and no SMTP host means no alerts. Every field is prefixed
    ``alert_`` so it can join :class:`brewline.config.Settings` as is.
    """

    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack-compatible incoming webhook (http:// or https://) that receives "
        'JSON {"text": ...}. A secret (it holds a token): never printed.',
    )
    alert_webhook_blocks: bool = Field(
        default=False,
        description="Also send Slack Block Kit `blocks` (a header and a section) beside `text`.",
    )
    alert_smtp_host: str | None = Field(
        default=None, description="SMTP server for e-mail alerts; unset = no e-mail."
    )
    alert_smtp_port: int = Field(
        default=587, ge=1, le=65535, description="SMTP port (587 = submission with STARTTLS)."
    )
    alert_smtp_starttls: bool = Field(
        default=True,
        description="Upgrade the SMTP connection with STARTTLS (certificate verified) "
        "before logging in and sending. Turn off only for a local relay.",
    )
    alert_smtp_user: str | None = Field(
        default=None, description="SMTP login; unset = send without logging in."
    )
    alert_smtp_password: SecretStr | None = Field(
        default=None,
        description="SMTP password, from BREWLINE_ALERT_SMTP_PASSWORD only (never the TOML); "
        "required when alert_smtp_user is set.",
    )
    alert_email_from: str | None = Field(
        default=None, description="Sender address of e-mail alerts (required with a host)."
    )
    alert_email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Recipients of e-mail alerts: a TOML list, or comma-separated in the env "
        "(required with a host).",
    )
    alert_topic_arn: str | None = Field(
        default=None,
        description="AWS SNS topic that receives alerts (subject = title, message = body), "
        "with the standard AWS configuration; unset = no SNS.",
    )
    alert_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the webhook or mail server."
    )
    alert_warnings: bool = Field(
        default=False,
        description="Also alert on check warnings (new branches or products, a branch that "
        "looks closed), not only on failures.",
    )

    @field_validator("alert_email_to", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _http_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _email_complete(self) -> Self:
        if self.alert_smtp_host is None:
            return self
        if not self.alert_email_from or not self.alert_email_to:
            raise ValueError("alert_email_from and alert_email_to are required with a host")
        if self.alert_smtp_user is not None and self.alert_smtp_password is None:
            raise ValueError(
                "alert_smtp_user is set but BREWLINE_ALERT_SMTP_PASSWORD is not "
                "(the password is read from the environment only)"
            )
        return self

    @property
    def enabled(self) -> bool:
        """Whether any channel is configured."""
        return bool(self.channels)

    @property
    def channels(self) -> list[str]:
        """The configured channels, named as in :class:`brewline.ops.alerts.DeliveryFailure`."""
        configured = {
            "webhook": self.alert_webhook_url,
            "email": self.alert_smtp_host,
            "sns": self.alert_topic_arn,
        }
        return [channel for channel, value in configured.items() if value is not None]
