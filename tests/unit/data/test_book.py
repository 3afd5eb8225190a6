"""Tests of the L2 and L3 order books (propdesk.data.book), with hand-built sequences and the real ESH4 MBO file."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import databento as db
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propdesk.core.errors import DataError
from propdesk.data.book import (
    F_LAST,
    F_SNAPSHOT,
    PRICE_SCALE,
    L2Book,
    L3Book,
    from_fixed,
    replay_mbo,
    sample_first_per_second,
    to_fixed,
)
from propdesk.data.loaders import MboArrays, load_mbo
from propdesk.model.data import DepthUpdate, QuoteTick
from propdesk.model.enums import BookAction, BookSide
from tests.conftest import ESH4_MBO, ESH4_MBP10_1S, resolve_shared

BID, ASK = BookSide.BID, BookSide.ASK
ESH4_MBO_SNAPSHOT_ONLY = "databento_glbx_nautilus/esh4-glbx-mdp3-20231224.mbo.dbn.zst"
MBP10_SAMPLE = "databento_glbx_format_samples/GLBX.MDP3.test_data.mbp-10.dbn.zst"
OPEN_NS = int(pd.Timestamp("2023-12-25 23:00:00", tz="UTC").value)


def fx(points: float) -> int:
    """Points -> fixed-point, computed independently of the code under test (exact for quarter-point prices)."""
    return round(points * 4) * (PRICE_SCALE // 4)


# --------------------------------------------------------------------------------------------------- L2 basics


def test_fixed_point_conversion_round_trips_and_rejects_nan() -> None:
    assert to_fixed(4800.25) == 4_800_250_000_000
    assert to_fixed(0.1) == 100_000_000
    assert from_fixed(4_800_250_000_000) == 4800.25
    with pytest.raises(DataError):
        to_fixed(math.nan)


def test_apply_level_orders_levels_best_first() -> None:
    book = L2Book()
    for px, sz in ((4800.0, 5), (4800.5, 2), (4799.75, 7), (4800.25, 1)):
        book.apply_level(BID, fx(px), sz)
    for px, sz in ((4801.0, 3), (4800.75, 4), (4802.0, 9)):
        book.apply_level(ASK, fx(px), sz)
    assert book.best_bid() == (4800.5, 2)
    assert book.best_ask() == (4800.75, 4)
    assert book.levels(BID, 10) == [(4800.5, 2), (4800.25, 1), (4800.0, 5), (4799.75, 7)]
    assert book.levels(ASK, 2) == [(4800.75, 4), (4801.0, 3)]
    assert book.levels_fixed(ASK, 1) == [(fx(4800.75), 4)]
    assert book.levels(ASK, 0) == []
    assert book.level_count(BID) == 4
    # update in place, then delete the best bid: the next level becomes best
    book.apply_level(BID, fx(4800.0), 11)
    book.apply_level(BID, fx(4800.5), 0)
    assert book.best_bid() == (4800.25, 1)
    assert book.size_at(BID, fx(4800.0)) == 11
    assert book.size_at(BID, fx(4800.5)) == 0
    assert book.missing_deletes == 0
    book.apply_level(ASK, fx(4900.0), 0)
    assert book.missing_deletes == 1


def test_apply_level_rejects_negative_size() -> None:
    book = L2Book()
    with pytest.raises(DataError, match="negative size"):
        book.apply_level(BID, fx(4800.0), -1)


def test_spread_mid_depth_imbalance() -> None:
    book = L2Book()
    assert book.spread() is None
    assert book.mid() is None
    assert book.imbalance(5) is None
    assert book.best_bid() is None
    assert book.best_ask() is None
    book.apply_snapshot(
        [(fx(4800.0), 10), (fx(4799.75), 20), (fx(4799.5), 30)],
        [(fx(4800.25), 5), (fx(4800.5), 15), (fx(4800.75), 0)],  # a size-0 MBP level is empty
    )
    assert book.spread() == 0.25
    assert book.mid() == 4800.125
    assert book.depth(BID, 2) == 30
    assert book.depth(ASK, 10) == 20
    assert book.level_count(ASK) == 2
    assert book.imbalance(1) == pytest.approx((10 - 5) / 15)
    assert book.imbalance(3) == pytest.approx((60 - 20) / 80)
    book.clear(ASK)
    assert book.imbalance(3) == 1.0
    assert book.best_ask() is None
    assert book.best_bid() == (4800.0, 10)


def test_snapshot_replaces_book_and_rejects_duplicate_price() -> None:
    book = L2Book()
    book.apply_level(BID, fx(4700.0), 3)
    book.apply_snapshot([(fx(4800.0), 1)], [(fx(4801.0), 2)])
    assert book.levels(BID) == [(4800.0, 1)]
    assert book.levels(ASK) == [(4801.0, 2)]
    with pytest.raises(DataError, match="twice"):
        book.apply_snapshot([(fx(4800.0), 1), (fx(4800.0), 2)], [])


def crossed_state(book: L2Book) -> tuple[bool, int, int | None]:
    return book.crossed, book.crossed_events, book.last_crossed_ts_ns


def test_crossed_detection_counts_checks_and_keeps_last_time() -> None:
    book = L2Book()
    book.apply_snapshot([(fx(4800.0), 1)], [(fx(4800.25), 1)], ts_ns=100)
    assert not book.crossed
    assert book.crossed_events == 0
    assert book.last_crossed_ts_ns is None
    book.apply_level(BID, fx(4800.25), 2)  # locked (bid == ask) counts as crossed
    assert book.is_crossed()
    assert book.crossed_events == 0  # apply_level alone does not run the check
    assert book.check_crossed(200)
    book.apply_level(BID, fx(4800.5), 2)
    assert book.check_crossed(300)
    assert crossed_state(book) == (True, 2, 300)
    book.apply_level(BID, fx(4800.5), 0)
    book.apply_level(BID, fx(4800.25), 0)
    assert not book.check_crossed(400)
    assert crossed_state(book) == (False, 2, 300)
    assert book.spread() == 0.25


def test_to_quote() -> None:
    book = L2Book()
    book.apply_snapshot([(fx(4800.0), 7)], [(fx(4800.5), 9)])
    assert book.to_quote("ESH4", 123, 456) == QuoteTick("ESH4", 4800.0, 4800.5, 7, 9, 123, 456)
    book.clear(BID)
    with pytest.raises(DataError, match="bid side"):
        book.to_quote("ESH4", 1)


def test_apply_depth_update() -> None:
    book = L2Book()

    def upd(action: BookAction, side: BookSide | None, px: float, sz: int, ts: int, last: bool = True) -> None:
        book.apply(DepthUpdate("ESH4", action, side, px, sz, ts, is_last=last))

    upd(BookAction.ADD, BID, 4800.0, 4, 1)
    upd(BookAction.ADD, ASK, 4800.25, 6, 2)
    upd(BookAction.UPDATE, BID, 4800.0, 9, 3)
    assert book.best_bid() == (4800.0, 9)
    upd(BookAction.ADD, BID, 4800.5, 1, 4, last=False)  # crosses, but not a consistent point
    assert book.crossed_events == 0
    upd(BookAction.DELETE, BID, 4800.5, 0, 4)
    assert book.crossed_events == 0
    assert book.levels(BID) == [(4800.0, 9)]
    upd(BookAction.ADD, BID, 4800.25, 1, 5)
    assert (book.crossed_events, book.last_crossed_ts_ns) == (1, 5)
    upd(BookAction.CLEAR, ASK, 0.0, 0, 6)
    assert book.best_ask() is None
    assert book.best_bid() == (4800.25, 1)
    upd(BookAction.CLEAR, None, 0.0, 0, 7)
    assert book.level_count(BID) == 0
    with pytest.raises(DataError, match="no side"):
        upd(BookAction.ADD, None, 4800.0, 1, 8)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([BID, ASK]), st.integers(min_value=-20, max_value=20), st.integers(0, 5)),
        max_size=200,
    )
)
def test_l2_matches_naive_model(ops: list[tuple[BookSide, int, int]]) -> None:
    """Random level updates agree with a plain dict model sorted on demand."""
    book = L2Book()
    model: dict[BookSide, dict[int, int]] = {BID: {}, ASK: {}}
    base = fx(4800.0)
    for side, tick, size in ops:
        price = base + tick * (PRICE_SCALE // 4)
        book.apply_level(side, price, size)
        if size:
            model[side][price] = size
        else:
            model[side].pop(price, None)
    bids = sorted(model[BID].items(), reverse=True)
    asks = sorted(model[ASK].items())
    assert book.levels_fixed(BID, 1000) == bids
    assert book.levels_fixed(ASK, 7) == asks[:7]
    assert book.is_crossed() == bool(bids and asks and bids[0][0] >= asks[0][0])


# ------------------------------------------------------------------------------------------------- MBP-10 file


def test_mbp10_snapshot_then_updates_match_every_record(shared_data: Callable[[str], Path]) -> None:
    """Record 0's 10 levels seed the book; each later record's own update (A/C/M at level price) must reproduce
    that record's full 10 levels on both sides."""
    records = [r for r in db.DBNStore.from_file(shared_data(MBP10_SAMPLE)) if isinstance(r, db.MBP10Msg)]
    assert len(records) == 4

    def levels(rec: db.MBP10Msg) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids = [(lv.bid_px, lv.bid_sz) for lv in rec.levels if lv.bid_sz > 0]
        asks = [(lv.ask_px, lv.ask_sz) for lv in rec.levels if lv.ask_sz > 0]
        return bids, asks

    book = L2Book()
    bids, asks = levels(records[0])
    book.apply_snapshot(bids, asks, ts_ns=records[0].ts_event)
    assert book.best_bid_fixed() == bids[0]
    assert book.best_ask_fixed() == asks[0]
    assert book.levels_fixed(BID, 10) == bids
    assert book.levels_fixed(ASK, 10) == asks
    for rec in records[1:]:
        side = BID if str(rec.side) in {"B", "Side.BID"} else ASK
        action = str(rec.action)
        assert action in {"A", "Action.ADD"}, action  # the sample holds adds only
        book.add_level(side, rec.price, rec.size)
        bids, asks = levels(rec)
        assert book.levels_fixed(BID, 10) == bids
        assert book.levels_fixed(ASK, 10) == asks
        assert book.best_bid() == (rec.levels[0].bid_px / 1e9, rec.levels[0].bid_sz)
        assert book.best_ask() == (rec.levels[0].ask_px / 1e9, rec.levels[0].ask_sz)
    assert book.crossed_events == 0


# --------------------------------------------------------------------------------------------------- L3 basics


def test_l3_add_cancel_modify_clear() -> None:
    book = L3Book()
    p0, p1, p2 = fx(4800.0), fx(4800.25), fx(4800.5)
    assert book.apply_mbo("A", "B", p0, 3, 1, F_LAST, 10)
    book.apply_mbo("A", "B", p0, 4, 2, F_LAST, 11)
    book.apply_mbo("A", "A", p2, 5, 3, F_LAST, 12)
    assert book.l2.levels_fixed(BID) == [(p0, 7)]
    assert book.order_count == 3
    # partial cancel, then full cancel
    book.apply_mbo("C", "B", p0, 1, 2, F_LAST, 13)
    assert book.order(2) == (BID, p0, 3)
    assert book.l2.levels_fixed(BID) == [(p0, 6)]
    book.apply_mbo("C", "B", p0, 3, 1, F_LAST, 14)
    assert book.order(1) is None
    assert book.l2.levels_fixed(BID) == [(p0, 3)]
    # modify: order 2 moves up a tick with a new size
    book.apply_mbo("M", "B", p1, 8, 2, F_LAST, 15)
    assert book.l2.levels_fixed(BID) == [(p1, 8)]
    assert book.order(2) == (BID, p1, 8)
    # size-only modify at the same price
    book.apply_mbo("M", "A", p2, 2, 3, F_LAST, 16)
    assert book.l2.levels_fixed(ASK) == [(p2, 2)]
    # trades and fills change nothing
    book.apply_mbo("T", "A", p2, 2, 0, 0, 17)
    book.apply_mbo("F", "A", p2, 2, 3, 0, 17)
    book.apply_mbo("N", "N", 0, 0, 0, F_LAST, 17)
    assert book.l2.levels_fixed(ASK) == [(p2, 2)]
    assert book.l2.spread() == 0.25
    book.apply_mbo("R", "N", 0, 0, 0, F_LAST, 18)
    assert book.order_count == 0
    assert book.l2.best_bid() is None
    assert book.l2.best_ask() is None
    assert book.events == 9  # every record above with F_LAST (T and F carry none)
    assert (book.unknown_order_events, book.duplicate_adds, book.l2.crossed_events) == (0, 0, 0)


def test_l3_unknown_orders_and_duplicate_adds_are_counted_not_raised() -> None:
    book = L3Book()
    p0 = fx(4800.0)
    book.apply_mbo("C", "B", p0, 1, 99, F_LAST, 1)
    assert book.unknown_order_events == 1
    assert book.order_count == 0
    book.apply_mbo("M", "B", p0, 4, 98, F_LAST, 2)  # unknown modify: the order's new state is added
    assert book.unknown_order_events == 2
    assert book.l2.levels_fixed(BID) == [(p0, 4)]
    book.apply_mbo("A", "B", fx(4799.0), 2, 98, F_LAST, 3)  # re-add of a live id replaces it
    assert book.duplicate_adds == 1
    assert book.l2.levels_fixed(BID) == [(fx(4799.0), 2)]


def test_l3_consistency_and_crossed_check_only_at_f_last() -> None:
    book = L3Book()
    book.apply_mbo("A", "A", fx(4800.0), 1, 1, F_LAST, 1)
    assert not book.apply_mbo("A", "B", fx(4800.25), 1, 2, 0, 2)  # crossed mid-event
    assert book.l2.crossed_events == 0
    assert book.apply_mbo("C", "A", fx(4800.0), 1, 1, F_LAST, 2)  # event ends uncrossed
    assert book.l2.crossed_events == 0
    assert book.apply_mbo("A", "A", fx(4800.25), 1, 3, F_LAST, 3)  # locked at an event end
    assert (book.l2.crossed_events, book.l2.last_crossed_ts_ns) == (1, 3)


def test_l3_snapshot_replaces_the_book() -> None:
    book = L3Book()
    book.apply_mbo("A", "B", fx(4700.0), 9, 1, F_LAST, 1)
    book.apply_mbo("A", "B", fx(4800.0), 2, 10, F_SNAPSHOT, 2)
    assert book.in_snapshot
    assert book.order(1) is None  # the first snapshot record cleared the book
    book.apply_mbo("A", "A", fx(4801.0), 3, 11, F_SNAPSHOT | F_LAST, 2)
    assert not book.in_snapshot
    assert book.l2.levels_fixed(BID) == [(fx(4800.0), 2)]
    assert book.l2.levels_fixed(ASK) == [(fx(4801.0), 3)]


def test_l3_rejects_bad_records() -> None:
    book = L3Book()
    with pytest.raises(DataError, match="unknown MBO action"):
        book.apply_mbo("X", "B", fx(4800.0), 1, 1, F_LAST, 1)
    with pytest.raises(DataError, match="side"):
        book.apply_mbo("A", "N", fx(4800.0), 1, 1, F_LAST, 1)


def test_l3_apply_depth_update() -> None:
    book = L3Book()
    book.apply(DepthUpdate("ESH4", BookAction.ADD, BID, 4800.0, 5, 1, order_id=7))
    book.apply(DepthUpdate("ESH4", BookAction.ADD, ASK, 4800.5, 2, 1, order_id=8))
    book.apply(DepthUpdate("ESH4", BookAction.UPDATE, BID, 4800.25, 3, 2, order_id=7))
    assert book.l2.levels(BID) == [(4800.25, 3)]
    book.apply(DepthUpdate("ESH4", BookAction.DELETE, ASK, 4800.5, 2, 3, order_id=8))
    assert book.l2.best_ask() is None
    book.apply(DepthUpdate("ESH4", BookAction.CLEAR, None, 0.0, 0, 4))
    assert book.order_count == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("AACM"),
            st.sampled_from("BA"),
            st.integers(-8, 8),
            st.integers(1, 9),
            st.integers(1, 12),
        ),
        max_size=150,
    )
)
def test_l3_levels_equal_sum_of_orders(ops: list[tuple[str, str, int, int, int]]) -> None:
    """After any A/C/M sequence, every level is the sum of the resting orders at that price."""
    book = L3Book()
    base = fx(4800.0)
    for action, side, tick, size, oid in ops:
        book.apply_mbo(action, side, base + tick * (PRICE_SCALE // 4), size, oid, F_LAST, 0)
    totals: dict[tuple[BookSide, int], int] = {}
    for oid in range(1, 13):
        o = book.order(oid)
        if o is not None:
            totals[(o[0], o[1])] = totals.get((o[0], o[1]), 0) + o[2]
    bids = sorted(((p, s) for (sd, p), s in totals.items() if sd == BID), reverse=True)
    asks = sorted((p, s) for (sd, p), s in totals.items() if sd == ASK)
    assert book.l2.levels_fixed(BID, 100) == bids
    assert book.l2.levels_fixed(ASK, 100) == asks


# ------------------------------------------------------------------------------------------- ESH4 MBO real data


@pytest.fixture(scope="module")
def esh4_events() -> MboArrays:
    return load_mbo(resolve_shared(ESH4_MBO))


def _reference_rows(path: Path) -> list[tuple[int, list[tuple[int, int]], list[tuple[int, int]]]]:
    ref = pd.read_csv(path)
    secs = pd.to_datetime(ref["ts_utc"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    rows = []
    for i in range(len(ref)):
        r = ref.iloc[i]
        sides = []
        for name in ("bid", "ask"):
            lv = []
            for j in range(10):
                px, sz = r[f"{name}_px_{j:02d}"], r[f"{name}_sz_{j:02d}"]
                if pd.isna(px) or pd.isna(sz) or sz == 0:  # a missing level (the ESH4 file has none)
                    continue
                lv.append((fx(float(px)), int(sz)))
            sides.append(lv)
        rows.append((int(secs[i]), sides[0], sides[1]))
    return rows


def test_esh4_mbo_replay_matches_mbp10_1s_reference_every_second(esh4_events: MboArrays) -> None:
    """Every one of the 2,926 reference rows (23:00:00 .. 23:59:59 UTC, the 23:00:00 crossed pre-open row included)
    equals the 10-level book sampled by ``sample_first_per_second``, price and size at every level on both sides."""
    ref = _reference_rows(resolve_shared(ESH4_MBP10_1S))
    assert len(ref) == 2926
    book = L3Book()
    samples = {s.second_ns: s for s in sample_first_per_second(esh4_events, 10, book)}
    mismatches = []
    for second, bids, asks in ref:
        s = samples.get(second)
        if s is None or s.bids != bids or s.asks != asks:
            mismatches.append(pd.Timestamp(second, tz="UTC"))
    assert mismatches == []
    # the sampler emits nothing the reference lacks inside its window
    in_window = [t for t in samples if ref[0][0] <= t <= ref[-1][0]]
    assert len(in_window) == len(ref)
    assert ref[0][0] == OPEN_NS
    assert (book.unknown_order_events, book.duplicate_adds, book.l2.missing_deletes) == (0, 0, 0)
    assert book.events == int(np.count_nonzero(esh4_events.flags & F_LAST))


def test_esh4_book_is_crossed_only_in_the_pre_open(esh4_events: MboArrays) -> None:
    crossed_recv: list[int] = []
    recv = esh4_events.ts_recv_ns.tolist()

    def check(book: L3Book, i: int) -> None:
        if book.l2.crossed:
            crossed_recv.append(recv[i])

    book = replay_mbo(esh4_events, L3Book(), check)
    assert book.l2.crossed_events == len(crossed_recv) > 0
    # shared/data/README.md: the last crossed event is received at 23:00:00.000069 UTC, never crossed afterwards
    assert max(crossed_recv) < OPEN_NS + 70_000
    assert max(crossed_recv) >= OPEN_NS
    assert book.l2.last_crossed_ts_ns is not None
    assert book.l2.last_crossed_ts_ns < OPEN_NS + 70_000
    assert not book.l2.crossed
    assert book.l2.spread() == 0.25


def test_esh4_snapshot_day_then_next_day_gives_the_same_book(esh4_events: MboArrays) -> None:
    """The 2023-12-24 file is the snapshot alone; replaying it and then the 12-25 file (which starts with the same
    snapshot, without an R) must equal replaying 12-25 alone: the second snapshot replaces the first."""
    snap = load_mbo(resolve_shared(ESH4_MBO_SNAPSHOT_ONLY))
    both = replay_mbo(snap)
    after_snapshot = (both.l2.levels_fixed(BID, 1000), both.l2.levels_fixed(ASK, 1000), both.order_count)
    assert both.order_count == len(snap)
    replay_mbo(esh4_events, both)
    alone = replay_mbo(esh4_events)
    for side in (BID, ASK):
        assert both.l2.levels_fixed(side, 1000) == alone.l2.levels_fixed(side, 1000)
    assert both.order_count == alone.order_count
    assert both.duplicate_adds == 0
    # the 12-25 file's snapshot is the same book as the 12-24 file
    first_live = int(np.argmax((esh4_events.flags & F_SNAPSHOT) == 0))
    e, k = esh4_events, first_live
    head = dataclasses.replace(
        e,
        **{f.name: getattr(e, f.name)[:k] for f in dataclasses.fields(e) if f.name != "symbols"},
    )
    head_book = replay_mbo(head)
    assert (head_book.l2.levels_fixed(BID, 1000), head_book.l2.levels_fixed(ASK, 1000)) == after_snapshot[:2]


def test_replay_names_the_bad_record_and_requires_one_instrument(esh4_events: MboArrays) -> None:
    e, k = esh4_events, 5
    head = dataclasses.replace(
        e, **{f.name: getattr(e, f.name)[:k].copy() for f in dataclasses.fields(e) if f.name != "symbols"}
    )
    head.action[3] = ord("X")
    with pytest.raises(DataError, match=r"row 4: unknown MBO action 'X'"):
        replay_mbo(head)
    head.action[3] = ord("A")
    head.instrument_id[4] = 1
    with pytest.raises(DataError, match="2 instruments"):
        replay_mbo(head)
    only = replay_mbo(head, instrument_id=int(e.instrument_id[0]))
    assert only.order_count == 4
