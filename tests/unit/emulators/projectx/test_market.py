"""The replay's derivation of prints, quotes, depth and history from real bars, trades and MBO data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from propdesk.data.loaders import load_bars
from propdesk.emulators.projectx.config import FeedConfig
from propdesk.emulators.projectx.history import retrieve_bars
from propdesk.emulators.projectx.market import DOM_RESET, load_feed
from tests.conftest import ES_1MIN, ESH4_MBO, NQ_1MIN, NQ_5MIN, SHARED_DATA, resolve_shared
from tests.unit.emulators.projectx.conftest import make_app

ESM8 = "es_trades_esm8_rtrawl/ESM8_trades_20180507.csv.gz"


def test_bar_prints_follow_the_sim_path_and_conserve_volume() -> None:
    path = resolve_shared(ES_1MIN)
    feed = load_feed(FeedConfig(roots=["ES"], path=str(path)), SHARED_DATA)
    bars = load_bars(path)
    h = feed.history
    assert int(h.print_size.sum()) == int(bars.volume.sum())
    events = list(feed.events())
    ev_ts = np.array([e.ts_ns for e in events])
    for i in (1000, 1001, 30_000):  # 1000: a one-lot bar; its extremes still move the quote (zero-size points)
        b = bars.bar(i)
        lo, hi = np.searchsorted(ev_ts, [b.ts_open_ns, b.ts_close_ns])
        pts = [p for e in events[lo:hi] for p in e.prints]
        px = [p for p, _, _ in pts]
        assert px[0] == b.open and px[-1] == b.close
        assert max(px) == b.high and min(px) == b.low
        assert sum(s for _, s, _ in pts) == b.volume


def test_minute_history_aggregates_like_the_vendor_5min_file() -> None:
    path = resolve_shared(NQ_1MIN)
    five = pd.read_csv(resolve_shared(NQ_5MIN))
    feed = load_feed(FeedConfig(roots=["NQ"], path=str(path)), SHARED_DATA)
    h = feed.history
    now = int(h.bar_ts[-1]) + 60 * 10**9
    bars = retrieve_bars(
        h, unit=2, unit_number=5, start_ns=0, end_ns=now, limit=20_000, include_partial=True, now_ns=now,
        price=lambda x: x,
    )  # fmt: skip
    assert len(bars) == len(five)
    newest = bars[0]
    last = five.iloc[-1]
    assert (newest["o"], newest["h"], newest["l"], newest["c"], newest["v"]) == (
        last["open"], last["high"], last["low"], last["close"], last["volume"],
    )  # fmt: skip


def test_trade_file_prints_and_mbo_feed_depth() -> None:
    trades = load_feed(FeedConfig(roots=["ES"], path=ESM8, default_trade_size=1), SHARED_DATA)
    assert trades.kind == "trades" and len(trades.history.print_ts) == 74_907
    first = next(trades.events())
    assert first.prints[0][1] == 1 and first.prints[0][2] == -1
    resolve_shared(ESH4_MBO)
    mbo = load_feed(FeedConfig(roots=["ES"], path=ESH4_MBO), SHARED_DATA)
    events = mbo.events()
    snap = next(events)
    assert snap.reset and snap.levels is not None and len(snap.levels) > 100
    sizes = [e for e in (next(events) for _ in range(2000)) if e.prints]
    assert sizes, "trades in the first 2,000 events"
    total_t = int(mbo.history.print_size.sum())
    assert total_t == 9_892
    assert all(lvl[2] >= 0 for lvl in snap.levels)
    assert DOM_RESET == 6
    assert np.all(np.diff(mbo.history.print_ts) >= 0)
    assert Path(SHARED_DATA).exists()


def test_every_account_judges_closed_periods_at_the_data_time() -> None:
    gw = make_app().state.gateway
    assert gw.market.feeds
    for rt in gw.market.feeds:
        assert rt.offset_ns != 0  # the file (2025) is presented at the app's start (2026)
        for info in rt.contracts:
            for acct in gw.state.accounts.values():
                eng = acct.sim.engine(info.name)
                assert eng is not None and eng.cal_offset_ns == rt.offset_ns
