"""A trading node with the risk engine on a simulated clock and exchange, for the risk scenario and property tests.

``RiskRig`` wires a real :class:`~propdesk.node.TradingNode`, a :class:`RecordingSimBroker` (a ``SimBroker`` that
logs every command it receives) and a :class:`~propdesk.risk.engine.RiskEngine` built from a TOML risk
configuration, on a :class:`~propdesk.core.clock.SimClock` at a real CME time. The market is driven by hand:
trade prints and quotes (``bid = price``, ``ask = price + 1 tick``) go first to the simulated exchange (which fills
working orders) and then to the node, exactly as a replay feeds them. Strategy orders go through the node's order
manager (and so through the pre-trade gate); manual orders (a trade placed by hand in the broker's UI) go straight to
the simulated exchange with a foreign ``ext-<n>`` client order id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from propdesk.brokers.sim import SimBroker, SimConfig
from propdesk.core.bus import MessageBus
from propdesk.core.clock import SimClock
from propdesk.model.data import QuoteTick, TradeTick
from propdesk.model.enums import AggressorSide, Side
from propdesk.model.events import BrokerConnected, BrokerDisconnected, OrderDenied
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import BracketSpec, Order, OrderType, TimeInForce
from propdesk.model.price import Money, Price
from propdesk.node import NodeConfig, TradingNode
from propdesk.risk.decisions import TradingState
from propdesk.risk.engine import RiskEngine
from propdesk.risk.lockouts import LockoutStore, MemoryLockoutStore
from propdesk.risk.presets import load_risk_config
from propdesk.risk.rules.hedging import HedgeBook

CT = ZoneInfo("America/Chicago")
ACCOUNT = AccountId(1)
SEC = 1_000_000_000
MIN = 60 * SEC
E = TypeVar("E")

TICK = 0.25
"""The tick size of ES, MES, NQ and MNQ (points)."""


def ct_ns(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> int:
    """A Chicago wall time as UTC ns."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=CT).timestamp()) * SEC


def utc_ns(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
    """A UTC wall time as UTC ns (expected values are written in UTC by hand, so DST is checked, not recomputed)."""
    return int(datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()) * SEC


@dataclass
class Command:
    """One command the recording broker received: ``name`` and its arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


class RecordingSimBroker(SimBroker):
    """A :class:`SimBroker` that records every command (``submit_order``, ``cancel_order``, ``cancel_all_orders``,
    ``close_position``, ``flatten``) before carrying it out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[Command] = []

    def submit_order(self, order: Order, bracket: BracketSpec | None = None) -> None:
        self.commands.append(Command("submit", {"cid": str(order.client_order_id), "order": order}))
        super().submit_order(order, bracket)

    def cancel_order(self, order: Order) -> None:
        self.commands.append(Command("cancel", {"cid": str(order.client_order_id)}))
        super().cancel_order(order)

    def cancel_all_orders(self, symbol: str | None = None) -> None:
        self.commands.append(Command("cancel_all", {"symbol": symbol}))
        super().cancel_all_orders(symbol)

    def close_position(self, symbol: str, qty: int | None = None) -> None:
        self.commands.append(Command("close_position", {"symbol": symbol, "qty": qty}))
        super().close_position(symbol, qty)

    def flatten(self) -> None:
        self.commands.append(Command("flatten"))
        super().flatten()

    def names(self) -> list[str]:
        """The command names in order."""
        return [c.name for c in self.commands]

    def submitted_ids(self) -> set[str]:
        """Client order ids of every order submitted."""
        return {c.args["cid"] for c in self.commands if c.name == "submit"}


class RiskRig:
    """A node with the risk engine on a simulated clock and exchange (see the module docstring).

    Args:
        tmp_path: where the risk configuration file is written.
        toml: the risk configuration (``preset = ...`` and ``[rules.*]`` tables).
        start_ns: the clock's start, UTC ns.
        sim_config: the simulated exchange's options (default: closes fill at once at the last price; no calendar
            check, so the test decides what is open).
        check_interval_s: the guard's periodic CLOCK check.
        hedge_book: the trader's other accounts (R14).
        balance: the account's realized balance when it differs from the start balance.
        store: the lockout store (default: in memory).
    """

    def __init__(
        self,
        tmp_path: Path,
        toml: str,
        start_ns: int,
        *,
        sim_config: SimConfig | None = None,
        check_interval_s: float = 5.0,
        hedge_book: HedgeBook | None = None,
        balance: Money | None = None,
        store: LockoutStore | None = None,
        roots: Sequence[str] = ("ES", "MES", "NQ", "MNQ"),
    ) -> None:
        if "preset" not in toml and "[account]" not in toml:  # personal rules only: a $50,000 account
            toml = "[account]\nstart_balance = 50000\n\n" + toml
        path = tmp_path / "risk.toml"
        path.write_text(toml, encoding="utf-8")
        self.config = load_risk_config(None, path)
        self.clock = SimClock(start_ns)
        self.bus = MessageBus(timing=False)
        self.sim = RecordingSimBroker(
            self.clock,
            account_id=ACCOUNT,
            config=sim_config or SimConfig(flatten_fill="last-price", calendar_check="off"),
            starting_balance=Money.of(50_000),
        )
        self.store = store if store is not None else MemoryLockoutStore()
        self.engine = RiskEngine(
            self.config,
            new_account=True,
            balance=balance,
            quote_stale_s=None,
            check_interval_s=check_interval_s,
            roots=tuple(roots),
            hedge_book=hedge_book,
            store=self.store,
        )
        self.node = TradingNode(
            clock=self.clock,
            broker=self.sim,
            config=NodeConfig(bus_timing=False),
            bus=self.bus,
            risk=self.engine.attach,
        )
        self.events: list[object] = []
        self.denied: list[OrderDenied] = []
        for topic in ("events.risk.**", "events.session.**"):
            self.bus.subscribe(topic, self.events.append, -300)
        self.bus.subscribe("events.order.denied", self.denied.append, -300)
        self.engine.start()
        self.node.start()
        self._ext = 0
        self.last: dict[str, float] = {}

    # ------------------------------------------------------------------------------------------------ market

    def trade(self, symbol: str, px: float, size: int = 100) -> None:
        """A trade print at ``px`` (fills working orders at the exchange, then reaches the node)."""
        t = TradeTick(symbol, px, size, AggressorSide.BUYER, self.clock.timestamp_ns())
        self.sim.process_trade(t)
        self.node.on_broker_event(t)
        self.last[symbol] = px

    def quote(self, symbol: str, bid: float, ask: float | None = None) -> None:
        """A top-of-book quote (``ask`` defaults to one tick above ``bid``)."""
        q = QuoteTick(symbol, bid, bid + TICK if ask is None else ask, 50, 50, self.clock.timestamp_ns())
        self.sim.process_quote(q)
        self.node.on_broker_event(q)

    def tick(self, symbol: str, px: float, *, step_s: float = 1.0) -> None:
        """Advance the clock by ``step_s`` and print a trade at ``px`` with a quote ``bid = px``."""
        self.advance(step_s)
        self.trade(symbol, px)
        self.quote(symbol, px)

    def advance(self, seconds: float) -> None:
        """Advance the clock (timers fire on the way)."""
        self.clock.advance_to(self.clock.timestamp_ns() + int(seconds * SEC))

    def until(self, ts_ns: int) -> None:
        """Advance the clock to ``ts_ns`` (timers fire on the way)."""
        self.clock.advance_to(ts_ns)

    # ------------------------------------------------------------------------------------------------ orders

    def buy(self, symbol: str, qty: int) -> Order:
        """A strategy market buy through the order manager (and the gate)."""
        om = self.node.orders
        return om.submit(om.market(symbol, Side.BUY, qty, "strat"))

    def sell(self, symbol: str, qty: int) -> Order:
        """A strategy market sell through the order manager (and the gate)."""
        om = self.node.orders
        return om.submit(om.market(symbol, Side.SELL, qty, "strat"))

    def limit(self, symbol: str, side: Side, qty: int, px: str) -> Order:
        """A strategy limit order through the order manager."""
        om = self.node.orders
        return om.submit(om.limit(symbol, side, qty, "strat", Price.of(px)))

    def stop(self, symbol: str, side: Side, qty: int, px: str) -> Order:
        """A strategy stop order through the order manager."""
        om = self.node.orders
        return om.submit(om.stop(symbol, side, qty, "strat", Price.of(px)))

    def manual(self, symbol: str, side: Side, qty: int) -> str:
        """A manual (foreign) market order placed straight at the simulated exchange; returns its client order id."""
        self._ext += 1
        cid = ClientOrderId(f"ext-{self._ext}")
        self.sim.submit_order(
            Order(
                client_order_id=cid,
                account_id=ACCOUNT,
                symbol=symbol,
                side=side,
                qty=qty,
                order_type=OrderType.MARKET,
                tif=TimeInForce.GTC,
                tag="manual",
            )
        )
        return str(cid)

    # ------------------------------------------------------------------------------------------------ broker link

    def disconnect(self) -> None:
        """The broker connection drops (``BrokerDisconnected`` into the node)."""
        self.node.on_broker_event(BrokerDisconnected(ACCOUNT, self.clock.timestamp_ns(), "network down"))

    def reconnect(self) -> None:
        """The broker connection is back (``BrokerConnected``); the reconciler has not run yet."""
        self.node.on_broker_event(BrokerConnected(ACCOUNT, self.clock.timestamp_ns()))

    # ------------------------------------------------------------------------------------------------ queries

    def qty(self, symbol: str) -> int:
        """The account's signed position in ``symbol`` (the node's position manager)."""
        return self.node.positions.net_qty(ACCOUNT, symbol)

    def broker_qty(self, symbol: str) -> int:
        """The simulated exchange's own signed position in ``symbol``."""
        return self.sim.account.position(symbol)

    def is_flat(self) -> bool:
        """No position and no open order, both at the node and at the exchange."""
        node_flat = not any(p.signed_qty for p in self.node.positions.iter_open(ACCOUNT))
        exch_flat = not any(p.signed_qty for p in self.sim.account.positions.values())
        return node_flat and exch_flat and not self.node.orders.open_orders()

    def state(self) -> TradingState:
        """The trading state now."""
        return self.engine.trading_state

    def of(self, kind: type[E]) -> list[E]:
        """Risk and session events of type ``kind`` published so far."""
        return [e for e in self.events if isinstance(e, kind)]

    def mark(self) -> int:
        """The number of broker commands so far (to look at the commands after a point)."""
        return len(self.sim.commands)

    def commands_since(self, mark: int) -> list[str]:
        """Command names received since ``mark``."""
        return [c.name for c in self.sim.commands[mark:]]
