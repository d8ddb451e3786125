"""The one way Brewline reads settings: init (CLI) > env ``BREWLINE_*`` > TOML > defaults.

Every settings class (:class:`brewline.config.Settings` and the sections it is
made of, :class:`brewline.checks.CheckSettings` and
:class:`brewline.alerts.AlertSettings`) derives from :class:`BrewlineSettings`,
so they all read the same sources in the same order. The TOML file is
``./brewline.toml`` unless ``BREWLINE_CONFIG`` names another; secrets that
belong in the environment only (:data:`ENV_ONLY`) are refused there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from brewline.errors import ConfigError

__all__ = ["ENV_ONLY", "BrewlineSettings", "TomlWithoutSecrets"]

ENV_ONLY = ("alert_smtp_password",)
"""Secrets read from the environment only, never from the TOML file."""


class TomlWithoutSecrets(TomlConfigSettingsSource):
    """The TOML source, refusing secrets that must only come from the environment."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        for name in ENV_ONLY:
            if name in values:
                raise ConfigError(
                    f"{name} must not be written in the TOML file: "
                    f"set BREWLINE_{name.upper()} in the environment instead"
                )
        return values


class BrewlineSettings(BaseSettings):
    """Base of every settings class: env prefix ``BREWLINE_`` and one precedence."""

    model_config = SettingsConfigDict(env_prefix="BREWLINE_", extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("BREWLINE_CONFIG", "brewline.toml"))
        return (init_settings, env_settings, TomlWithoutSecrets(settings_cls, toml_file))
