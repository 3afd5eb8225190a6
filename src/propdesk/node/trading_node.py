"""``TradingNode``: the one object that wires clock, bus, broker, order and position managers, portfolio, risk and
strategies. Every command (``run``, ``backtest``, ``risk``) builds one; a backtest is the same node driven by a
simulated clock as fast as the CPU allows (ARCHITECTURE.md, "Parity"). Learned from project-x-py's ``TradingSuite``
(one object that wires the managers) and NautilusTrader's kernel; written for propdesk.

Flows the node owns:

* Broker events (:meth:`TradingNode.on_broker_event`): order events go to the order manager, which applies them and
  publishes them on ``events.order.*``; market data goes on ``data.quotes.<symbol>``, ``data.trades.<symbol>``,
  ``data.bars.<symbol>.<timeframe>``, ``data.depth.<symbol>``; connection events on ``events.broker.*``.
* Strategies: each is bound to a :class:`NodeContext` (its only way to act) and subscribed to the data of its symbol:
  the bars of its timeframe and of every timeframe it registers (``Strategy.subscribe_bars``); bars coarser than the
  data come from the node's :class:`~propdesk.data.aggregation.feeds.BarFeeds` (:attr:`TradingNode.bar_feeds`, one
  aggregator per symbol x timeframe, shared by the strategies; the session declares the data's timeframe with
  ``bar_feeds.set_source`` before adding strategies). Events of its own orders (by tag) reach ``on_order_event``.
  Changes of its attributed position reach ``on_position_changed`` as
  :class:`~propdesk.model.positions.StrategyPositionChange` with their cause (own fill, bracket child, risk flatten,
  manual trade, reconcile). Changes the strategy did not cause (risk, manual, reconcile) are always handled: the node
  first shrinks the strategy's bracket children to its new position (``OrderManager.cap_bracket_exits``), then
  delivers them; its own fills are delivered only once a strategy overriding the hook is added (the position manager
  builds no event nobody listens to).
* Fills reach the position manager through the bus (priority 100, before risk and strategies).

The node never awaits the network: commands go to the broker, which answers with events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from propdesk.brokers.base import Broker
from propdesk.core import topics
from propdesk.core.bus import MessageBus, Subscription
from propdesk.core.clock import Clock
from propdesk.core.errors import ConfigError
from propdesk.data.aggregation.feeds import BarFeeds, check_coarser
from propdesk.execution.order_manager import OrderManager, PreTradeGate
from propdesk.execution.portfolio import Portfolio
from propdesk.execution.positions import PositionManager
from propdesk.model.contracts import ContractSpec
from propdesk.model.data import Bar, DepthUpdate, QuoteTick, Timeframe, TradeTick
from propdesk.model.enums import Side
from propdesk.model.events import BrokerConnected, BrokerDisconnected, OrderEvent, OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.orders import Order, OrderType
from propdesk.model.positions import STRATEGY_POSITION_TOPICS, PositionCause, StrategyPositionChange
from propdesk.model.price import Money, Price
from propdesk.model.symbology import spec_for_symbol
from propdesk.strategies.base import Strategy

log = logging.getLogger("propdesk.node.trading_node")

DEFAULT_TIMEFRAME = Timeframe(1, "m")
"""A strategy's timeframe when neither its configuration nor the data's declared timeframe gives one."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """How a node is set up.

    Attributes:
        account_id: the broker account it trades.
        starting_balance_usd: the account balance at the start (USD), for equity and risk.
        bus_timing: measure per-handler time on the bus (off for backtests: it costs ~300 ns a call).
        id_prefix: prefix of client order ids (``pd`` -> ``pd-<run token>-<n>``).
    """

    account_id: int = 1
    starting_balance_usd: Decimal = Decimal("50000")
    bus_timing: bool = True
    id_prefix: str = "pd"


def bar_topic(symbol: str, timeframe: object) -> str:
    """The bus topic of ``symbol``'s bars of ``timeframe``: ``data.bars.ESZ5.1m`` (``topics.bars``)."""
    return topics.bars(symbol, timeframe)


class TradingNode:
    """Clock + bus + broker + order manager + position manager + portfolio + strategies (+ the risk gate).

    Args:
        clock: a ``SimClock`` (backtest, replay) or ``LiveClock``.
        broker: any :class:`~propdesk.brokers.base.Broker`.
        strategies: strategies to run; each is bound to its own :class:`NodeContext`.
        config: see :class:`NodeConfig`.
        bus: an existing bus (default: a new one with ``config.bus_timing``).
        gate: the pre-trade risk gate (issue 4), or ``None``.
        contracts: symbol -> contract spec (default: the shipped contract table).
        risk: a hook called with the node once its bus, clock, positions, portfolio and order manager exist (before
            any strategy); it returns the pre-trade gate (replacing ``gate``; ``None`` passes every order), e.g.
            :meth:`propdesk.risk.engine.RiskEngine.attach`.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        broker: Broker,
        strategies: Sequence[Strategy] = (),
        config: NodeConfig | None = None,
        bus: MessageBus | None = None,
        gate: PreTradeGate | None = None,
        contracts: Callable[[str], ContractSpec] = spec_for_symbol,
        risk: Callable[[TradingNode], PreTradeGate | None] | None = None,
    ) -> None:
        self.config = config or NodeConfig()
        self.clock = clock
        self.bus = bus if bus is not None else MessageBus(timing=self.config.bus_timing)
        self.broker = broker
        self.account_id = AccountId(self.config.account_id)
        self.positions = PositionManager(self.bus, contracts, subscribe_marks=True)
        self.portfolio = Portfolio(self.positions, self.account_id, Money.of(self.config.starting_balance_usd))
        self.orders = OrderManager(
            self.bus, broker, clock, account_id=self.account_id, gate=gate, id_prefix=self.config.id_prefix
        )
        self.positions.set_order_lookup(self.orders.order)
        if risk is not None:
            self.orders.gate = risk(self)
        self.strategies: list[Strategy] = []
        self.bar_feeds = BarFeeds(self.bus)
        self._by_tag: dict[str, Strategy] = {}
        self._data_subs: dict[str, list[Subscription]] = {}
        self._suspended: dict[str, list[Subscription]] = {}
        self._topics: dict[tuple[str, object], str] = {}
        self.started = False
        broker.set_event_handler(self.on_broker_event)
        # Order and position events are routed only once some strategy overrides ``on_order_event`` or
        # ``on_position_changed`` (the base's are no-ops): a backtest of a strategy that overrides neither saves a
        # bus call per order event, and, without a listener, the position manager skips building position events
        # (a snapshot and a frozen event, ~5 us per fill).
        self._order_sub: Subscription | None = None
        self._outside_sub: list[Subscription] = []
        self._position_sub: list[Subscription] = []
        for strategy in strategies:
            self.add_strategy(strategy)

    # --- strategies ---------------------------------------------------------------------------------------------

    def add_strategy(self, strategy: Strategy, symbol: str | None = None) -> None:
        """Bind ``strategy`` to this node and subscribe it to its symbol's data.

        Its timeframe is its configuration's, else the data's (``bar_feeds.source``), else :data:`DEFAULT_TIMEFRAME`.
        Every timeframe it has registered so far (``subscribe_bars`` in ``__init__``) is checked here too, so a run
        fails before it starts anything; those it registers in ``on_start`` are checked by :meth:`start`.

        Raises:
            ValueError: another strategy already uses the same tag (attribution would be ambiguous).
            ConfigError: its timeframe, or one it registered, cannot be built from the declared data (finer than the
                data, or not a whole multiple of it), or it registered its own timeframe.
        """
        if strategy.tag in self._by_tag:
            raise ValueError(f"two strategies share the tag {strategy.tag!r}; give one a different tag")
        sym = symbol if symbol is not None else strategy.symbol
        tf = strategy.timeframe or self.bar_feeds.source(sym) or DEFAULT_TIMEFRAME
        bars = self._want_bars(strategy, sym, tf)
        self._check_extra_bars(strategy, sym, tf)
        strategy.bind(NodeContext(self, strategy), symbol, tf)
        self.strategies.append(strategy)
        self._by_tag[strategy.tag] = strategy
        self.bus.subscribe(bars, strategy.handle_bar)
        self.bus.subscribe(topics.quotes(sym), strategy.on_quote)
        self.bus.subscribe(topics.trades(sym), strategy.on_trade)
        if self._order_sub is None and type(strategy).on_order_event is not Strategy.on_order_event:
            self._order_sub = self.bus.subscribe(topics.ORDER_EVENTS, self._route_order_event)
        if not self._outside_sub:  # rare, and protective orders must follow them: routed for every strategy
            self._outside_sub = self._subscribe_changes(outside=True)
        if not self._position_sub and type(strategy).on_position_changed is not Strategy.on_position_changed:
            self._position_sub = self._subscribe_changes(outside=False)
        own = (strategy.handle_bar, strategy.on_quote, strategy.on_trade)
        self._data_subs[strategy.tag] = [s for s in self.bus.subscriptions() if any(s.handler == h for h in own)]
        if self.started:
            strategy.on_start()
            self._subscribe_extra_bars(strategy)

    def _want_bars(self, strategy: Strategy, symbol: str, timeframe: Timeframe) -> str:
        """The topic of ``symbol``'s ``timeframe`` bars, aggregated from the data when coarser. Raises ConfigError."""
        try:
            return self.bar_feeds.want(symbol, timeframe)
        except ConfigError as exc:
            raise ConfigError(f"strategy {strategy.name}: {exc}") from None

    def _check_extra_bars(self, strategy: Strategy, symbol: str, timeframe: Timeframe) -> None:
        """Check the extra timeframes ``strategy`` registered so far against ``timeframe`` (its own) and the declared
        data of ``symbol`` (when declared), without subscribing anything. Raises ConfigError."""
        source = self.bar_feeds.source(symbol)
        for tf in strategy.bar_subscriptions:
            if tf == timeframe:
                raise ConfigError(f"strategy {strategy.name}: subscribe_bars({tf}) is already its own timeframe")
            if source is not None:
                check_coarser(tf, source, f"strategy {strategy.name}: {symbol}")

    def _subscribe_extra_bars(self, strategy: Strategy) -> None:
        """Subscribe the timeframes ``strategy`` registered with ``subscribe_bars``. Raises ConfigError."""
        for tf, deliver in strategy.bar_subscriptions.items():
            if tf == strategy.timeframe:
                raise ConfigError(f"strategy {strategy.name}: subscribe_bars({tf}) is already its own timeframe")
            sub = self.bus.subscribe(self._want_bars(strategy, strategy.symbol, tf), deliver)
            self._data_subs.setdefault(strategy.tag, []).append(sub)

    def start(self) -> None:
        """Call every strategy's ``on_start`` (once), then subscribe the extra timeframes it registered.

        Raises:
            ConfigError: a registered timeframe cannot be built from the declared data.
        """
        if self.started:
            return
        self.started = True
        for strategy in self.strategies:
            strategy.on_start()
            self._subscribe_extra_bars(strategy)

    def stop(self) -> None:
        """Call every strategy's ``on_stop`` (once)."""
        if not self.started:
            return
        self.started = False
        for strategy in self.strategies:
            strategy.on_stop()

    def suspend_data(self, strategy: Strategy) -> None:
        """Stop delivering market data to ``strategy`` (bars of every timeframe it subscribed, quotes, trades) until
        :meth:`resume_data`; its order and position events still reach it. No-op when already suspended."""
        tag = strategy.tag
        if tag in self._suspended:
            return
        subs = self._data_subs.pop(tag, [])
        for sub in subs:
            self.bus.unsubscribe(sub)
        self._suspended[tag] = subs

    def remove_strategy(self, tag: str) -> Strategy | None:
        """Unbind the strategy with ``tag``: no more market data, order or position events reach it (its orders and
        its attributed position stay with the order and position managers). Returns it, or ``None`` when no strategy
        has the tag. Its ``on_stop`` is not called here (the desk stops a strategy before removing it)."""
        found = self._by_tag.pop(tag, None)
        if found is None:
            return None
        strategy: Strategy = found
        for sub in (*self._data_subs.pop(tag, []), *self._suspended.pop(tag, [])):
            self.bus.unsubscribe(sub)
        for sub in self.bus.subscriptions():  # its own bar, quote and trade handlers, suspended or not
            if getattr(sub.handler, "__self__", None) is strategy:
                self.bus.unsubscribe(sub)
        self.strategies.remove(strategy)
        return strategy

    def resume_data(self, strategy: Strategy) -> None:
        """Deliver market data to ``strategy`` again after :meth:`suspend_data` (no-op when not suspended)."""
        subs = self._suspended.pop(strategy.tag, None)
        if subs is None:
            return
        self._data_subs[strategy.tag] = [self.bus.subscribe(s.pattern, s.handler, s.priority) for s in subs]

    # --- events -------------------------------------------------------------------------------------------------

    def on_broker_event(self, event: object) -> None:
        """Route one broker event (see the module docstring)."""
        if isinstance(event, OrderEvent):
            self.orders.on_broker_event(event)
        elif isinstance(event, Bar):
            self.publish_bar(event)
        elif isinstance(event, QuoteTick):
            self.bus.publish(topics.quotes(event.symbol), event)
        elif isinstance(event, TradeTick):
            self.bus.publish(topics.trades(event.symbol), event)
        elif isinstance(event, DepthUpdate):
            self.bus.publish(topics.depth(event.symbol), event)
        elif isinstance(event, BrokerConnected):
            self.bus.publish(topics.BROKER_CONNECTED, event)
        elif isinstance(event, BrokerDisconnected):
            self.bus.publish(topics.BROKER_DISCONNECTED, event)
        else:
            self.bus.publish(topics.broker_event(type(event).__name__), event)

    def publish_bar(self, bar: Bar) -> None:
        """Publish a closed bar on ``data.bars.<symbol>.<timeframe>``."""
        key = (bar.symbol, bar.timeframe)
        topic = self._topics.get(key)
        if topic is None:
            topic = self._topics[key] = bar_topic(bar.symbol, bar.timeframe)
        self.bus.publish(topic, bar)

    def _route_order_event(self, event: object) -> None:
        if not isinstance(event, OrderEvent):
            return
        tag = event.tag if isinstance(event, OrderFilled) else ""
        if not tag:
            order = self.orders.order(event.client_order_id)
            tag = order.tag if order is not None else ""
        strategy = self._by_tag.get(tag)
        if strategy is not None:
            strategy.on_order_event(event)

    def _subscribe_changes(self, *, outside: bool) -> list[Subscription]:
        return [
            self.bus.subscribe(STRATEGY_POSITION_TOPICS[cause], self._route_position_change)
            for cause in PositionCause
            if cause.outside is outside
        ]

    def _route_position_change(self, change: object) -> None:
        """Deliver a :class:`StrategyPositionChange` to the strategy of its tag; for a change the strategy did not
        cause, first shrink that strategy's bracket children to its new position."""
        if not isinstance(change, StrategyPositionChange) or change.account_id != self.account_id:
            return
        strategy = self._by_tag.get(change.tag)
        if strategy is None:
            return
        if change.cause.outside:
            self.orders.cap_bracket_exits(change.symbol, change.tag, abs(change.signed_qty))
        strategy.on_position_changed(change)

    def strategy_qty(self, symbol: str, tag: str) -> int:
        """The signed position (contracts) attributed to ``tag`` in ``symbol``."""
        pos = self.positions.strategy_position(self.account_id, tag, symbol)
        return 0 if pos is None else pos.signed_qty


class NodeContext:
    """The :class:`~propdesk.strategies.base.StrategyContext` a node gives one strategy (see that protocol)."""

    def __init__(self, node: TradingNode, strategy: Strategy) -> None:
        self._node = node
        self._om = node.orders
        self._strategy = strategy

    def now_ns(self) -> int:
        return self._node.clock.timestamp_ns()

    def tick_size(self, symbol: str) -> Price:
        return self._node.positions.spec_of(symbol).tick_size

    def position_qty(self, symbol: str, tag: str) -> int:
        return self._node.strategy_qty(symbol, tag)

    def market(self, symbol: str, side: Side, qty: int, tag: str) -> Order:
        return self._om.submit(self._om.market(symbol, side, qty, tag))

    def limit(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        return self._om.submit(self._om.limit(symbol, side, qty, tag, price))

    def stop(self, symbol: str, side: Side, qty: int, price: Price, tag: str) -> Order:
        return self._om.submit(self._om.stop(symbol, side, qty, tag, price))

    def bracket(
        self,
        symbol: str,
        side: Side,
        qty: int,
        tag: str,
        *,
        stop_loss_ticks: int | None,
        take_profit_ticks: int | None,
        entry_price: Price | None = None,
    ) -> Order:
        entry = (
            self._om.market(symbol, side, qty, tag)
            if entry_price is None
            else self._om.limit(symbol, side, qty, tag, entry_price)
        )
        self._om.submit_bracket(entry, stop_loss_ticks=stop_loss_ticks, take_profit_ticks=take_profit_ticks, tag=tag)
        return entry

    def modify(self, order: Order, *, qty: int | None = None, price: Price | None = None) -> None:
        stop_types = (OrderType.STOP, OrderType.TRAILING_STOP)
        if price is not None and order.order_type in stop_types:
            self._om.modify(order.client_order_id, qty=qty, stop_price=price)
        else:
            self._om.modify(order.client_order_id, qty=qty, limit_price=price)

    def cancel(self, order: Order) -> None:
        self._om.cancel(ClientOrderId(order.client_order_id))

    def close_position(self, symbol: str, tag: str) -> None:
        """Cancel ``tag``'s working orders in ``symbol`` and close its attributed position with a market order."""
        for order in self._om.orders_for_tag(tag, open_only=True):
            if order.symbol == symbol:
                self._om.cancel(order.client_order_id)
        qty = self._node.strategy_qty(symbol, tag)
        if qty:
            side = Side.SELL if qty > 0 else Side.BUY
            self._om.submit(self._om.market(symbol, side, abs(qty), tag, reduce_only=False))

    def realized_pnl(self, tag: str) -> Money:
        total = Money(0)
        for pos in self._node.positions.strategy_positions(self._node.account_id, tag):
            total = total + pos.realized_net
        return total
