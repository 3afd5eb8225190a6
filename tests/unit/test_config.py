"""Tests for propdesk.config: file, environment and override precedence, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from propdesk.config import load_settings
from propdesk.core.errors import ConfigError


def test_defaults_without_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROPDESK_CONFIG", raising=False)
    monkeypatch.setattr("propdesk.config.DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    settings = load_settings()
    assert settings.logging.level == "INFO"
    assert settings.data.catalog_path == settings.data.data_dir / "catalog"


def test_precedence_file_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "propdesk.toml"
    cfg.write_text('[logging]\nlevel = "WARNING"\njson_lines = true\n[data]\ndata_dir = "/tmp/pd"\n')
    assert load_settings(cfg).logging.level == "WARNING"
    monkeypatch.setenv("PROPDESK_LOGGING__LEVEL", "ERROR")
    settings = load_settings(cfg)
    assert settings.logging.level == "ERROR"
    assert settings.logging.json_lines is True
    assert settings.data.data_dir == Path("/tmp/pd")
    assert load_settings(cfg, logging={"level": "DEBUG"}).logging.level == "DEBUG"


def test_settings_are_frozen(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    settings = load_settings(cfg)
    with pytest.raises(Exception, match="frozen"):
        settings.logging = settings.logging  # type: ignore[misc]


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[logging\nlevel = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_settings(cfg)


def test_invalid_value_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[logging]\nlevel = "LOUD"\n')
    with pytest.raises(ConfigError, match=r"logging\.level"):
        load_settings(cfg)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\ncatalogue = 'x'\n")
    with pytest.raises(ConfigError, match=r"data\.catalogue"):
        load_settings(cfg)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_database_url_is_secret(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "postgresql://trader:hunter2@127.0.0.1/propdesk"\n')
    settings = load_settings(cfg)
    assert settings.database.url is not None
    assert settings.database.url.get_secret_value().endswith("/propdesk")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.database)


def test_projectx_table_is_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[projectx]\napi_base = "http://127.0.0.1:8900"\n')
    assert load_settings(cfg).projectx == {"api_base": "http://127.0.0.1:8900"}


def test_non_utf8_file_is_one_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(b'[logging]\nlevel = "\xe9"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert str(exc.value) == f"config file {cfg}: is not UTF-8 text (byte 0xe9 at offset 19)"


def test_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path)
    assert str(exc.value) == f"config file {tmp_path}: is a directory, not a file"


def test_deeply_nested_toml_is_one_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "deep.toml"
    cfg.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert str(exc.value) == f"config file {cfg}: invalid TOML (nested too deeply to parse)"
