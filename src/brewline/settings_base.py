"""The one way Brewline reads settings: init (CLI) > env ``BREWLINE_*`` > TOML > defaults.

Every settings class (:class:`brewline.config.Settings` and the sections it is
made of, :class:`brewline.ops.settings.CheckSettings` and
:class:`brewline.ops.settings.AlertSettings`) derives from :class:`BrewlineSettings`,
so they all read the same sources in the same order and fail the same way: a
:class:`~brewline.errors.ConfigError` naming each bad setting, never its value.
The TOML file is ``./brewline.toml`` unless ``BREWLINE_CONFIG`` names another;
secrets that belong in the environment only (:data:`ENV_ONLY`) are refused there.
A missing ``./brewline.toml`` means "no file"; a file ``BREWLINE_CONFIG`` names must
exist (``BREWLINE_CONFIG=/dev/null`` reads none), and a file that is not TOML is a
:class:`~brewline.errors.ConfigError` naming it, never a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from brewline.errors import ConfigError

__all__ = [
    "CONFIG_VARIABLE",
    "DEFAULT_CONFIG",
    "ENV_ONLY",
    "ENV_PREFIX",
    "BrewlineSettings",
    "TomlWithoutSecrets",
    "closest",
    "config_file",
    "read_toml",
]

ENV_PREFIX = "BREWLINE_"
"""Every setting ``name`` may come from the environment variable ``BREWLINE_<NAME>``."""

ENV_ONLY = ("alert_smtp_password",)
"""Secrets read from the environment only, never from the TOML file."""

CONFIG_VARIABLE = "BREWLINE_CONFIG"
"""The environment variable naming the TOML file."""

DEFAULT_CONFIG = Path("brewline.toml")
"""The TOML file read when :data:`CONFIG_VARIABLE` is not set (optional)."""


class TomlWithoutSecrets(InitSettingsSource):
    """The TOML file's settings, refusing secrets that must only come from the environment.

    ``named`` says the file was named by :data:`CONFIG_VARIABLE`, so it must exist.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path, *, named: bool):
        super().__init__(settings_cls, read_toml(path, named=named))

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

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path, named = config_file()
        return (init_settings, env_settings, TomlWithoutSecrets(settings_cls, path, named=named))

    @classmethod
    def from_settings(cls, settings: BaseModel | None = None, **overrides: Any) -> Self:
        """This class's settings: CLI ``overrides`` > fields of ``settings`` > env > TOML.

        Fields the main :class:`~brewline.config.Settings` already carries (it resolved
        them with the same precedence) are taken from it; the others come from the
        environment and the TOML file. ``None`` overrides mean "not given".
        Invalid values raise :class:`ConfigError`, one line naming each bad setting and
        where its value came from (option, environment variable, or file and line).

        >>> from brewline.ops.settings import CheckSettings
        >>> CheckSettings.from_settings(None, check_cutoff_hour=9).check_cutoff_hour
        9
        """
        given: dict[str, Any] = {}
        if settings is not None:
            known = type(settings).model_fields
            given = {name: getattr(settings, name) for name in cls.model_fields if name in known}
        given.update({name: value for name, value in overrides.items() if value is not None})
        try:
            return cls(**given)
        except ValidationError as exc:
            raise _invalid(exc, overrides, list(cls.model_fields)) from None


def config_file() -> tuple[Path, bool]:
    """The TOML file to read, and whether :data:`CONFIG_VARIABLE` named it (so it must exist)."""
    named = os.environ.get(CONFIG_VARIABLE, "")
    return Path(named or DEFAULT_CONFIG), bool(named)


def closest(name: str, names: list[str]) -> str | None:
    """The valid name ``name`` was most likely meant to be (a typo), or None.

    >>> closest("warehose", ["landing", "warehouse"])
    'warehouse'
    """
    found = difflib.get_close_matches(name.lower(), names, n=1)
    return found[0] if found else None


def read_toml(path: Path, *, named: bool) -> dict[str, Any]:
    """The settings in the TOML file at ``path``; ``{}`` when it is the default and absent.

    Raises :class:`ConfigError` naming the file when it is named but missing, is a
    folder, cannot be read or is not TOML (the message gives the line, not the content).
    """
    if not path.exists():
        if named:
            raise ConfigError(f"no such file (named by {CONFIG_VARIABLE})", source=str(path))
        return {}
    if path.is_dir():
        raise ConfigError("is a folder, not a TOML settings file", source=str(path))
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not a valid TOML settings file ({exc})", source=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not a TOML settings file (not UTF-8 text)", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read it ({exc.strerror})", source=str(path)) from None


def _invalid(exc: ValidationError, overrides: Mapping[str, Any], fields: list[str]) -> ConfigError:
    """One readable line: each bad setting, where it came from and what is wrong (never
    the value). Pydantic's "Extra inputs are not permitted" becomes the closest valid name."""
    problems = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        origin = _origin(name, overrides)
        # A validator's own message is the message; pydantic prefixes it.
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            guess = closest(name, fields)
            message = f"unknown setting {name!r}" + (f" (did you mean {guess!r}?)" if guess else "")
        elif name and not origin.startswith(("option ", "environment variable ")):
            message = f"{name}: {message}"  # a file's line does not say which setting it is
        problems.append(f"{origin}: {message}")
    return ConfigError("invalid settings: " + "; ".join(problems))


def _origin(name: str, overrides: Mapping[str, Any]) -> str:
    """Where the value of setting ``name`` came from, by the precedence of the sources."""
    if not name:
        return "settings"  # a rule across settings (e.g. an e-mail host without recipients)
    if overrides.get(name) is not None:
        return f"option --{name.replace('_', '-')}"
    variable = f"{ENV_PREFIX}{name}".upper()
    # pydantic-settings matches variable names case-insensitively; name the one set.
    found = next((key for key in os.environ if key.upper() == variable), None)
    if found:
        return f"environment variable {found}"
    path, _named = config_file()
    line = _toml_line(path, name)
    return f"{path} line {line}" if line else str(path)


def _toml_line(path: Path, key: str) -> int | None:
    """The line of ``path`` that sets ``key`` (or opens table ``[key]``), if it can be found.

    tomllib keeps no positions; settings are top-level keys, so matching the start
    of a line is enough. The file was read already, so it is readable UTF-8 text.
    """
    quoted = rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
    pattern = re.compile(rf"^\s*(?:{quoted}\s*=|\[+\s*{quoted}\s*[\].])")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return next((n for n, text in enumerate(lines, 1) if pattern.match(text)), None)
