"""``propdesk serve``: the default run on a fresh machine (no config: one simulated 50K Combine replaying the ES file
with one sma_cross instance), a graceful stop on SIGTERM in a subprocess (the journal's run closed as stopped,
positions left as they are), the API served beside it (a key made with ``propdesk api-key create`` reads the
accounts; no key, no flatten), and a projectx account without credentials refused in one clear line."""

from __future__ import annotations

import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import propdesk
from propdesk.cli import app
from tests.conftest import ES_1MIN, resolve_shared

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]
"""The checkout: ``../shared/data`` (the default ``[serve] data_dir``) is relative to it."""


def test_the_default_run_replays_the_es_file_on_a_50k_combine_with_one_instance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    resolve_shared(ES_1MIN)
    monkeypatch.chdir(REPO)  # where the README runs propdesk; no propdesk.toml there
    monkeypatch.delenv("PROPDESK_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(REPO / "no-such-config-dir"))
    monkeypatch.setenv("PROPDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    result = runner.invoke(app, ["serve", "--speed", "max", "--json", "--port", "0"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    (account,) = out["accounts"]
    assert (account["name"], account["broker"], account["symbol"]) == ("combine", "sim", "ESZ5")
    assert account["finished"] and account["reconciled"] and account["records"] == account["total"]
    (instance,) = out["instances"]
    assert (instance["name"], instance["strategy"], instance["state"], instance["waiting"]) == (
        "sma-es",
        "sma_cross",
        "running",
        "",
    )
    assert account["fills"] > 0  # the instance traded on the replay
    assert out["completed"] and out["signal"] is None and out["run_id"] and out["last_seq"] > 0


def test_sigterm_stops_the_service_gracefully(tmp_path: Path) -> None:
    data = resolve_shared(ES_1MIN)
    cfg = tmp_path / "propdesk.toml"
    cfg.write_text(f'[serve]\nspeed = 60\ndata_dir = "{data.parent.parent}"\n', encoding="utf-8")
    db = tmp_path / "journal.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(propdesk.__file__).parents[1]),
        "PROPDESK_DATABASE_URL": f"sqlite:///{db}",
    }
    made = subprocess.run(
        [sys.executable, "-m", "propdesk", "api-key", "create", "ci", "--scope", "trade", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = json.loads(made.stdout.strip().splitlines()[-1])["key"]
    cmd = [sys.executable, "-m", "propdesk", "--config", str(cfg), "serve", "--no-console", "--json", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        # serving, a bar or more played, and the API listening
        while not (any(line.startswith("account combine:") for line in seen) and _api_url(seen)):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(seen)
            if sel.select(timeout=1.0):
                seen.append(proc.stderr.readline())
        base = _api_url(seen)
        accounts = httpx.get(f"{base}/accounts", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert accounts.status_code == 200, accounts.text
        assert [a["account_id"] for a in accounts.json()] == [1]
        anonymous = httpx.post(f"{base}/accounts/1/flatten", headers={"Idempotency-Key": "k1"}, timeout=30)
        assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["signal"] == "SIGTERM" and not out["completed"]
    (account,) = out["accounts"]
    assert not account["finished"] and 0 < account["records"] < account["total"]
    assert [i["name"] for i in out["instances"]] == ["sma-es"]
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select kind, status, ended_ns is not null from strategy_runs").fetchall()
        seqs = [s for (s,) in conn.execute("select seq from events order by seq")]
        stored = conn.execute("select name, desired_state, params_version from strategy_instances").fetchall()
    assert runs == [("serve", "stopped", 1)]
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] == out["last_seq"]
    assert stored == [("sma-es", "running", 1)]


def _api_url(lines: list[str]) -> str | None:
    """The API's ``/api/v1`` base from ``propdesk serve``'s stderr (``serve: API on http://...:PORT/api/v1 ...``)."""
    for line in lines:
        if line.startswith("serve: API on "):
            return line.split()[3]
    return None


def test_a_projectx_account_without_credentials_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PROPDESK_PROJECTX_USERNAME", "PROPDESK_PROJECTX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "propdesk.toml"
    cfg.write_text('[[serve.accounts]]\nname = "live"\nbroker = "projectx"\n', encoding="utf-8")
    result = runner.invoke(app, ["--config", str(cfg), "serve", "--no-journal", "--no-console"])
    assert result.exit_code == 2
    assert "ProjectX credentials missing: set PROPDESK_PROJECTX_USERNAME" in result.output


def test_missing_data_names_the_account_and_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")  # no ../shared/data beside it
    monkeypatch.delenv("PROPDESK_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    result = runner.invoke(app, ["serve", "--no-journal", "--no-console"])
    assert result.exit_code == 2
    assert "serve account 'combine': file not found (check [serve] data_dir)" in result.output
