"""``propdesk db upgrade | info | export`` on both backends; no password in the output."""

from __future__ import annotations

import asyncio
import csv
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
    assert "revision 0005" in res.stdout

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
    assert "revision: 0005" in res.stdout and "fills" in res.stdout
    res = runner.invoke(app, ["db", "info", "--url", url, "--json"])
    info = json.loads(res.stdout)
    assert info["revision"] == info["head"] == "0005" and info["rows"]["fills"] == 1
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


def test_db_info_lists_runs_and_export_takes_one_run(db_url: str, tmp_path: Path) -> None:
    """Two simulated runs whose exchanges both used trade ids 1-1 and 1-2: ``db info`` lists each with its own fill
    and order counts and says what the statuses and a fill's identity mean; ``db export --run`` exports one run
    (by a unique start of its id); an unknown run is one clear line."""
    from propdesk.storage.runs import RunOwner  # noqa: PLC0415

    from .factories import T0, order  # noqa: PLC0415

    owner = RunOwner.current()

    def run_row(run_id: str, started_ns: int) -> rw.Row:
        return rw.strategy_run_row(
            run_id=run_id, kind="replay", strategy="sma_cross", symbol="ESZ5", started_ns=started_ns,
            host=owner.host, pid=owner.pid, pid_start=owner.pid_start, heartbeat_ns=started_ns,
        )  # fmt: skip

    async def seed() -> None:
        engine = create_engine_for(db_url)
        try:
            repo = Repository(engine)
            for run_id, n, t0 in (("11111111-aaaa", 2, T0), ("22222222-bbbb", 1, T0 + 10)):
                await repo.claim_run(run_row(run_id, t0))
                rows: list[tuple[str, rw.Row]] = [
                    ("fills", rw.fill_row(fill(f"1-{i}", ts=t0 + i), run_id=run_id, venue_session=run_id))
                    for i in range(1, n + 1)
                ]
                rows.append(("orders", rw.order_row(order(f"pd-{run_id[:4]}-1"), run_id=run_id)))
                await repo.write(rows)
            await repo.finish_run("11111111-aaaa", ended_ns=T0 + 5)
        finally:
            await engine.dispose()

    asyncio.run(seed())
    res = runner.invoke(app, ["db", "info", "--url", db_url, "--json"])
    assert res.exit_code == 0, res.output
    listed = [(r["run_id"], r["status"], r["fills"], r["orders"]) for r in json.loads(res.stdout)["runs"]]
    assert listed == [("11111111-aaaa", "completed", 2, 1), ("22222222-bbbb", "running", 1, 1)]
    res = runner.invoke(app, ["db", "info", "--url", db_url])
    assert res.exit_code == 0, res.output
    assert "runs: 2" in res.stdout and "venue session" in res.stdout and "aborted" in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("11111111-aaaa"))
    assert line.split()[1:3] == ["replay", "completed"] and line.split()[-3:] == ["2", "1", "1"]

    res = runner.invoke(app, ["db", "export", str(tmp_path / "one"), "--url", db_url, "--run", "2222"])
    assert res.exit_code == 0, res.output
    assert "run 22222222-bbbb" in res.stdout and "1 fills" in res.stdout
    with (tmp_path / "one" / "fills.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["trade_id"], r["run_id"], r["venue_session"]) for r in rows] == [
        ("1-1", "22222222-bbbb", "22222222-bbbb")
    ]
    res = runner.invoke(app, ["db", "export", str(tmp_path / "all"), "--url", db_url])
    assert res.exit_code == 0 and "3 fills" in res.stdout
    res = runner.invoke(app, ["db", "export", str(tmp_path / "none"), "--url", db_url, "--run", "3333"])
    assert res.exit_code == 2 and "no run '3333'" in res.output and "db info" in res.output
