"""propdesk's one configuration: :class:`Settings`, read by pydantic-settings from a TOML file and ``PROPDESK_*``
environment variables, loaded once per CLI process (:func:`configure` / :func:`get_settings`).

**Sections.** ``[accounts]``, ``[database]``, ``[journal]``, ``[risk]``, ``[projectx]``, ``[api]``, ``[emulator]``,
``[serve]`` with its ``[[serve.accounts]]`` and ``[[serve.strategies]]`` tables (see each model below; units are in
the field names: ``*_s`` seconds, ``port`` a TCP port).

**Precedence**, highest first: a command's own options (applied by the command), environment variables, the TOML
file, the defaults. A key's variable is ``PROPDESK_<SECTION>__<KEY>`` (e.g. ``PROPDESK_PROJECTX__API_BASE``); the
older names ``PROPDESK_DATABASE_URL``, ``PROPDESK_PROJECTX_USERNAME``, ``PROPDESK_PROJECTX_API_KEY`` and
``PROPDESK_PROJECTX_API_KEY_FILE`` are kept as aliases (:data:`ENV_ALIASES`; the nested name wins when both are set).

**The file** is ``--config PATH``, else ``$PROPDESK_CONFIG``, else ``./propdesk.toml`` when it exists, else
``<user config dir>/propdesk.toml`` (``platformdirs.user_config_dir("propdesk")``, ``~/.config/propdesk`` on
Linux) when it exists, else none (the defaults). A file named by ``--config`` or ``$PROPDESK_CONFIG`` must exist.
It is read through :mod:`propdesk.core.textfiles` (a missing file, a directory, non-UTF-8 bytes or TOML nested too
deeply is one ``ConfigError`` line).

**Credentials** (the ProjectX user name and API key, the database password) come only from the environment, or
from a file whose path the environment gives (``PROPDESK_PROJECTX__API_KEY_FILE``,
``PROPDESK_DATABASE__PASSWORD_FILE``): the TOML file holding one, or a database URL with a password, is refused.
They are :class:`~pydantic.SecretStr`, so they appear in no ``repr``, log line or error message.

``propdesk init`` writes :func:`render_toml`: every setting with its description, unit and default.

Raises:
    ConfigError: from :func:`load_settings` for an unreadable or malformed file, a credential in the file, or a
        value that fails validation; the one-line message names the file or the environment variable and the key.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from propdesk.core.errors import ConfigError
from propdesk.core.textfiles import parse_toml, read_utf8
from propdesk.model.commands import INSTANCE_NAME_RE

__all__ = [
    "CONFIG_ENV",
    "ENV_ALIASES",
    "AccountsSettings",
    "ApiSettings",
    "DatabaseSettings",
    "EmulatorSettings",
    "JournalSettings",
    "ProjectXSection",
    "RiskSection",
    "ServeAccount",
    "ServeSettings",
    "ServeStrategy",
    "Settings",
    "configure",
    "find_config_file",
    "get_settings",
    "load_settings",
    "render_toml",
    "user_config_path",
]

ENV_PREFIX: Final = "PROPDESK_"
CONFIG_ENV: Final = "PROPDESK_CONFIG"
"""The environment variable naming the config file (``--config`` wins over it)."""
CONFIG_FILENAME: Final = "propdesk.toml"

ENV_ALIASES: Final[dict[str, tuple[str, str]]] = {
    "PROPDESK_DATABASE_URL": ("database", "url"),
    "PROPDESK_PROJECTX_USERNAME": ("projectx", "username"),
    "PROPDESK_PROJECTX_API_KEY": ("projectx", "api_key"),
    "PROPDESK_PROJECTX_API_KEY_FILE": ("projectx", "api_key_file"),
}
"""Documented older environment names -> ``(section, key)``; ``PROPDESK_<SECTION>__<KEY>`` wins over them."""

_ENV_ONLY: Final = "env_only"
_PASSWORD_IN_URL: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:[^@\s]+@")


def user_config_path() -> Path:
    """``<platformdirs user config dir>/propdesk.toml`` (``~/.config/propdesk/propdesk.toml`` on Linux)."""
    return Path(platformdirs.user_config_dir("propdesk")) / CONFIG_FILENAME


def _env_only(description: str) -> Any:
    """A credential field: ``None`` by default, never read from the TOML file."""
    return Field(default=None, description=description, json_schema_extra={_ENV_ONLY: True})


def _read_secret_file(path: Path, var: str) -> SecretStr:
    """The stripped text of the secret file ``path`` named by ``var``. Raises ConfigError (never shows the text)."""
    return SecretStr(read_utf8(path.expanduser(), f"{var} file {path}").strip())


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccountsSettings(_Section):
    """Which broker account propdesk trades."""

    default: str | None = Field(
        default=None,
        description="ProjectX account (id or name) that `propdesk run --broker projectx` trades when --account is "
        "not given; unset = the user's only active account",
    )


class DatabaseSettings(_Section):
    """The journal database (the URL forms and drivers: ``propdesk.storage.db``)."""

    url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the journal (sqlite:///path or postgresql://user@host/db); unset = the SQLite "
        "file journal.sqlite3 in the user data directory. A URL with a password only from the environment",
    )
    password: SecretStr | None = _env_only("password added to the database URL")
    password_file: Path | None = _env_only("file holding the database password")

    @model_validator(mode="after")
    def _password_from_file(self) -> DatabaseSettings:
        if self.password is None and self.password_file is not None:
            secret = _read_secret_file(self.password_file, "PROPDESK_DATABASE__PASSWORD_FILE")
            object.__setattr__(self, "password", secret)
        return self


class JournalSettings(_Section):
    """What the journal records by default."""

    enabled: bool = Field(
        default=True, description="journal `propdesk run`'s orders, fills and positions (--journal/--no-journal)"
    )
    bar_cache: bool = Field(
        default=True, description="live warm-up bars through the journal's bar cache (--bar-cache/--no-bar-cache)"
    )


class RiskSection(_Section):
    """The risk configuration used when a command gets neither ``--risk`` nor ``--risk-config``."""

    preset: str | None = Field(
        default=None, description="risk preset (propdesk presets), e.g. topstep-50k-combine; unset = none"
    )
    config_file: Path | None = Field(
        default=None, description="per-account risk configuration file (TOML, as --risk-config); unset = none"
    )


class ProjectXSection(_Section):
    """The ProjectX (TopstepX) adapter: hosts, timeouts and options.

    Every key is a :class:`propdesk.brokers.projectx.config.ProjectXSettings` field with the same default (a test
    checks it); ``adapter_table`` gives the keys that adapter takes."""

    api_base: str = Field(default="https://api.topstepx.com", description="REST host (URL)")
    user_hub_url: str = Field(default="https://rtc.topstepx.com/hubs/user", description="user hub (URL)")
    market_hub_url: str = Field(default="https://rtc.topstepx.com/hubs/market", description="market hub (URL)")
    username: str | None = _env_only("ProjectX user name")
    api_key: SecretStr | None = _env_only("ProjectX API key")
    api_key_file: Path | None = _env_only("file holding the ProjectX API key")
    bracket_modes: dict[int, Literal["position", "auto_oco"]] = Field(
        default_factory=dict,
        description="per account id: position (TopstepX default, brackets synthesized) or auto_oco (native)",
    )
    order_place_style: Literal["brackets", "linked"] = Field(
        default="brackets", description="Order/place linking: brackets (newer docs) or linked (older docs)"
    )
    request_timeout_s: float = Field(default=10.0, gt=0, description="HTTP request timeout (seconds)")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="HTTP connect timeout (seconds)")
    validate_interval_s: float = Field(default=43200.0, gt=0, description="Auth/validate at least this often (s)")
    refresh_before_expiry_s: float = Field(
        default=3600.0, ge=0, description="renew the token when less than this lifetime is left (seconds)"
    )
    token_check_interval_s: float = Field(default=60.0, gt=0, description="token check interval (seconds)")
    hub_connect_timeout_s: float = Field(default=30.0, gt=0, description="wait for both hubs at connect (seconds)")
    reconnect_base_s: float = Field(default=1.0, gt=0, description="hub reconnect backoff, first wait (seconds)")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="hub reconnect backoff, longest wait (seconds)")
    stale_feed_s: float = Field(default=30.0, gt=0, description="a silent contract is stale after (seconds)")
    stale_check_interval_s: float = Field(default=5.0, gt=0, description="stale-feed watchdog interval (seconds)")
    reconnect_on_stale: bool = Field(default=True, description="reconnect the market hub when every feed is stale")
    confirm_timeout_s: float = Field(
        default=3.0, gt=0, description="verify through REST when a hub event is this late (seconds)"
    )
    max_bars_per_request: int = Field(
        default=20_000, ge=1, le=20_000, description="History/retrieveBars limit (bars, at most 20000)"
    )
    general_budget: dict[str, float] | None = Field(
        default=None,
        description="general rate budget {count, window_s, reserve_fraction}; unset = 200 requests / 60 s, 25 % "
        "kept for cancel/close/flatten",
    )
    history_budget: dict[str, float] | None = Field(
        default=None, description="History/retrieveBars budget {count, window_s}; unset = 30 requests / 30 s"
    )
    retry: dict[str, float] | None = Field(
        default=None,
        description="retries of reads {max_retries, base_s, max_s, default_retry_after_s}; unset = 3, 0.5, 8, 60",
    )
    breaker: dict[str, float] | None = Field(
        default=None, description="circuit breaker {failure_threshold, reset_timeout_s}; unset = 5, 30"
    )

    @field_validator("api_base", "user_hub_url", "market_hub_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _key_from_file(self) -> ProjectXSection:
        if self.api_key is None and self.api_key_file is not None:
            secret = _read_secret_file(self.api_key_file, "PROPDESK_PROJECTX__API_KEY_FILE")
            object.__setattr__(self, "api_key", secret)
        return self

    def adapter_table(self) -> dict[str, Any]:
        """The keys for ``ProjectXSettings``: everything but the credentials and the unset optional tables."""
        out = self.model_dump(exclude={"username", "api_key", "api_key_file"})
        return {k: v for k, v in out.items() if v is not None}


class ApiSettings(_Section):
    """propdesk's HTTP API (``propdesk serve``)."""

    host: str = Field(default="127.0.0.1", description="interface the API listens on (host name or address)")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port of the API")


class EmulatorSettings(_Section):
    """The local ProjectX-compatible gateway (``propdesk gateway``)."""

    config_file: Path | None = Field(
        default=None, description="gateway configuration file (TOML or JSON, as --config); unset = built-in"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="TCP port on 127.0.0.1; unset = the gateway config's (8900)"
    )
    data_dir: Path | None = Field(default=None, description="folder the feeds are read from; unset = the config's")
    speed: float | None = Field(
        default=None, gt=0, description="replay speed (multiple of real time); unset = the config's"
    )


DEFAULT_SERVE_DATA: Final = Path("es_1min_topstepx_esz5/ES_1min_20250831_20251114.csv")
"""The bar file a simulated ``propdesk serve`` account replays when it names none (under ``[serve] data_dir``)."""


class ServeAccount(_Section):
    """One account of ``propdesk serve`` (a ``[[serve.accounts]]`` table)."""

    name: str = Field(
        min_length=1, max_length=64, description="the account's name in the service (unique)", examples=["combine"]
    )
    broker: Literal["sim", "projectx"] = Field(
        default="sim", description="sim (the simulated exchange replaying a bar file) or projectx (live)"
    )
    account_id: int = Field(default=1, ge=1, description="sim: the simulated account's id (unique in the service)")
    account: str | None = Field(
        default=None, description="projectx: the account id or name (unset = accounts.default, else the only one)"
    )
    risk: str = Field(
        default="topstep-50k-combine", description="risk preset (propdesk presets list); empty = no risk engine"
    )
    risk_config: Path | None = Field(default=None, description="per-account risk configuration file (TOML)")
    balance_usd: str | None = Field(
        default=None, description="sim: starting balance in USD (unset = the risk preset's, else 50000)"
    )
    data: Path | None = Field(
        default=None,
        description=f"sim: the bar file replayed, relative to [serve] data_dir unless absolute (unset = "
        f"{DEFAULT_SERVE_DATA.as_posix()})",
    )
    symbol: str | None = Field(
        default=None,
        description="the contract (ESZ5) or root (ES): sim: of the bars (unset = the file's); projectx: its "
        "instances' default (unset = ES's active contract)",
    )


class ServeStrategy(_Section):
    """One strategy instance ``propdesk serve`` starts with (a ``[[serve.strategies]]`` table); instances added or
    changed at runtime are kept in the journal, which wins over this table for an instance it already holds."""

    name: str = Field(
        description="instance name, its orders' tag: [a-z0-9_-], 1-64 characters, unique", examples=["sma-es"]
    )
    strategy: str = Field(
        description="bundled name, installed entry point, module:Class or path/to/file.py:Class",
        examples=["sma_cross"],
    )
    account: str = Field(description="the name of the [[serve.accounts]] account it trades", examples=["combine"])
    symbol: str | None = Field(default=None, description="contract or root it trades (unset = the account's)")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="its parameters (as --param; the strategy's defaults for the rest)"
    )
    state: Literal["running", "paused", "stopped"] = Field(default="running", description="the state it starts in")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not INSTANCE_NAME_RE.match(value):
            raise ValueError(f"instance name {value!r} must match {INSTANCE_NAME_RE.pattern}")
        return value


class ServeSettings(_Section):
    """``propdesk serve``: the accounts it runs and the strategy instances it starts with (none configured: one
    simulated 50K Combine account replaying the ES file with one sma_cross instance)."""

    speed: float = Field(
        default=3600.0,
        ge=0,
        description="replay speed of sim accounts, a multiple of real time (0 = as fast as possible)",
    )
    data_dir: Path = Field(
        default=Path("../shared/data"), description="folder sim accounts' data files are relative to"
    )
    status_s: float = Field(default=1.0, gt=0, description="seconds between two refreshes of the status view")
    accounts: list[ServeAccount] = Field(default_factory=list, description="the accounts ([[serve.accounts]])")
    strategies: list[ServeStrategy] = Field(
        default_factory=list, description="the initial strategy instances ([[serve.strategies]])"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServeSettings:
        names = [a.name for a in self.accounts]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"serve.accounts: the account name {dup[0]!r} is used twice")
        ids = [a.account_id for a in self.accounts if a.broker == "sim"]
        dup_ids = sorted({i for i in ids if ids.count(i) > 1})
        if dup_ids:
            raise ValueError(f"serve.accounts: the sim account_id {dup_ids[0]} is used twice")
        inst = [s.name for s in self.strategies]
        dup = sorted({n for n in inst if inst.count(n) > 1})
        if dup:
            raise ValueError(f"serve.strategies: the instance name {dup[0]!r} is used twice")
        for s in self.strategies:
            if self.accounts and s.account not in names:
                raise ValueError(f"serve.strategies: instance {s.name!r} names the unknown account {s.account!r}")
        return self


class Settings(BaseSettings):
    """All of propdesk's settings (frozen). See the module docstring for sources, precedence and credentials."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        toml_file=None,
    )

    accounts: AccountsSettings = Field(default_factory=AccountsSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)
    risk: RiskSection = Field(default_factory=RiskSection)
    projectx: ProjectXSection = Field(default_factory=ProjectXSection)
    api: ApiSettings = Field(default_factory=ApiSettings)
    emulator: EmulatorSettings = Field(default_factory=EmulatorSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then ``PROPDESK_<SECTION>__<KEY>``, then the alias names, then the TOML file
        (the one :func:`load_settings` names, else :func:`find_config_file`)."""
        loading = _LOADING.get()
        environ, path = loading if loading is not None else (os.environ, find_config_file(None, os.environ))
        return (
            init_settings,
            _Env(settings_cls, environ),
            _AliasEnv(settings_cls, environ),
            _Toml(settings_cls, path),
        )


_LOADING: ContextVar[tuple[Mapping[str, str], Path | None] | None] = ContextVar("_LOADING", default=None)
"""The environment and file of the :func:`load_settings` call in progress (read by the sources above)."""


class _Env(EnvSettingsSource):
    """``PROPDESK_<SECTION>__<KEY>`` from a given mapping (``os.environ`` unless a caller passes its own)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class _AliasEnv(PydanticBaseSettingsSource):
    """The documented older names of :data:`ENV_ALIASES`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` builds the whole mapping."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for var, (section, key) in ENV_ALIASES.items():
            value = self._environ.get(var)
            if value:
                out.setdefault(section, {})[key] = value
        return out


class _Toml(TomlConfigSettingsSource):
    """The TOML file read through :mod:`propdesk.core.textfiles`; a credential in it is refused."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        self._path = path
        super().__init__(settings_cls, toml_file=path)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        if self._path is None:
            return {}
        where = f"config file {self._path}"
        doc = parse_toml(read_utf8(self._path, where), where)
        _refuse_credentials(doc, self._path)
        return doc


def _env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def _refuse_credentials(doc: dict[str, Any], path: Path) -> None:
    """Raise ConfigError when the file ``doc`` holds a credential (its value is never shown)."""
    for section, field in Settings.model_fields.items():
        table = doc.get(section)
        model = field.annotation
        if not isinstance(table, dict) or not isinstance(model, type) or not issubclass(model, BaseModel):
            continue
        for key, info in model.model_fields.items():
            extra = info.json_schema_extra
            if key in table and isinstance(extra, dict) and extra.get(_ENV_ONLY):
                raise ConfigError(
                    f"config file {path}: [{section}] {key} is a credential and is never read from a file: "
                    f"set {_env_name(section, key)} in the environment instead"
                )
    database = doc.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str) and _PASSWORD_IN_URL.match(database["url"]):
        raise ConfigError(
            f"config file {path}: [database] url holds a password: remove it and set "
            "PROPDESK_DATABASE__PASSWORD (or PROPDESK_DATABASE__PASSWORD_FILE) in the environment"
        )


def find_config_file(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file to read: ``path``, else ``$PROPDESK_CONFIG``, else ``./propdesk.toml`` when it exists, else
    :func:`user_config_path` when it exists, else ``None``. An explicitly named file is returned even when missing
    (reading it then raises ConfigError)."""
    env = os.environ if environ is None else environ
    explicit = path if path is not None else env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (Path(CONFIG_FILENAME), user_config_path()):
        if candidate.is_file():
            return candidate
    return None


def _origin(loc: tuple[int | str, ...], environ: Mapping[str, str], path: Path | None) -> str:
    """Where the value at ``loc`` came from: the environment variable, the file, or the defaults."""
    parts = [str(p) for p in loc]
    if len(parts) >= 2:
        nested = _env_name(parts[0], parts[1])
        if any(k.upper() == nested for k in environ):
            return f"environment variable {nested}"
        for var, target in ENV_ALIASES.items():
            if target == (parts[0], parts[1]) and environ.get(var):
                return f"environment variable {var}"
    return f"config file {path}" if path is not None else "defaults"


def load_settings(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the settings: the environment over the TOML file over the defaults.

    Args:
        path: the config file (``--config``); ``None`` means :func:`find_config_file`'s choice.
        environ: the environment (default ``os.environ``).

    Raises:
        ConfigError: one line naming the file or the environment variable and the key: the file is missing (when
            named), unreadable or malformed, holds a credential, or a value is invalid.
    """
    env = os.environ if environ is None else environ
    file_path = find_config_file(path, env)
    token = _LOADING.set((env, file_path))
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_origin(err['loc'], env, file_path)}: {'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    except SettingsError as exc:
        hit = re.search(r'field "(\w+)"', str(exc))
        var = f"{ENV_PREFIX}{hit[1].upper()}__*" if hit else f"{ENV_PREFIX}*"
        raise ConfigError(f"invalid configuration: environment variable {var}: a value is not valid JSON") from None
    finally:
        _LOADING.reset(token)


# ---------------------------------------------------------------------------------------------------- once per process


class _Process:
    """The config file named for this process and its settings once loaded."""

    config_path: Path | None = None
    current: Settings | None = None


def configure(path: str | Path | None) -> None:
    """Name the config file of this process (the CLI's ``--config``); the settings are loaded on first use."""
    _Process.config_path = None if path is None else Path(path)
    _Process.current = None


def get_settings() -> Settings:
    """This process's settings, loaded once (from the file :func:`configure` named, else the usual search).

    Raises:
        ConfigError: as :func:`load_settings`.
    """
    if _Process.current is None:
        _Process.current = load_settings(_Process.config_path)
    return _Process.current


# ---------------------------------------------------------------------------------------------------- propdesk init


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _comment(text: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width=116, initial_indent="# ", subsequent_indent="# ")


def render_toml() -> str:
    """A commented ``propdesk.toml`` with every setting of :class:`Settings`: its description (with the unit),
    its environment variable and its default. Unset defaults and credentials are commented out, so the file loads
    back to the defaults."""
    lines = [
        "# propdesk configuration (written by `propdesk init`; every setting with its default).",
        "# Precedence: command options > environment (PROPDESK_<SECTION>__<KEY>) > this file > defaults.",
        "# Credentials are never read from this file: set the environment variables shown for them.",
        "# Looked up at: --config PATH, $PROPDESK_CONFIG, ./propdesk.toml, then the user config directory.",
    ]
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        lines += ["", f"[{section}]"]
        if model.__doc__:
            lines += _comment(model.__doc__.split("\n\n")[0].replace("``", "`").replace(":class:", ""))
        tables: list[tuple[str, FieldInfo, type[BaseModel]]] = []
        for key, info in model.model_fields.items():
            item = _table_model(info)
            if item is not None:
                tables.append((key, info, item))
                continue
            lines.append("")
            env = _env_name(section, key)
            aliases = [var for var, target in ENV_ALIASES.items() if target == (section, key)]
            also = f" (or {', '.join(aliases)})" if aliases else ""
            lines += _comment(f"{info.description}.")
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get(_ENV_ONLY):
                lines.append(f"# Environment only: set {env}{also}. Never stored here.")
                lines.append(f"# {key} =")
                continue
            lines.append(f"# Environment: {env}{also}.")
            default = info.get_default(call_default_factory=True)
            lines.append(f"# {key} =" if default is None else f"{key} = {_toml_value(default)}")
        for key, info, item in tables:
            lines += ["", *_comment(f"{info.description}: none by default. One table each, for example:")]
            lines.append(f"# Environment: {_env_name(section, key)} (a JSON array of objects).")
            lines.append(f"# {key} = []  (an array of tables: one [[{section}.{key}]] table each)")
            lines.append(f"# [[{section}.{key}]]")
            for sub, sub_info in item.model_fields.items():
                lines += ["# " + line for line in _comment(f"{sub_info.description}.")]
                if sub_info.is_required():
                    example = (sub_info.examples or [""])[0]
                    lines.append(f"# {sub} = {_toml_value(example)}  (required)")
                    continue
                default = sub_info.get_default(call_default_factory=True)
                lines.append(f"# {sub} =" if default is None else f"# {sub} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def _table_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model of a ``list[Model]`` field (an array of tables, ``[[section.key]]``), else ``None``."""
    args: tuple[Any, ...] = getattr(info.annotation, "__args__", ())
    origin = getattr(info.annotation, "__origin__", None)
    if origin is list and len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None
