"""The pure checks that give a signal its outcome before the Desk sees it (the Desk's gate decides ``executed`` or
``denied``: :meth:`~propdesk.api.webhooks.signal.Judgement.of_verdict`).

:func:`judge` runs them in this order and returns the first that fails, or ``None`` (pass the signal on):

1. ``rate_limited``: the hook's token bucket (:class:`~propdesk.api.ratelimit.RateLimiter`, keyed by hook id);
2. ``duplicate``: the dedupe key (:func:`dedupe_key`) was seen on this hook in the last 24 h (:class:`DedupeWindow`);
3. ``stale``: ``sent_at`` is more than the hook's ``max_age_s`` before now, or that far after it (a clock that far
   off is not trusted either); a signal without ``sent_at`` is not checked;
4. ``outside_session``: the market of the signal's contract is closed (:func:`market_open`: the CME calendar's
   product hours; a time the calendar does not cover counts as closed) and the signal would open or add; exits,
   cancels and reductions still pass (:meth:`~propdesk.api.webhooks.signal.Signal.reduces_only`);
5. ``price_drift``: the alert's price is more than ``max_drift_ticks`` ticks from the market price.

``symbol_not_allowed`` and ``invalid`` are decided earlier, while the alert is parsed and resolved
(:mod:`~propdesk.api.webhooks.payloads`, :mod:`~propdesk.api.webhooks.symbols`).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from propdesk.api.ratelimit import RateLimiter
from propdesk.api.webhooks.signal import DEDUPE_WINDOW_NS, HookSettings, Judgement, Outcome, Signal, SignalAction
from propdesk.model.calendar import CalendarError, TradingCalendar
from propdesk.model.contracts import default_registry
from propdesk.model.price import Price

__all__ = [
    "MAX_DEDUPE_KEYS",
    "SECRET_FIELDS",
    "DedupeWindow",
    "check_duplicate",
    "check_price_drift",
    "check_rate",
    "check_session",
    "check_stale",
    "dedupe_key",
    "judge",
    "market_open",
]

SECRET_FIELDS: Final = frozenset({"passphrase", "token"})
"""Body keys left out of a body's digest (and never stored)."""
MAX_DEDUPE_KEYS: Final = 100_000
"""Keys a :class:`DedupeWindow` holds at most (the oldest are forgotten first)."""


def dedupe_key(hook_id: str, body: Mapping[str, Any], signal_id: str | None = None) -> str:
    """The dedupe key of an alert on ``hook_id``: SHA-256 hex of the hook id and the sender's ``signal_id`` when it
    gave one, else of the body's canonical JSON (sorted keys, without :data:`SECRET_FIELDS`). Two alerts with the same
    content (TradingView's ``{{timenow}}`` differs between alerts) are one signal."""
    if signal_id is not None:
        material = f"id:{signal_id}"
    else:
        clean = {k: v for k, v in body.items() if k not in SECRET_FIELDS}
        material = "body:" + json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{hook_id}\0{material}".encode()).hexdigest()


class DedupeWindow:
    """The dedupe keys seen in the last ``window_ns`` (default 24 h), in memory, bounded to :data:`MAX_DEDUPE_KEYS`.

    A server restores it from the stored signal outcomes of the last 24 h at start.
    """

    def __init__(self, window_ns: int = DEDUPE_WINDOW_NS, max_keys: int = MAX_DEDUPE_KEYS) -> None:
        self._window_ns = window_ns
        self._max_keys = max_keys
        self._seen: OrderedDict[str, int] = OrderedDict()

    def seen(self, key: str, now_ns: int) -> bool:
        """True when ``key`` was recorded less than the window before ``now_ns``; otherwise record it and return
        False."""
        while self._seen:
            first, ts = next(iter(self._seen.items()))
            if now_ns - ts < self._window_ns:
                break
            del self._seen[first]
        if key in self._seen:
            return True
        self._seen[key] = now_ns
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._seen)


def check_rate(limiter: RateLimiter, hook: HookSettings) -> Judgement | None:
    """``rate_limited`` when the hook's bucket is empty."""
    wait_s = limiter.check(f"hook:{hook.hook_id}", rate_per_minute=hook.rate_per_minute, burst=hook.burst)
    if wait_s > 0:
        return Judgement(
            Outcome.RATE_LIMITED, f"over {hook.rate_per_minute} signals per minute; next in {wait_s:.1f} s"
        )
    return None


def check_duplicate(window: DedupeWindow, signal: Signal, now_ns: int) -> Judgement | None:
    """``duplicate`` when the signal's dedupe key was seen in the window (the first sight records it)."""
    if window.seen(signal.dedupe_key, now_ns):
        return Judgement(Outcome.DUPLICATE, "the same alert was received in the last 24 h")
    return None


def check_stale(signal: Signal, now_ns: int, max_age_s: float) -> Judgement | None:
    """``stale`` when ``sent_at`` is more than ``max_age_s`` seconds before or after ``now_ns`` (UTC ns)."""
    if signal.sent_at_ns is None:
        return None
    age_s = (now_ns - signal.sent_at_ns) / 1e9
    if age_s > max_age_s:
        return Judgement(Outcome.STALE, f"sent {age_s:.1f} s ago (window {max_age_s:g} s)")
    if -age_s > max_age_s:
        return Judgement(Outcome.STALE, f"sent_at is {-age_s:.1f} s in the future (window {max_age_s:g} s)")
    return None


def market_open(calendar: TradingCalendar, root: str, ts_ns: int) -> bool:
    """True when ``root`` trades at ``ts_ns`` by the calendar's product hours; False outside them and for a time
    the calendar does not cover (fail closed)."""
    try:
        return calendar.is_open(ts_ns, root)
    except CalendarError:
        return False


def check_session(signal: Signal, *, is_open: bool, position: int) -> Judgement | None:
    """``outside_session`` when the market is closed and the signal would open or add from ``position`` (signed
    contracts); exits, cancels and reductions pass."""
    if is_open or signal.reduces_only(position):
        return None
    return Judgement(Outcome.OUTSIDE_SESSION, f"{signal.symbol} is not trading now; only exits are accepted")


def check_price_drift(signal: Signal, market_price: Price | None, max_ticks: int | None) -> Judgement | None:
    """``price_drift`` when the alert's price is more than ``max_ticks`` ticks of the signal's contract from
    ``market_price``; passes when either price or the limit is unknown, and for exits and cancels."""
    if signal.price is None or market_price is None or max_ticks is None:
        return None
    if signal.action in (SignalAction.EXIT, SignalAction.CANCEL):
        return None
    tick = default_registry().spec(signal.root).tick_size.as_decimal()
    drift = abs(signal.price - market_price.as_decimal()) / tick
    if drift > Decimal(max_ticks):
        return Judgement(
            Outcome.PRICE_DRIFT,
            f"alert price {signal.price} is {drift.normalize():f} ticks from the market {market_price} "
            f"(limit {max_ticks})",
        )
    return None


def judge(
    signal: Signal,
    hook: HookSettings,
    *,
    now_ns: int,
    position: int,
    is_open: bool,
    market_price: Price | None,
    dedupe: DedupeWindow,
    limiter: RateLimiter,
) -> Judgement | None:
    """The first failing check of the module docstring's list, or ``None`` when the signal goes on to the Desk.

    Args:
        signal: the resolved signal. hook: its hook's settings. now_ns: UTC ns.
        position: the account's signed position in ``signal.symbol`` (contracts).
        is_open: the contract's market trades now (:func:`market_open`). market_price: the last price, or ``None``.
        dedupe: the hook's dedupe window. limiter: the buckets (keyed ``hook:<id>``).
    """
    return (
        check_rate(limiter, hook)
        or check_duplicate(dedupe, signal, now_ns)
        or check_stale(signal, now_ns, hook.max_age_s)
        or check_session(signal, is_open=is_open, position=position)
        or check_price_drift(signal, market_price, hook.max_drift_ticks)
    )
