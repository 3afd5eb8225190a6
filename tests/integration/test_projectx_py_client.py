"""project-x-py 4.x, unchanged but for its URLs, against ``propdesk gateway`` (issue 6; spec section 11).

Runs whenever a Python 3.12 interpreter is present (project-x-py 4.x needs >= 3.12; propdesk's venv is 3.11):
``$PROPDESK_PYTHON312``, ``python3.12`` on PATH, or ``~/.pyenv/versions/3.12*`` / ``/root/.pyenv/versions/3.12*``.
Without one the test is skipped with the reason.

* A venv with ``project-x-py>=4,<5`` is created once, with ``pip install`` from PyPI (time-boxed to
  ``INSTALL_TIMEOUT_S``), in ``$PROPDESK_PXPY_VENV`` or ``~/.cache/propdesk-test/pxpy312`` and reused afterwards
  (a ``.propdesk-ok`` marker records a finished install; a file lock serialises concurrent creation). If the
  install fails the test fails under ``CI=true`` and is skipped otherwise.
* ``propdesk gateway --port <free port> --speed 60 --data ../shared/data`` runs as a subprocess on 127.0.0.1; the
  test waits for ``GET /api/Status/ping``.
* ``pxpy_client_script.py`` (beside this file; run by the 3.12 venv, never imported here) logs in, lists accounts,
  finds ES, loads bars, connects ``TradingSuite`` (user + market hubs), places and cancels a far limit order, places
  a market order, waits for the fill and position events and closes the position. It prints one ``PXPY_RESULT``
  JSON line; the test asserts every step and then checks the gateway's own REST view of the same orders, trades
  and positions.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ES_1MIN, NQ_1MIN, SHARED_DATA, resolve_shared
from tests.kit.servers import free_port

SCRIPT = Path(__file__).resolve().parent / "pxpy_client_script.py"
DEFAULT_VENV = Path.home() / ".cache" / "propdesk-test" / "pxpy312"
PXPY_REQUIREMENT = "project-x-py>=4,<5"
INSTALL_TIMEOUT_S = 600
CLIENT_TIMEOUT_S = 240
USER, API_KEY = "propdesk", "propdesk-local-api-key"  # GatewayConfig defaults (a local test gateway, not secrets)
ACCOUNT_ID, ACCOUNT_NAME = 11001, "PRAC-V2-50K-001"  # position-bracket account of the default config
REQUIRED_STEPS = (
    "login",
    "accounts",
    "contract",
    "bars",
    "realtime",
    "suite_bars",
    "market_data",
    "limit_place_cancel",
    "market_fill",
    "close_position",
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _clean_env() -> dict[str, str]:
    """The environment without this venv's Python settings (the 3.12 interpreter must not see them)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _is_py312(exe: str) -> bool:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            timeout=20,
            env=_clean_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


def find_python312() -> str | None:
    """The first working Python 3.12 interpreter (module docstring for the search order), else ``None``."""
    candidates = [os.environ.get("PROPDESK_PYTHON312"), shutil.which("python3.12")]
    for root in (Path.home() / ".pyenv", Path("/root/.pyenv")):
        candidates += sorted(glob.glob(str(root / "versions" / "3.12*" / "bin" / "python")), reverse=True)
    for exe in candidates:
        if exe and _is_py312(exe):
            return exe
    return None


def _venv_ok(venv: Path) -> bool:
    py = venv / "bin" / "python"
    if not (venv / ".propdesk-ok").exists() or not py.exists():
        return False
    probe = "import importlib.metadata as m; v = m.version('project-x-py'); print(v.split('.')[0])"
    out = subprocess.run(
        [str(py), "-c", probe], capture_output=True, text=True, timeout=60, env=_clean_env(), check=False
    )
    return out.returncode == 0 and out.stdout.strip() == "4"


def _install_failed(msg: str) -> None:
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def pxpy_venv(python312: str) -> Path:
    """The cached venv's python with project-x-py 4.x, creating the venv if needed (module docstring)."""
    venv = Path(os.environ.get("PROPDESK_PXPY_VENV", str(DEFAULT_VENV)))
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _venv_ok(venv):
            shutil.rmtree(venv, ignore_errors=True)
            log = venv.parent / f"{venv.name}-install.log"
            try:
                with open(log, "w") as out:
                    subprocess.run(
                        [python312, "-m", "venv", str(venv)], check=True, timeout=120, stdout=out, stderr=out
                    )
                    subprocess.run(
                        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", PXPY_REQUIREMENT],
                        check=True,
                        timeout=INSTALL_TIMEOUT_S,
                        stdout=out,
                        stderr=out,
                        env=_clean_env(),
                    )
            except (OSError, subprocess.SubprocessError) as exc:
                shutil.rmtree(venv, ignore_errors=True)
                _install_failed(f"cannot install {PXPY_REQUIREMENT} into {venv}: {exc} (log: {log})")
            (venv / ".propdesk-ok").write_text(PXPY_REQUIREMENT + "\n")
            if not _venv_ok(venv):
                _install_failed(f"{venv} has no project-x-py 4.x after the install (log: {log})")
    return venv / "bin" / "python"


@contextlib.contextmanager
def running_gateway(log_path: Path, *, speed: float = 60.0, timeout_s: float = 60.0) -> Iterator[str]:
    """``propdesk gateway`` as a subprocess on a free loopback port; yields its base URL; stops it on exit.

    Raises:
        AssertionError: the gateway exited or did not answer ``/api/Status/ping`` within ``timeout_s``.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "propdesk", "gateway", "--port", str(port), "--speed", str(speed)]
    cmd += ["--data", str(SHARED_DATA)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                assert proc.poll() is None, f"gateway exited with {proc.returncode}: {log_path.read_text()[-3000:]}"
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/api/Status/ping", timeout=2).json() == "pong":
                        break
                assert time.monotonic() < deadline, f"gateway did not answer ping: {log_path.read_text()[-3000:]}"
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _post(client: httpx.Client, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"} if token else {})
    r.raise_for_status()
    out: dict[str, Any] = r.json()
    assert out["success"], out
    return out


def test_projectx_py_client_against_gateway(tmp_path: Path) -> None:
    resolve_shared(ES_1MIN)  # the default gateway feeds (skip locally / fail in CI when missing)
    resolve_shared(NQ_1MIN)
    py312 = find_python312()
    if py312 is None:
        pytest.skip("no Python 3.12 interpreter (PROPDESK_PYTHON312, python3.12, ~/.pyenv/versions/3.12*)")
    python = pxpy_venv(py312)

    with running_gateway(tmp_path / "gateway.log") as base:
        proc = subprocess.run(
            [str(python), str(SCRIPT), base, USER, API_KEY, ACCOUNT_NAME],
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
            env=_clean_env(),
            cwd=tmp_path,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PXPY_RESULT ")]
        diag = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"
        assert len(lines) == 1, diag
        result = json.loads(lines[0].removeprefix("PXPY_RESULT "))
        steps: dict[str, dict[str, Any]] = result["steps"]
        assert result["error"] is None, f"{result['error']}\n{json.dumps(steps, indent=1)}\n{diag}"
        for name in REQUIRED_STEPS:
            assert name in steps, f"step {name} did not run: {json.dumps(steps, indent=1)}\n{diag}"
            assert steps[name]["ok"], f"step {name} failed: {json.dumps(steps[name])}\n{diag}"

        assert steps["version"]["project_x_py"].split(".")[0] == "4"
        assert steps["login"]["account_id"] == ACCOUNT_ID
        assert {11001, 11002} <= set(steps["accounts"]["ids"])
        cid = steps["contract"]["id"]
        assert cid.startswith("CON.F.US.EP.")
        assert (steps["contract"]["tick_size"], steps["contract"]["tick_value"]) == (0.25, 12.5)
        assert steps["bars"]["count"] > 0
        assert steps["realtime"]["user_connected"] and steps["realtime"]["market_connected"]
        assert steps["realtime"]["contract_id"] == cid
        lim, mkt = steps["limit_place_cancel"], steps["market_fill"]
        assert lim["order_placed_event"] and lim["hub_order_open"] and lim["hub_order_cancelled"]
        assert mkt["order_filled_event"] and mkt["hub_trade"] and mkt["hub_position"] and mkt["position_opened_event"]
        assert mkt["position_size"] == 1 and mkt["position_type"] == 1  # 1 = long (spec section 4)
        assert steps["close_position"]["position_closed_event"] and steps["close_position"]["flat"]

        # the gateway's own record of what the client did
        with httpx.Client(base_url=f"{base}/api", timeout=10) as http:
            token = _post(http, "/Auth/loginKey", "", {"userName": USER, "apiKey": API_KEY})["token"]
            orders = _post(
                http, "/Order/search", token, {"accountId": ACCOUNT_ID, "startTimestamp": "2000-01-01T00:00:00Z"}
            )
            by_id = {o["id"]: o for o in orders["orders"]}
            close_id = steps["close_position"]["response"]["orderId"]
            assert by_id[lim["order_id"]]["status"] == 3  # Cancelled
            assert by_id[lim["order_id"]]["type"] == 1 and by_id[lim["order_id"]]["limitPrice"] == lim["limit_price"]
            assert by_id[mkt["order_id"]]["status"] == 2  # Filled
            assert by_id[close_id]["status"] == 2 and by_id[close_id]["side"] == 1  # the closing sell
            trades = _post(http, "/Trade/search", token, {"accountId": ACCOUNT_ID, "contractId": cid})["trades"]
            assert sorted(t["orderId"] for t in trades) == sorted([mkt["order_id"], close_id])
            assert sum(t["size"] if t["side"] == 0 else -t["size"] for t in trades) == 0
            fill = next(t for t in trades if t["orderId"] == mkt["order_id"])
            assert fill["price"] == mkt["average_price"] == mkt["hub_trade_price"]
            open_pos = _post(http, "/Position/searchOpen", token, {"accountId": ACCOUNT_ID})["positions"]
            assert open_pos == []
