"""Typed settings with one precedence: CLI flag > env ``BREWLINE_*`` > ``brewline.toml`` > default.

    >>> from brewline.config import Settings
    >>> Settings(warehouse="sales.duckdb").warehouse
    'sales.duckdb'

The TOML file is ``./brewline.toml`` unless ``BREWLINE_CONFIG`` names another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from brewline.errors import ConfigError
from brewline.ops.settings import AlertSettings, CheckSettings
from brewline.settings_base import CONFIG_VARIABLE, ENV_PREFIX, closest

__all__ = ["NOT_SETTINGS", "Settings", "load_settings", "unknown_variables"]

MIN_PII_KEY_LENGTH = 16


class Settings(CheckSettings, AlertSettings):
    """Everything Brewline can be told; each field documents itself.

    The ``check_*`` fields (thresholds of ``brewline check``) come from
    :class:`~brewline.ops.settings.CheckSettings`, the ``alert_*`` fields (webhook
    and e-mail) from :class:`~brewline.ops.settings.AlertSettings`; all are
    validated here, at start, so a bad setting fails before any work is done.
    """

    model_config = SettingsConfigDict(env_prefix="BREWLINE_", extra="forbid", frozen=True)

    landing: Path | str = Field(
        default=Path("landing"),
        description="Where the branch exports land: a folder, or s3://bucket/prefix/; "
        "`brewline run` and `brewline watch` read it by default.",
    )
    warehouse: str = Field(
        default="brewline.duckdb",
        description="A DuckDB file path (embedded default) or a postgresql:// URL.",
    )
    quarantine: Path | str | None = Field(
        default=None,
        description="Where raw rejected lines are kept: a folder (default "
        "`<landing>/_quarantine`) or, for an S3 landing area, s3://bucket/prefix/ (default "
        "`s3://<bucket>/_quarantine/`). Raw lines may hold personal data, so they never go "
        "to the warehouse.",
    )
    pii_key: SecretStr | None = Field(
        default=None,
        description="Secret for the keyed HMAC that turns a card into a customer token. "
        "Without it, no customer tokens are made. Keep it out of the warehouse and the repo.",
    )
    secret_id: str | None = Field(
        default=None,
        description="AWS Secrets Manager secret (name or ARN) holding JSON "
        '{"warehouse": ..., "pii_key": ...}: how the Lambda functions get them, so neither '
        "sits in plain environment values.",
    )
    require_pii_key: bool = Field(
        default=False,
        description="Refuse to start without `pii_key` (set it in production so "
        "returning-customer analytics never silently stop).",
    )
    redelivery: Literal["replace", "reject"] = Field(
        default="replace",
        description="A second file covering an already loaded (branch, trading day): "
        "`replace` lets the later delivery win, `reject` keeps the first and rejects the newcomer.",
    )
    max_item_price: Decimal = Field(
        default=Decimal("50.00"),
        description="An item priced above this is rejected as `absurd_price`.",
    )
    batch_files: int = Field(
        default=1000,
        ge=1,
        description="Files checked and committed together (a batch also closes at "
        "`batch_megabytes`). Each file is still all-or-nothing; batching pays each "
        "transaction's fixed cost once per batch, which matters for real ~300-sale files. "
        "1 = a transaction per file.",
    )
    batch_megabytes: float = Field(
        default=28.0,
        gt=0,
        description="A batch closes when its files reach this many megabytes (bounds memory).",
    )
    lock_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Seconds to wait for another runner to release the warehouse before giving up.",
    )
    watch_settle_seconds: float = Field(
        default=1.0,
        ge=0,
        description="`brewline watch` on a folder loads a file once its size and time have "
        "not changed for this many seconds (a copy in progress changes both with each "
        "write). A writer that may pause longer mid-file should write under a hidden name "
        "(`.name.csv.part`, never read) and rename it into place when done.",
    )
    retry_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a run keeps retrying a lost PostgreSQL connection (a server "
        "restarting, a network blip) before it stops; uncommitted files stay pending.",
    )
    earliest_sale_date: dt.date = Field(
        default=dt.date(2000, 1, 1),
        description="Sales dated before this day are rejected as `implausible_date` "
        "(a year 1, 1899 or 9999 is a broken export, not a sale).",
    )
    max_days_ahead: int = Field(
        default=1,
        ge=0,
        description="Sales dated more than this many days after the run started are rejected "
        "as `implausible_date`.",
    )

    @field_validator("landing", "quarantine", mode="before")
    @classmethod
    def _location(cls, value: object) -> object:
        """An ``s3://`` URL stays text (a path would fold its ``//``); anything else is a path."""
        if isinstance(value, str) and not value.startswith("s3://"):
            return Path(value)
        return value

    @field_validator("pii_key")
    @classmethod
    def _key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_PII_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_PII_KEY_LENGTH} characters")
        return value

    @property
    def quarantine_dir(self) -> Path:
        """The quarantine folder, defaulting to one inside the landing area."""
        if isinstance(self.quarantine, Path):
            return self.quarantine
        return Path(self.landing) / "_quarantine"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from CLI overrides (``None`` means "not given"), env and TOML.

    Raises :class:`ConfigError` with the offending setting named, never a traceback.

        >>> load_settings(warehouse=None, redelivery="reject").redelivery
        'reject'
    """
    settings = Settings.from_settings(None, **overrides)
    if settings.require_pii_key and settings.pii_key is None:
        raise ConfigError(
            "require_pii_key is on but no key is set: export BREWLINE_PII_KEY "
            f"(at least {MIN_PII_KEY_LENGTH} characters) or set pii_key in brewline.toml"
        )
    return settings


NOT_SETTINGS = (
    CONFIG_VARIABLE,
    "BREWLINE_TOTESYS_LAKE",
    "BREWLINE_TOTESYS_SOURCE",
    "BREWLINE_TOOLS_VENV",
    "BREWLINE_TEST_",
    "BREWLINE_GRAFANA_",
)
"""``BREWLINE_`` variables (or prefixes, ending in ``_``) that are not settings: the
settings file, the sync Lambda's lake and source, and those of the tests and of the
Grafana provisioning, which may share an environment with Brewline."""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``BREWLINE_*`` variable that is no setting (a typo is otherwise
    ignored without a word: the default is used), with the closest setting's variable.

        >>> [found] = unknown_variables({"BREWLINE_WAREHOSE": "x", "BREWLINE_WAREHOUSE": "y"})
        >>> found.endswith("BREWLINE_WAREHOSE is not a Brewline setting and is ignored "
        ...                "(did you mean BREWLINE_WAREHOUSE?)")
        True
    """
    fields = list(Settings.model_fields)
    warnings = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or _not_a_setting(upper):
            continue
        name = upper.removeprefix(ENV_PREFIX).lower()
        if name in fields:
            continue
        guess = closest(name, fields)
        hint = f" (did you mean {ENV_PREFIX}{guess.upper()}?)" if guess else ""
        warnings.append(
            f"environment variable {variable} is not a Brewline setting and is ignored{hint}"
        )
    return warnings


def _not_a_setting(variable: str) -> bool:
    return any(
        variable.startswith(other) if other.endswith("_") else variable == other
        for other in NOT_SETTINGS
    )
