"""Tests for propdesk.config: file discovery, environment over file, aliases, credentials, errors, `propdesk init`."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from propdesk.brokers.projectx.config import ProjectXSettings
from propdesk.cli.app import _node_journal, _risk_config, app
from propdesk.config import Settings, configure, find_config_file, load_settings, render_toml
from propdesk.core.errors import ConfigError
from propdesk.node.journaling import journal_url
from propdesk.sessions.live import projectx_settings


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No ./propdesk.toml and no user config file leak into a test; the process's settings are reset after it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("propdesk.config.user_config_path", lambda: tmp_path / "user" / "propdesk.toml")
    yield
    configure(None)


def _write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file(tmp_path: Path) -> None:
    s = load_settings(environ={})
    assert s.projectx.api_base == "https://api.topstepx.com"
    assert s.journal.enabled is True and s.database.url is None and s.risk.preset is None
    assert s.api.port == 8000 and s.emulator.port is None


def test_file_discovery_order(tmp_path: Path) -> None:
    assert find_config_file(None, {}) is None
    (tmp_path / "user").mkdir()
    user = _write(tmp_path / "user", "", "propdesk.toml")
    assert find_config_file(None, {}) == user
    local = _write(tmp_path, "")  # c.toml is not looked up; propdesk.toml in the working directory is
    assert find_config_file(None, {}) == user
    here = _write(tmp_path, "", "propdesk.toml")
    assert find_config_file(None, {}).resolve() == here.resolve()  # type: ignore[union-attr]
    assert find_config_file(None, {"PROPDESK_CONFIG": str(local)}) == local
    assert find_config_file(tmp_path / "x.toml", {"PROPDESK_CONFIG": str(local)}) == tmp_path / "x.toml"


def test_environment_overrides_file(tmp_path: Path) -> None:
    cfg = _write(tmp_path, '[projectx]\napi_base = "http://127.0.0.1:8900"\nrequest_timeout_s = 4.5\n[risk]\n'
                 'preset = "topstep-50k-combine"\n')  # fmt: skip
    s = load_settings(cfg, environ={})
    assert (s.projectx.api_base, s.projectx.request_timeout_s) == ("http://127.0.0.1:8900", 4.5)
    s = load_settings(cfg, environ={"PROPDESK_PROJECTX__REQUEST_TIMEOUT_S": "2", "PROPDESK_API__PORT": "9001"})
    assert (s.projectx.api_base, s.projectx.request_timeout_s, s.api.port) == ("http://127.0.0.1:8900", 2.0, 9001)
    assert s.risk.preset == "topstep-50k-combine"


def test_documented_env_aliases_and_nested_names(tmp_path: Path) -> None:
    s = load_settings(environ={"PROPDESK_PROJECTX_USERNAME": "trader", "PROPDESK_PROJECTX_API_KEY": "k1",
                               "PROPDESK_DATABASE_URL": "sqlite:///a.db"})  # fmt: skip
    assert s.projectx.username == "trader" and s.projectx.api_key is not None
    assert s.projectx.api_key.get_secret_value() == "k1"
    assert s.database.url is not None and s.database.url.get_secret_value() == "sqlite:///a.db"
    s = load_settings(environ={"PROPDESK_PROJECTX_API_KEY": "old", "PROPDESK_PROJECTX__API_KEY": "new"})
    assert s.projectx.api_key is not None and s.projectx.api_key.get_secret_value() == "new"


def test_api_key_from_a_file_named_by_env(tmp_path: Path) -> None:
    key = _write(tmp_path, "s3cret-from-file\n", "key.txt")
    s = load_settings(environ={"PROPDESK_PROJECTX__API_KEY_FILE": str(key)})
    assert s.projectx.api_key is not None and s.projectx.api_key.get_secret_value() == "s3cret-from-file"
    assert "s3cret" not in repr(s) and "s3cret" not in str(s)
    with pytest.raises(ConfigError, match=r"PROPDESK_PROJECTX__API_KEY_FILE file .*nope: does not exist"):
        load_settings(environ={"PROPDESK_PROJECTX__API_KEY_FILE": str(tmp_path / "nope")})


@pytest.mark.parametrize(
    ("table", "key"),
    [("projectx", 'api_key = "hunter2"'), ("projectx", 'username = "me"'), ("projectx", 'api_key_file = "/k"'),
     ("database", 'password = "hunter2"')],
)  # fmt: skip
def test_credential_in_file_is_refused(tmp_path: Path, table: str, key: str) -> None:
    cfg = _write(tmp_path, f"[{table}]\n{key}\n")
    name = key.split(maxsplit=1)[0]
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    msg = str(exc.value)
    assert msg.startswith(f"config file {cfg}: [{table}] {name} is a credential")
    assert f"PROPDESK_{table.upper()}__{name.upper()}" in msg and "hunter2" not in msg


def test_database_password_only_from_env(tmp_path: Path) -> None:
    cfg = _write(tmp_path, '[database]\nurl = "postgresql://trader:hunter2@127.0.0.1/propdesk"\n')
    with pytest.raises(ConfigError, match=r"\[database\] url holds a password") as exc:
        load_settings(cfg, environ={})
    assert "hunter2" not in str(exc.value)
    cfg = _write(tmp_path, '[database]\nurl = "postgresql://trader@127.0.0.1/propdesk"\n')
    url = journal_url(config_path=cfg, environ={"PROPDESK_DATABASE__PASSWORD": "hunter2"})
    assert (url.username, url.password, url.database) == ("trader", "hunter2", "propdesk")
    assert "hunter2" not in repr(load_settings(cfg, environ={"PROPDESK_DATABASE__PASSWORD": "hunter2"}))


def test_invalid_value_names_file_and_key(tmp_path: Path) -> None:
    cfg = _write(tmp_path, '[projectx]\nrequest_timeout_s = "soon"\n')
    with pytest.raises(ConfigError, match=rf"config file {cfg}: projectx\.request_timeout_s: Input should be"):
        load_settings(cfg, environ={})


def test_invalid_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(environ={"PROPDESK_API__PORT": "99999"})
    assert str(exc.value).startswith("invalid configuration: environment variable PROPDESK_API__PORT: api.port:")
    with pytest.raises(ConfigError, match=r"environment variable PROPDESK_PROJECTX__\*: a value is not valid JSON"):
        load_settings(environ={"PROPDESK_PROJECTX__BRACKET_MODES": "{not json"})


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "[journal]\nenable = true\n")
    with pytest.raises(ConfigError, match=r"journal\.enable: Extra inputs are not permitted"):
        load_settings(cfg, environ={})


def test_settings_are_frozen() -> None:
    s = load_settings(environ={})
    with pytest.raises(Exception, match="frozen"):
        s.api = s.api  # type: ignore[misc]


def test_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"PROPDESK_CONFIG": str(tmp_path / "nope.toml")})


def test_non_utf8_file_is_one_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(b'[risk]\npreset = "\xe9"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    assert str(exc.value) == f"config file {cfg}: is not UTF-8 text (byte 0xe9 at offset 17)"


def test_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path, environ={})
    assert str(exc.value) == f"config file {tmp_path}: is a directory, not a file"


def test_deeply_nested_toml_is_one_clear_error(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n", "deep.toml")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    assert str(exc.value) == f"config file {cfg}: invalid TOML (nested too deeply to parse)"


def test_projectx_section_mirrors_the_adapter_defaults() -> None:
    section = Settings.model_fields["projectx"].default_factory()  # type: ignore[misc, call-arg]
    adapter = ProjectXSettings()
    own = set(type(section).model_fields) - {"api_key_file"}
    assert own <= set(ProjectXSettings.model_fields)
    assert set(ProjectXSettings.model_fields) - own == {"account_id", "account_name"}
    for name, value in section.adapter_table().items():
        assert getattr(adapter, name) == value, name


def test_projectx_settings_from_the_one_settings(tmp_path: Path) -> None:
    cfg = _write(tmp_path, '[projectx]\napi_base = "http://127.0.0.1:8900"\n[projectx.retry]\nmax_retries = 1\n')
    env = {"PROPDESK_PROJECTX_USERNAME": "u", "PROPDESK_PROJECTX__API_KEY": "k"}
    px = projectx_settings(config_path=cfg, environ=env, user_hub="http://127.0.0.1:9/hubs/user")
    assert (px.api_base, px.user_hub_url, px.retry.max_retries) == (
        "http://127.0.0.1:8900", "http://127.0.0.1:9/hubs/user", 1)  # fmt: skip
    assert px.require_credentials() == ("u", "k")


def test_render_toml_loads_back_to_the_defaults_and_lists_every_field(tmp_path: Path) -> None:
    text = render_toml()
    cfg = _write(tmp_path, text, "init.toml")
    defaults = load_settings(environ={})  # no file found, no environment
    assert load_settings(cfg, environ={}) == defaults
    assert defaults.projectx.request_timeout_s == 10.0 and defaults.journal.enabled is True
    parsed = tomllib.loads(text)
    for section, field in Settings.model_fields.items():
        assert f"[{section}]" in text
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for key in model.model_fields:
            assert f"\n{key} = " in text or f"\n# {key} =" in text, f"{section}.{key}"
            assert f"PROPDESK_{section.upper()}__{key.upper()}" in text
    assert parsed["projectx"]["request_timeout_s"] == 10.0
    assert "api_key" not in parsed["projectx"] and "password" not in parsed["database"]


def test_cli_init_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "new.toml"
    res = runner.invoke(app, ["init", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8") == render_toml()
    out.write_text("# mine\n", encoding="utf-8")
    res = runner.invoke(app, ["init", str(out)])
    assert res.exit_code == 2 and "exists: use --force" in res.output
    assert out.read_text(encoding="utf-8") == "# mine\n"
    assert runner.invoke(app, ["init", str(out), "--force"]).exit_code == 0
    assert out.read_text(encoding="utf-8") == render_toml()


def test_cli_root_config_reaches_the_database_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PROPDESK_CONFIG", "PROPDESK_DATABASE_URL", "PROPDESK_DATABASE__URL"):
        monkeypatch.delenv(var, raising=False)
    db = tmp_path / "j.db"
    cfg = _write(tmp_path, f'[database]\nurl = "sqlite:///{db}"\n')
    res = CliRunner().invoke(app, ["--config", str(cfg), "db", "info", "--json"])
    assert res.exit_code == 0, res.output
    assert str(db) in res.output


def test_cli_takes_its_defaults_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PROPDESK_RISK__PRESET", "PROPDESK_JOURNAL__ENABLED"):
        monkeypatch.delenv(var, raising=False)
    configure(None)
    assert _risk_config(None, None) is None
    configure(_write(tmp_path, '[risk]\npreset = "topstep-50k-combine"\n[journal]\nenabled = false\n'))
    risk = _risk_config(None, None)
    assert risk is not None and risk.preset == "topstep-50k-combine"
    assert _node_journal(None, None) is None  # journal.enabled = false
    flag = _risk_config("topstep-100k-xfa", None)  # an option wins over the settings
    assert flag is not None and flag.preset == "topstep-100k-xfa"
