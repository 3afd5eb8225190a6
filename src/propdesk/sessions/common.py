"""Scaffolding shared by the sessions the CLI runs: the paced replay (:mod:`propdesk.sessions.replay`), live trading
(:mod:`propdesk.sessions.live`) and the risk daemon (:mod:`propdesk.sessions.risk_daemon.session`).

* :func:`install_sigint` / :func:`remove_sigint`: Ctrl-C handling of a session's ``run``;
* :func:`load_window_bars`: a replay's bar file loaded by its preset and cut to the ``--start``/``--end`` window;
* :class:`EventFanout`: the recent order and position events, and the listeners called for each of them;
* :class:`ReplayControl`: stop / interrupt / elapsed time of a session driven by a paced replay feed;
* :func:`account_json`: the account figures of a summary's JSON object (money as USD strings).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from propdesk.core.errors import DataError
from propdesk.model.events import OrderEvent
from propdesk.model.positions import PositionEvent

if TYPE_CHECKING:
    from propdesk.brokers.sim.replay import ReplayFeed
    from propdesk.model.data import BarSeries
    from propdesk.model.price import Money, Price

__all__ = [
    "AccountFigures",
    "EventFanout",
    "EventListener",
    "ReplayControl",
    "account_json",
    "install_sigint",
    "load_window_bars",
    "remove_sigint",
]

EventListener = Callable[[object], None]
"""A callback given each order and position event (and, in a live session, each risk state change)."""


def install_sigint(loop: asyncio.AbstractEventLoop, handler: Callable[[], None], *, enabled: bool = True) -> bool:
    """Make ``handler`` the loop's SIGINT (Ctrl-C) handler when ``enabled``; return whether it was installed.

    The install fails quietly (returns ``False``) where the platform does not allow it: on Windows, or when the loop
    does not run in the main thread.
    """
    if not enabled:
        return False
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        return False
    return True


def remove_sigint(loop: asyncio.AbstractEventLoop, installed: bool) -> None:
    """Remove the SIGINT handler :func:`install_sigint` installed (nothing when ``installed`` is false)."""
    if installed:
        loop.remove_signal_handler(signal.SIGINT)


def load_window_bars(path: Path, *, symbol: str | None, start_ns: int | None, end_ns: int | None) -> BarSeries:
    """The bars a replay plays: ``path`` loaded by its preset (``symbol`` overriding the file's), with its contract
    resolved, cut to ``[start_ns, end_ns)`` (UTC ns, by bar open time; ``None`` = open-ended).

    Raises:
        DataError: the file cannot be loaded, or no bar falls in the window.
    """
    from propdesk.backtest.cli_support import with_contract  # noqa: PLC0415 - heavy imports only for replays
    from propdesk.data.loaders.presets import load_bars  # noqa: PLC0415

    bars = with_contract(load_bars(path, symbol=symbol))
    if start_ns is not None or end_ns is not None:
        bars = bars.between(start_ns, end_ns)
    if not len(bars):
        raise DataError("no bars to replay (check --start/--end against the data's span)", path=path)
    return bars


class EventFanout:
    """Mixin of a session that keeps its recent order and position events and hands each one to its listeners.

    The session sets ``recent`` (a bounded deque, oldest first) and ``_listeners`` in its ``__init__`` and
    subscribes :meth:`_on_event` to ``events.order.**`` and ``events.position.**`` on its bus.
    """

    recent: deque[object]
    _listeners: list[EventListener]

    def add_event_listener(self, listener: EventListener) -> None:
        """Call ``listener(event)`` for each order and position event from now on (e.g. plain log lines)."""
        self._listeners.append(listener)

    def _on_event(self, event: object) -> None:
        if isinstance(event, OrderEvent | PositionEvent):
            self.recent.append(event)
            for listener in self._listeners:
                listener(event)


class ReplayControl:
    """Mixin of a session driven by a paced :class:`~propdesk.brokers.sim.replay.ReplayFeed`: stop, Ctrl-C and the
    wall time.

    The session sets ``feed``, ``interrupted`` (``False``), ``wall_s`` (``0.0``) and ``_t0`` (``None``) in its
    ``__init__``; its ``run`` sets ``_t0`` (``time.perf_counter()``) when the replay starts and ``wall_s`` when it ends.
    """

    feed: ReplayFeed
    interrupted: bool
    wall_s: float
    _t0: float | None

    def stop(self) -> None:
        """Stop the replay after the bar being played (a run's summary then reports ``completed=False``)."""
        self.feed.stop()

    def interrupt(self) -> None:
        """What Ctrl-C does: stop like :meth:`stop` and mark the session interrupted."""
        self.interrupted = True
        self.feed.stop()

    @property
    def elapsed_s(self) -> float:
        """Wall seconds since the replay started (the final figure once it ended)."""
        if self._t0 is None or not self.feed.running:
            return self.wall_s
        return time.perf_counter() - self._t0


class AccountFigures(Protocol):
    """The account figures of a session summary (USD, exact; ``open_qty`` in contracts, signed)."""

    @property
    def realized_pnl(self) -> Money: ...
    @property
    def fees(self) -> Money: ...
    @property
    def realized_net(self) -> Money: ...
    @property
    def unrealized_pnl(self) -> Money: ...
    @property
    def open_qty(self) -> int: ...
    @property
    def avg_price(self) -> Price | None: ...
    @property
    def starting_balance(self) -> Money: ...
    @property
    def balance(self) -> Money: ...
    @property
    def equity(self) -> Money: ...


def account_json(s: AccountFigures) -> dict[str, object]:
    """The account part of a summary's JSON object, in this order: ``realized_pnl_usd``, ``fees_usd``,
    ``realized_net_usd``, ``unrealized_pnl_usd``, ``open_qty``, ``avg_price``, ``starting_balance_usd``,
    ``balance_usd``, ``equity_usd`` (money as USD strings with two decimals, the price as a string or ``None``)."""
    return {
        "realized_pnl_usd": str(s.realized_pnl.as_decimal()),
        "fees_usd": str(s.fees.as_decimal()),
        "realized_net_usd": str(s.realized_net.as_decimal()),
        "unrealized_pnl_usd": str(s.unrealized_pnl.as_decimal()),
        "open_qty": s.open_qty,
        "avg_price": None if s.avg_price is None else str(s.avg_price),
        "starting_balance_usd": str(s.starting_balance.as_decimal()),
        "balance_usd": str(s.balance.as_decimal()),
        "equity_usd": str(s.equity.as_decimal()),
    }
