"""Order-book throughput on real data: the ESH4 MBO file (68,792 records, 2023-12-25 Globex reopen).

Figures printed:

* ``L3Book.apply_mbo``: every MBO record (A/C/M/T/F) of the file, records/s.
* ``L2Book.apply_level``: the L2 level-update stream that the MBO replay produces (one update per change of a price
  level's aggregate size: about 72k), updates/s. Target: >= 200,000/s.
* the same stream through ``L2Book.apply`` (``DepthUpdate`` objects, price in points).
* apply + top of book after every update, and apply + 10 levels after every update, for ``L2Book`` and two
  baselines measured in-process (the issue names no peer for the book): a naive ``dict`` book that sorts on every
  query, and a ``sortedcontainers.SortedDict`` book (if the package is installed).

Inputs are decoded to Python lists before any timed loop. Each figure is the best of ``REPEATS`` runs.
Run: ``python benchmarks/bench_book.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from propdesk.data.book import L2Book, L3Book
from propdesk.data.loaders import load_mbo
from propdesk.model.data import DepthUpdate
from propdesk.model.enums import BookAction, BookSide

MBO = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "databento_glbx_nautilus"
    / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
)
REPEATS = 5
TARGET_L2 = 200_000
Update = tuple[int, int, int]  # (side, fixed-point price, new aggregate size)


def best_of(fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def level_stream(acts: list[str], sides: list[str], px: list[int], sz: list[int], oids: list[int]) -> list[Update]:
    """The L2 level updates an MBO replay produces, derived with a plain dict model (not the code under test)."""
    orders: dict[int, tuple[int, int, int]] = {}
    levels: dict[tuple[int, int], int] = {}
    out: list[Update] = []

    def bump(side: int, price: int, delta: int) -> None:
        new = levels.get((side, price), 0) + delta
        if new > 0:
            levels[(side, price)] = new
        else:
            levels.pop((side, price), None)
        out.append((side, price, max(new, 0)))

    for a, s, p, z, o in zip(acts, sides, px, sz, oids, strict=True):
        side = 1 if s == "B" else 2
        if a == "A":
            orders[o] = (side, p, z)
            bump(side, p, z)
        elif a == "C":
            old = orders.pop(o)
            bump(old[0], old[1], -old[2])
        elif a == "M":
            old = orders[o]
            bump(old[0], old[1], -old[2])
            orders[o] = (side, p, z)
            bump(side, p, z)
    return out


class DictBook:
    """Baseline: a dict per side, sorted on every query."""

    def __init__(self) -> None:
        self.bid: dict[int, int] = {}
        self.ask: dict[int, int] = {}

    def apply_level(self, side: int, price: int, size: int) -> None:
        d = self.bid if side == 1 else self.ask
        if size:
            d[price] = size
        else:
            d.pop(price, None)

    def top(self) -> tuple[int, int]:
        return max(self.bid, default=0), min(self.ask, default=0)

    def levels(self, n: int) -> tuple[list[int], list[int]]:
        return sorted(self.bid, reverse=True)[:n], sorted(self.ask)[:n]


def main() -> None:
    mbo = load_mbo(MBO)
    acts = [chr(c) for c in mbo.action.tolist()]
    sides = [chr(c) for c in mbo.side.tolist()]
    px, sz, oids = mbo.price_raw.tolist(), mbo.size.tolist(), mbo.order_id.tolist()
    flags, tse = mbo.flags.tolist(), mbo.ts_event_ns.tolist()
    n_rec = len(acts)
    updates = level_stream(acts, sides, px, sz, oids)
    n_up = len(updates)
    up_side = [u[0] for u in updates]
    up_px = [u[1] for u in updates]
    up_sz = [u[2] for u in updates]
    depth = [
        DepthUpdate("ESH4", BookAction.UPDATE if s else BookAction.DELETE, BookSide(sd), p / 1e9, s, 0)
        for sd, p, s in updates
    ]
    print(f"ESH4 MBO: {n_rec:,} records -> {n_up:,} L2 level updates; best of {REPEATS} runs")

    def run_l3() -> None:
        apply = L3Book().apply_mbo
        for i in range(n_rec):
            apply(acts[i], sides[i], px[i], sz[i], oids[i], flags[i], tse[i])

    def run_l2() -> None:
        apply = L2Book().apply_level
        for s, p, z in zip(up_side, up_px, up_sz, strict=True):
            apply(s, p, z)

    def run_l2_depth() -> None:
        apply = L2Book().apply
        for u in depth:
            apply(u)

    def run_l2_top() -> None:
        b = L2Book()
        apply, bb, ba = b.apply_level, b.best_bid_fixed, b.best_ask_fixed
        for s, p, z in zip(up_side, up_px, up_sz, strict=True):
            apply(s, p, z)
            bb()
            ba()

    def run_l2_top10() -> None:
        b = L2Book()
        apply, lv = b.apply_level, b.levels_fixed
        for s, p, z in zip(up_side, up_px, up_sz, strict=True):
            apply(s, p, z)
            lv(BookSide.BID, 10)
            lv(BookSide.ASK, 10)

    def run_dict_top() -> None:
        b = DictBook()
        apply, top = b.apply_level, b.top
        for s, p, z in zip(up_side, up_px, up_sz, strict=True):
            apply(s, p, z)
            top()

    def run_dict_top10() -> None:
        b = DictBook()
        apply, lv = b.apply_level, b.levels
        for s, p, z in zip(up_side, up_px, up_sz, strict=True):
            apply(s, p, z)
            lv(10)

    rows: list[tuple[str, int, float]] = [
        ("L3Book.apply_mbo (records)", n_rec, best_of(run_l3)),
        ("L2Book.apply_level", n_up, best_of(run_l2)),
        ("L2Book.apply(DepthUpdate)", n_up, best_of(run_l2_depth)),
        ("L2Book apply_level + best bid/ask", n_up, best_of(run_l2_top)),
        ("L2Book apply_level + 10 levels x2", n_up, best_of(run_l2_top10)),
        ("baseline dict+max/min  apply + top", n_up, best_of(run_dict_top)),
        ("baseline dict+sorted() apply + 10 levels x2", n_up, best_of(run_dict_top10)),
    ]
    try:
        from sortedcontainers import SortedDict  # type: ignore[import-untyped]  # noqa: PLC0415 - optional baseline
    except ImportError:
        print("sortedcontainers not installed: SortedDict baseline skipped")
    else:

        def run_sorted_top10() -> None:
            bid = SortedDict()
            ask = SortedDict()
            for s, p, z in zip(up_side, up_px, up_sz, strict=True):
                d = bid if s == 1 else ask
                if z:
                    d[p] = z
                else:
                    d.pop(p, None)
                bid.items()[-10:]
                ask.items()[:10]

        rows.append(("baseline SortedDict apply + 10 levels x2", n_up, best_of(run_sorted_top10)))

    for name, n, secs in rows:
        print(f"{name:<46} {n / secs:>12,.0f} /s   ({secs * 1e3:7.1f} ms)")
    l2_rate = n_up / rows[1][2]
    verdict = "PASS" if l2_rate >= TARGET_L2 else "FAIL"
    print(f"target L2Book.apply_level >= {TARGET_L2:,}/s: {verdict} ({l2_rate:,.0f}/s)")


if __name__ == "__main__":
    main()
