"""URL resolution, normalization, redaction and connection errors."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from propdesk.core.errors import ConfigError
from propdesk.node.journaling import journal_url
from propdesk.storage.db import (
    DATABASE_URL_ENV,
    create_engine_for,
    default_sqlite_url,
    redact_url,
    resolve_url,
    sync_url,
    verify_connection,
)


def test_explicit_url_beats_env_and_config(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[database]\nurl = "postgresql://cfg@h/cfgdb"\n')
    env = {DATABASE_URL_ENV: "postgresql://env@h/envdb"}
    url = journal_url("sqlite:///x.db", config_path=cfg, environ=env)
    assert url.drivername == "sqlite+aiosqlite" and url.database == "x.db"


def test_env_beats_config(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[database]\nurl = "postgresql://cfg@h/cfgdb"\n')
    url = journal_url(config_path=cfg, environ={DATABASE_URL_ENV: "postgres://env@h/envdb"})
    assert url.drivername == "postgresql+asyncpg" and url.database == "envdb"


def test_config_file_url(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[database]\nurl = "postgresql://cfg@h/cfgdb"\n')
    url = journal_url(environ={"PROPDESK_CONFIG": str(cfg)})
    assert url.database == "cfgdb" and url.drivername == "postgresql+asyncpg"


def test_default_is_sqlite_under_user_data_dir() -> None:
    resolved = journal_url(environ={})
    assert resolved.drivername == "sqlite+aiosqlite"
    assert str(resolved.database).endswith("propdesk/journal.sqlite3")
    assert default_sqlite_url().endswith("propdesk/journal.sqlite3")


@pytest.mark.parametrize(
    "bad",
    ["not a url", "mysql://u:pw@h/db", "postgresql://u:pw@h", "sqlite+pysqlcipher:///x"],
)
def test_bad_urls_raise_config_error_without_password(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        journal_url(bad, environ={})
    assert "pw" not in str(err.value).replace("pysqlcipher", "")


def test_missing_named_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        journal_url(config_path=tmp_path / "nope.toml", environ={})


def test_redact_url_hides_password() -> None:
    assert redact_url("postgresql+asyncpg://bob:s3cr3t@db:5432/pd") == "postgresql+asyncpg://bob:***@db:5432/pd"
    assert "s3cr3t" not in redact_url("weird://bob:s3cr3t@[bad")
    assert redact_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_sync_url_drivers() -> None:
    assert sync_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert sync_url("sqlite+aiosqlite:///x.db").drivername == "sqlite"


def test_unreachable_server_is_a_config_error_naming_the_url(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine_for("postgresql://bob:hunter22@127.0.0.1:1/pd", connect_args={"timeout": 2})

    async def go() -> None:
        try:
            await verify_connection(engine)
        finally:
            await engine.dispose()

    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as err:
        asyncio.run(go())
    msg = str(err.value)
    assert "bob:***@127.0.0.1:1/pd" in msg
    assert "hunter22" not in msg
    assert "hunter22" not in caplog.text


def test_sqlite_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "j.sqlite3"
    engine = create_engine_for(f"sqlite:///{target}")

    async def go() -> None:
        await verify_connection(engine)
        await engine.dispose()

    asyncio.run(go())
    assert target.exists()


def test_non_utf8_config_file_is_one_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(b'[database]\nurl = "\xe9"\n')
    with pytest.raises(ConfigError) as exc:
        journal_url(None, config_path=cfg, environ={})
    assert str(exc.value) == f"config file {cfg}: is not UTF-8 text (byte 0xe9 at offset 18)"


def test_resolve_url_explicit_then_configured_with_password_then_default() -> None:
    configured = "postgresql://trader@h/cfgdb"
    assert resolve_url("sqlite:///x.db", configured=configured).database == "x.db"
    url = resolve_url(configured=configured, password="hunter2")
    assert (url.drivername, url.username, url.password, url.database) == (
        "postgresql+asyncpg",
        "trader",
        "hunter2",
        "cfgdb",
    )
    assert resolve_url(configured=None).database == resolve_url().database
    assert str(resolve_url().database).endswith("propdesk/journal.sqlite3")
