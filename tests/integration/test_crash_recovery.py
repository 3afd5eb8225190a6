"""Crash recovery end to end: a node replaying real ES bars with working native brackets is killed (``kill -9``) in
the middle of the replay, restarted on the same journal and the same (durable) broker, and ends exactly where an
uninterrupted run ends: the same orders with the same statuses, the same fills (no duplicate), the same position and
PnL, and no client order id sent twice. The model of the broker and the restart is in ``crash_driver.py``.

Client order ids carry a run token drawn at each start (``propdesk.execution.ids``), so the two runs' ids differ;
orders are compared through the broker's record of submissions: the n-th order the broker received in one run is
compared with the n-th in the other (bracket children by their entry's rank and their ``-sl``/``-tp`` suffix).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ES_1MIN

DRIVER = Path(__file__).resolve().parent / "crash_driver.py"
ROOT = Path(__file__).resolve().parents[2]
BARS = "400"


def _driver(data: Path, work: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(DRIVER),
        "--data",
        str(data),
        "--db",
        f"sqlite+aiosqlite:///{work / (name + '.sqlite3')}",
        "--broker",
        str(work / (name + ".broker")),
        "--out",
        str(work / (name + ".json")),
        "--bars",
        BARS,
        *extra,
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute(sql).fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _ranks(broker: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """Client order id -> its rank among the broker's submissions, and the submissions (bar, payload) in order."""
    con = sqlite3.connect(broker)
    try:
        rows = con.execute("SELECT cid, bar_index, payload FROM submissions ORDER BY seq").fetchall()
    finally:
        con.close()
    return {cid: f"#{i}" for i, (cid, _b, _p) in enumerate(rows)}, [(b, p) for _c, b, p in rows]


def _canon(cid: str, ranks: dict[str, str]) -> str:
    if cid in ranks:
        return ranks[cid]
    head, _, leg = cid.rpartition("-")
    assert head in ranks, f"order {cid} was never submitted to the broker"
    return f"{ranks[head]}-{leg}"


def _journal(db: Path, ranks: dict[str, str]) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    con = sqlite3.connect(db)
    try:
        orders = {
            _canon(cid, ranks): (status, filled, qty, side, typ)
            for cid, status, filled, qty, side, typ in con.execute(
                "SELECT client_order_id, status, filled_qty, qty, side, order_type FROM orders"
            )
        }
        fill_rows = con.execute(
            "SELECT trade_id, client_order_id, side, qty, price_raw, fee_cents FROM fills"
        ).fetchall()
    finally:
        con.close()
    fills = {t: (_canon(c, ranks), s, q, p, f) for t, c, s, q, p, f in fill_rows}
    assert len(fills) == len(fill_rows), "a trade id was journaled twice"
    return orders, fills


def _final(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("position", "strategy_qty", "realized_usd", "fees_usd", "broker_balance_usd", "duplicate_fills")
    return {k: summary[k] for k in keys}


@pytest.mark.timeout(180)
def test_kill_9_mid_replay_then_restart_matches_an_uninterrupted_run(
    shared_data: Callable[[str], Path], tmp_path: Path
) -> None:
    data = shared_data(ES_1MIN)
    env = _env()

    # A: uninterrupted
    subprocess.run(_driver(data, tmp_path, "a"), env=env, check=True, timeout=120, cwd=ROOT)
    summary_a = json.loads((tmp_path / "a.json").read_text())

    # B: killed with -9 after a random number of journaled fills, at a random moment
    rng = random.Random()
    want_fills = rng.randint(8, 40)
    proc = subprocess.Popen(_driver(data, tmp_path, "b", "--pace", "0.003"), env=env, cwd=ROOT)
    db_b = tmp_path / "b.sqlite3"
    deadline = time.monotonic() + 90
    while _count(db_b, "SELECT count(*) FROM fills") < want_fills:
        assert proc.poll() is None, "run B ended before it could be killed"
        assert time.monotonic() < deadline, "run B journaled too few fills"
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.3))
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert not (tmp_path / "b.json").exists()
    killed_at = _count(tmp_path / "b.broker", "SELECT bar_index FROM state")
    assert 0 < killed_at < int(BARS) - 1, "the kill must land in the middle of the replay"

    # B, restarted on the same journal and the same broker, to the end
    subprocess.run(_driver(data, tmp_path, "b", "--pace", "0"), env=env, check=True, timeout=120, cwd=ROOT)
    summary_b = json.loads((tmp_path / "b.json").read_text())
    assert summary_b["resumed_after_bar"] == killed_at
    assert summary_b["warmed_up"] == killed_at + 1
    assert summary_b["recovery"]["discrepancies"] == []
    assert summary_b["reconcile"]["discrepancies"] == []

    # no client order id reached the broker twice, and the broker received the same orders at the same bars
    ranks_a, subs_a = _ranks(tmp_path / "a.broker")
    ranks_b, subs_b = _ranks(tmp_path / "b.broker")
    assert len(ranks_b) == len(subs_b), "a client order id was sent to the broker twice"
    assert subs_b == subs_a

    # the journals agree: orders (status, fills), fills (same trade ids, same orders, prices and fees)
    orders_a, fills_a = _journal(tmp_path / "a.sqlite3", ranks_a)
    orders_b, fills_b = _journal(db_b, ranks_b)
    assert fills_b == fills_a
    assert orders_b == orders_a

    # and the node ends with the same position and PnL as the uninterrupted run
    assert _final(summary_b) == _final(summary_a)
    open_a = sorted(_canon(c, ranks_a) for c in summary_a["open_orders"])
    assert sorted(_canon(c, ranks_b) for c in summary_b["open_orders"]) == open_a
    assert len(fills_a) >= 2 * want_fills // 2 and summary_a["position"] is not None
