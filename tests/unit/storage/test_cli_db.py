"""``propdesk db upgrade | info | export`` on both backends; no password in the output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from propdesk.cli import app
from propdesk.storage import rows as rw
from propdesk.storage.db import create_engine_for
from propdesk.storage.repositories import Repository

from .factories import fill

runner = CliRunner()


def _with_password(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":  # the test server trusts local users: the password is ignored
        parsed = parsed.set(password="Sup3rSecret")
    return parsed.render_as_string(hide_password=False)


def test_db_upgrade_info_export(empty_db_url: str, tmp_path: Path) -> None:
    url = _with_password(empty_db_url)
    res = runner.invoke(app, ["db", "info", "--url", url, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["revision"] is None and info["rows"] == {}

    res = runner.invoke(app, ["db", "export", str(tmp_path / "x"), "--url", url])
    assert res.exit_code == 2 and "db upgrade" in res.output

    res = runner.invoke(app, ["db", "upgrade", "--url", url])
    assert res.exit_code == 0, res.output
    assert "revision 0002" in res.stdout

    async def seed() -> None:
        engine = create_engine_for(url)
        try:
            await Repository(engine).write([("fills", rw.fill_row(fill("T1")))])
        finally:
            await engine.dispose()

    asyncio.run(seed())
    res = runner.invoke(app, ["db", "info", "--url", url])
    assert res.exit_code == 0, res.output
    assert "Sup3rSecret" not in res.output
    assert "revision: 0002" in res.stdout and "fills" in res.stdout
    res = runner.invoke(app, ["db", "info", "--url", url, "--json"])
    info = json.loads(res.stdout)
    assert info["revision"] == info["head"] == "0002" and info["rows"]["fills"] == 1
    assert "Sup3rSecret" not in info["url"]

    res = runner.invoke(app, ["db", "export", str(tmp_path / "x"), "--url", url])
    assert res.exit_code == 0, res.output
    assert "1 fills" in res.stdout and (tmp_path / "x" / "fills.csv").exists()


def test_db_info_unreachable_server_is_one_clear_line() -> None:
    res = runner.invoke(app, ["db", "info", "--url", "postgresql://bob:hunter22@127.0.0.1:1/pd"])
    assert res.exit_code == 2
    assert "cannot connect" in res.output and "bob:***@127.0.0.1:1/pd" in res.output
    assert "hunter22" not in res.output


def test_db_info_malformed_url() -> None:
    res = runner.invoke(app, ["db", "info", "--url", "mysql://u:pw1234@h/db"])
    assert res.exit_code == 2 and "unsupported database URL" in res.output and "pw1234" not in res.output


def test_env_var_selects_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    target = tmp_path / "env.sqlite3"
    mp.setenv("PROPDESK_DATABASE_URL", f"sqlite:///{target}")
    res = runner.invoke(app, ["db", "upgrade"])
    assert res.exit_code == 0, res.output
    assert target.exists() and str(target) in res.stdout
