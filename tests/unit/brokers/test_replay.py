"""ReplayFeed: merge order by event time, the per-record sequence (clock, matching, publication), pacing with an
injected sleep and wall clock, full speed, stop(), and parse_speed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from propdesk.brokers.sim.replay import ReplayFeed, ReplayRecord, event_ts_ns, parse_speed
from propdesk.core.clock import SimClock
from propdesk.core.errors import ConfigError, TimerError
from propdesk.model.data import Bar, DepthUpdate, QuoteTick, Timeframe, TradeTick
from propdesk.model.enums import AggressorSide, BookAction, BookSide

S = 1_000_000_000
MIN = 60 * S
T0 = 1_759_276_800 * S  # 2025-10-01 00:00 UTC
TF = Timeframe.parse("1m")


def bar(i: int, close: float = 6700.0) -> Bar:
    """The 1-minute bar opening i minutes after T0 (closes at T0 + (i + 1) min)."""
    return Bar("ESZ5", TF, close, close + 0.5, close - 0.5, close, 10, T0 + i * MIN, T0 + (i + 1) * MIN)


def trade(ts: int, price: float = 6700.25) -> TradeTick:
    return TradeTick("ESZ5", price, 1, AggressorSide.BUYER, ts)


class Recorder:
    """Stub matcher and sink: records (who, record, clock time, fake wall time) in call order."""

    def __init__(self, clock: SimClock, wall: FakeWall | None = None) -> None:
        self.clock = clock
        self.wall = wall
        self.calls: list[tuple[str, ReplayRecord, int, float]] = []

    def _note(self, who: str, rec: ReplayRecord) -> None:
        self.calls.append((who, rec, self.clock.timestamp_ns(), self.wall.now if self.wall else 0.0))

    def process_bar(self, bar: Bar) -> None:
        self._note("match", bar)

    def process_trade(self, trade: TradeTick) -> None:
        self._note("match", trade)

    def process_quote(self, quote: QuoteTick) -> None:
        self._note("match", quote)

    def process_depth(self, update: DepthUpdate) -> None:
        self._note("match", update)

    def publish_bar(self, bar: Bar) -> None:
        self._note("bar", bar)

    def on_broker_event(self, event: object) -> None:
        assert isinstance(event, TradeTick | QuoteTick | DepthUpdate)
        self._note("event", event)

    def published(self) -> list[ReplayRecord]:
        return [rec for who, rec, _, _ in self.calls if who != "match"]


class FakeWall:
    """A fake monotonic clock and an async sleep that advances it (no real waiting)."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.after_sleep: Callable[[], None] | None = None

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.after_sleep is not None:
            self.after_sleep()


def make_feed(
    sources: list[object], *, speed: float | None, wall: FakeWall, **kw: object
) -> tuple[ReplayFeed, Recorder]:
    first = min(event_ts_ns(next(iter(s))) for s in sources)  # type: ignore[call-overload]
    clock = SimClock(first - MIN)
    rec = Recorder(clock, wall)
    feed = ReplayFeed(
        clock,
        rec,
        rec,
        sources,  # type: ignore[arg-type]
        speed=speed,
        sleep=wall.sleep,
        monotonic=wall.monotonic,
        **kw,  # type: ignore[arg-type]
    )
    return feed, rec


# ------------------------------------------------------------------------------------------------ merge and sequence


@pytest.mark.asyncio
async def test_bars_merge_with_trades_at_their_close_time() -> None:
    bars = [bar(0), bar(1), bar(2)]  # close at T0+1m, +2m, +3m
    trades = [trade(T0 + 30 * S), trade(T0 + MIN), trade(T0 + 90 * S), trade(T0 + 3 * MIN + 1)]
    feed, rec = make_feed([bars, trades], speed=None, wall=FakeWall())
    await feed.run()
    played = rec.published()
    # a bar and a trade at the same time: the first source (bars) first
    assert played == [trades[0], bars[0], trades[1], trades[2], bars[1], bars[2], trades[3]]
    assert [event_ts_ns(r) for r in played] == sorted(event_ts_ns(r) for r in played)
    assert feed.finished and feed.records == 7 and feed.bars == 3 and feed.trades == 4
    assert feed.first_ts_ns == T0 + 30 * S and feed.last_ts_ns == T0 + 3 * MIN + 1


@pytest.mark.asyncio
async def test_each_record_is_matched_then_published_with_the_clock_at_its_event_time() -> None:
    quotes = [QuoteTick("ESZ5", 6700.0, 6700.25, 5, 7, T0 + 10 * S)]
    depth = [DepthUpdate("ESZ5", BookAction.ADD, BookSide.BID, 6699.75, 3, T0 + 20 * S)]
    feed, rec = make_feed([[bar(0)], quotes, depth], speed=None, wall=FakeWall())
    await feed.run()
    whos = [who for who, _, _, _ in rec.calls]
    assert whos == ["match", "event", "match", "event", "match", "bar"]
    for who, r, clock_ns, _ in rec.calls:
        assert clock_ns == event_ts_ns(r), who
    assert (feed.quotes, feed.depth, feed.bars) == (1, 1, 1)
    assert feed.last_price == 6700.0  # the bar's close, played last
    assert feed.clock.timestamp_ns() == T0 + MIN


@pytest.mark.asyncio
async def test_timers_fire_before_the_record_that_passes_them() -> None:
    feed, rec = make_feed([[bar(0), bar(1)]], speed=None, wall=FakeWall())
    fired: list[tuple[int, int]] = []
    feed.clock.set_time_alert("t", T0 + 90 * S, lambda e: fired.append((e.ts_event_ns, len(rec.calls))))
    await feed.run()
    assert fired == [(T0 + 90 * S, 2)]  # after bar 0 (match + bar), before bar 1 (closing at T0+2m)


@pytest.mark.asyncio
async def test_a_source_out_of_order_raises_from_the_clock() -> None:
    feed, _ = make_feed([[bar(1), bar(0)]], speed=None, wall=FakeWall())
    with pytest.raises(TimerError):
        await feed.run()


@pytest.mark.asyncio
async def test_a_feed_plays_once() -> None:
    feed, _ = make_feed([[bar(0)]], speed=None, wall=FakeWall())
    await feed.run()
    with pytest.raises(RuntimeError):
        await feed.run()


# ------------------------------------------------------------------------------------------------ pacing


@pytest.mark.asyncio
async def test_paced_records_play_at_their_scheduled_wall_time() -> None:
    wall = FakeWall(start=100.0)
    bars = [bar(i) for i in range(5)]  # one minute apart
    feed, rec = make_feed([bars], speed=60.0, wall=wall, max_wait_s=None)
    await feed.run()
    played_at = [w for who, _, _, w in rec.calls if who == "bar"]
    # speed 60: one minute of data per wall second, anchored at the first record
    assert played_at == pytest.approx([100.0 + i * 60 / 60.0 for i in range(5)])
    assert sum(wall.sleeps) == pytest.approx(4.0)
    assert max(wall.sleeps) <= feed.slice_s + 1e-12  # slept in slices
    assert feed.slept_s == pytest.approx(4.0)


@pytest.mark.asyncio
async def test_pacing_does_not_drift_when_the_work_takes_wall_time() -> None:
    wall = FakeWall(start=0.0)
    bars = [bar(i) for i in range(4)]

    def busy(_r: ReplayRecord) -> None:
        wall.now += 0.1  # each record takes 0.1 s of processing

    feed, rec = make_feed([bars], speed=120.0, wall=wall, max_wait_s=None, on_record=busy)
    await feed.run()
    played_at = [w for who, _, _, w in rec.calls if who == "bar"]
    assert played_at == pytest.approx([0.0, 0.5, 1.0, 1.5])  # the schedule, not 0.5 s + processing per gap


@pytest.mark.asyncio
async def test_long_gaps_are_capped_at_max_wait() -> None:
    wall = FakeWall(start=0.0)
    bars = [bar(0), bar(1), bar(120), bar(121)]  # a 2-hour halt between bar 1 and bar 120
    feed, rec = make_feed([bars], speed=60.0, wall=wall, max_wait_s=2.0)
    await feed.run()
    played_at = [w for who, _, _, w in rec.calls if who == "bar"]
    assert played_at == pytest.approx([0.0, 1.0, 3.0, 4.0])  # the 119 s wait became 2 s
    assert feed.skipped_s == pytest.approx(117.0)


@pytest.mark.asyncio
async def test_records_at_the_same_time_do_not_sleep() -> None:
    wall = FakeWall()
    trades = [trade(T0 + S), trade(T0 + S), trade(T0 + S)]
    feed, _ = make_feed([trades], speed=1.0, wall=wall)
    await feed.run()
    assert wall.sleeps == []
    assert feed.records == 3


@pytest.mark.asyncio
async def test_full_speed_never_sleeps_but_yields_every_n_records() -> None:
    wall = FakeWall()
    bars = [bar(i) for i in range(1000)]
    feed, _ = make_feed([bars], speed=None, wall=wall, yield_every=100)
    await feed.run()
    assert wall.sleeps  # it did yield to the loop
    assert set(wall.sleeps) == {0}
    assert len(wall.sleeps) == 9  # before records 101, 201, ..., 901
    assert feed.records == 1000 and wall.now == 100.0


# ------------------------------------------------------------------------------------------------ stop


@pytest.mark.asyncio
async def test_stop_from_a_callback_ends_the_run_after_that_record() -> None:
    wall = FakeWall()
    seen: list[ReplayRecord] = []

    def stop_at_10(r: ReplayRecord) -> None:
        seen.append(r)
        if len(seen) == 10:
            feed.stop()

    feed, rec = make_feed([[bar(i) for i in range(50)]], speed=None, wall=wall, on_record=stop_at_10)
    prog = await feed.run()
    assert prog.records == 10 and len(rec.published()) == 10
    assert feed.stopped and not feed.finished and not feed.running
    assert prog.fraction == pytest.approx(10 / 50)


@pytest.mark.asyncio
async def test_stop_during_a_paced_wait_returns_without_playing_the_next_record() -> None:
    wall = FakeWall()
    feed, rec = make_feed([[bar(0), bar(1)]], speed=1.0, wall=wall)  # 60 s apart, capped at 2 s, 0.25 s slices

    wall.after_sleep = lambda: feed.stop() if len(wall.sleeps) == 3 else None
    await feed.run()
    assert len(rec.published()) == 1
    assert len(wall.sleeps) == 3  # the wait ended within one slice of stop()


@pytest.mark.asyncio
async def test_stop_before_run_plays_nothing() -> None:
    feed, rec = make_feed([[bar(0)]], speed=None, wall=FakeWall())
    feed.stop()
    await feed.run()
    assert rec.calls == [] and not feed.finished


# ------------------------------------------------------------------------------------------------ options


SPEEDS: list[tuple[float | str | None, float | None]] = [
    (None, None),
    ("max", None),
    ("MAX", None),
    ("0", None),
    (0, None),
    ("inf", None),
    ("60", 60.0),
    ("60x", 60.0),
    ("0.5", 0.5),
    (3600, 3600.0),
]


@pytest.mark.parametrize(("text", "expected"), SPEEDS)
def test_parse_speed(text: float | str | None, expected: float | None) -> None:
    assert parse_speed(text) == expected


@pytest.mark.parametrize("bad", ["-1", "fast-ish", -2.0, "nan"])
def test_parse_speed_rejects_bad_values(bad: float | str) -> None:
    with pytest.raises(ConfigError):
        parse_speed(bad)


def test_bad_options_are_refused() -> None:
    clock = SimClock(0)
    rec = Recorder(clock)
    with pytest.raises(ConfigError):
        ReplayFeed(clock, rec, rec, [])
    with pytest.raises(ConfigError):
        ReplayFeed(clock, rec, rec, [[bar(0)]], yield_every=0)
    with pytest.raises(ConfigError):
        ReplayFeed(clock, rec, rec, [[bar(0)]], max_wait_s=0)


def test_total_is_unknown_for_a_generator_source() -> None:
    clock = SimClock(0)
    rec = Recorder(clock)
    feed = ReplayFeed(clock, rec, rec, [[bar(0)], (bar(i) for i in range(3))])
    assert feed.total is None and feed.progress().fraction is None
    assert ReplayFeed(clock, rec, rec, [[bar(0)], [bar(1)]]).total == 2
