"""propdesk's settings: pydantic-settings models loaded from a TOML file and ``PROPDESK_*`` environment variables.

Precedence, highest first: keyword arguments (the CLI's options), environment variables (``PROPDESK_LOG_LEVEL``,
nested with a double underscore: ``PROPDESK_DATA__CACHE_DIR``), the TOML file, the defaults below. The TOML file is
the one named by ``load_settings(path)``, else ``$PROPDESK_CONFIG``, else ``~/.config/propdesk/propdesk.toml`` when it
exists. Settings objects are frozen: a running node cannot be reconfigured behind its back.

Secrets (API keys) are never part of these models' ``repr``: fields that hold one are ``SecretStr``.

Raises:
    ConfigError: from :func:`load_settings` for a missing or malformed file, or a value that fails validation; the
        message names the file and the offending key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from propdesk.core.errors import ConfigError
from propdesk.core.textfiles import parse_toml, read_utf8

DEFAULT_CONFIG_PATH = Path("~/.config/propdesk/propdesk.toml").expanduser()
_DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser() / "propdesk"


class DataSettings(BaseModel):
    """Where propdesk keeps its own files.

    Attributes:
        data_dir: the user's propdesk data directory (journal database, bar catalog).
        catalog_dir: the Parquet bar catalog; defaults to ``<data_dir>/catalog``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = _DEFAULT_DATA_DIR
    catalog_dir: Path | None = None

    @property
    def catalog_path(self) -> Path:
        """The bar catalog directory (``catalog_dir`` or ``<data_dir>/catalog``)."""
        return self.catalog_dir if self.catalog_dir is not None else self.data_dir / "catalog"


class LoggingSettings(BaseModel):
    """Logging: level and whether to log as JSON lines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = False


class DatabaseSettings(BaseModel):
    """The journal database.

    Attributes:
        url: an SQLAlchemy URL (``sqlite:///path``, ``postgresql://user@host/db``); ``None`` means the SQLite file
            under the user's data directory. It may hold a password, so it is a ``SecretStr`` (never printed).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr | None = None


class Settings(BaseSettings):
    """All of propdesk's settings. See the module docstring for sources and precedence."""

    model_config = SettingsConfigDict(
        env_prefix="PROPDESK_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    data: DataSettings = Field(default_factory=DataSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    projectx: dict[str, Any] = Field(default_factory=dict)
    """The ``[projectx]`` table: hosts and options of the ProjectX adapter (any ``ProjectXSettings`` key; validated
    by ``propdesk.sessions.live.projectx_settings`` where it is used). Credentials are refused there: they come from the
    environment only."""
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only keyword arguments: :func:`load_settings` merges file, environment and overrides in its own order."""
        return (init_settings,)


def _read_toml(path: Path) -> dict[str, Any]:
    where = f"config file {path}"
    return parse_toml(read_utf8(path, where), where)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides() -> dict[str, Any]:
    """``PROPDESK_A__B=value`` as ``{"a": {"b": "value"}}`` for the keys the models know."""
    out: dict[str, Any] = {}
    for name, value in os.environ.items():
        if not name.startswith("PROPDESK_") or name == "PROPDESK_CONFIG":
            continue
        parts = name[len("PROPDESK_") :].lower().split("__")
        if parts[0] not in Settings.model_fields:
            continue
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the TOML file, the environment and ``overrides`` (highest precedence).

    Args:
        path: a TOML file; ``None`` means ``$PROPDESK_CONFIG`` or the default path when it exists.
        overrides: top-level sections as dicts, e.g. ``logging={"level": "DEBUG"}``.

    Raises:
        ConfigError: the file is missing or malformed, or a value is invalid (the message names the key).
    """
    explicit = path if path is not None else os.environ.get("PROPDESK_CONFIG")
    file_path = Path(explicit).expanduser() if explicit else DEFAULT_CONFIG_PATH
    values: dict[str, Any] = {}
    source = "defaults"
    if explicit or file_path.exists():
        values = _read_toml(file_path)
        source = str(file_path)
    values = _merge(values, _env_overrides())
    values = _merge(values, overrides)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({source}): {problems}") from None
