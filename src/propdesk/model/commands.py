"""Commands from outside the core (dashboard, API, webhooks, bridge, CLI) and the verdict each one gets at once.

Naming follows ARCHITECTURE.md: commands are imperative nouns. Every command is a frozen, keyword-only dataclass
with an ``idempotency_key`` (the caller's: a retried command with the same key and the same content gets the first
result again, never a second order) and ``ts_ns`` (when the caller issued it, UTC ns; ``0``: not given). A command
returns a :class:`CommandResult` at once: accepted, or denied with a :class:`Verdict` naming the rule, the reason
and the headroom left; outcomes (orders accepted, fills, positions) arrive later as events.

Prices are :class:`~propdesk.model.price.Price` in points on the contract's tick, quantities are contracts, money is
:class:`~propdesk.model.price.Money` (USD).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Final

from propdesk.model.enums import Side
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import OrderType
from propdesk.model.price import Money, Price

__all__ = [
    "ACCEPTED",
    "ADMIN_REQUIRED",
    "IDEMPOTENCY_CONFLICT",
    "INSTANCE_NAME_RE",
    "INVALID",
    "NOT_LIVE",
    "VERSION_CONFLICT",
    "AddStrategy",
    "CancelAllOrders",
    "CancelOrder",
    "ClosePosition",
    "Command",
    "CommandResult",
    "FlattenAccount",
    "ModifyOrder",
    "PauseStrategy",
    "RemoveStrategy",
    "RiskAtStop",
    "SetTradingState",
    "StartStrategy",
    "StopMode",
    "StopStrategy",
    "StrategyState",
    "SubmitOrder",
    "UpdateStrategyParams",
    "Verdict",
]

IDEMPOTENCY_CONFLICT: Final[str] = "idempotency_conflict"
"""The ``rule_id`` of a denial: the key was already used by a different command."""
INVALID: Final[str] = "invalid"
"""The ``rule_id`` of a denial: the command itself is malformed (unknown order, bad price, bad parameter)."""
ADMIN_REQUIRED: Final[str] = "admin_required"
"""The ``rule_id`` of a denial: a less restrictive trading state needs ``admin=True``."""
VERSION_CONFLICT: Final[str] = "version_conflict"
"""The ``rule_id`` of a denial: the strategy's parameters changed since the version the caller edited."""
NOT_LIVE: Final[str] = "not_live"
"""The ``rule_id`` of a denial: a parameter that is not live-changeable, on a strategy that is not stopped."""


class StrategyState(StrEnum):
    """A strategy's life-cycle state on the desk.

    RUNNING: it receives data and may open and close positions. PAUSED: it still receives data and manages its
    exits (orders that reduce its own position, bracket children); its entries are denied. STOPPED: it receives no
    data (``on_stop`` was called) and every new order of it is denied; its working orders and position are as the
    :class:`StopMode` left them.
    """

    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class StopMode(StrEnum):
    """What :class:`StopStrategy` does with what the strategy holds: ``leave`` its positions and working orders,
    ``cancel`` its working orders (positions stay), or ``flatten`` (cancel its working orders and close its
    position at market)."""

    LEAVE = "leave"
    CANCEL = "cancel"
    FLATTEN = "flatten"


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every command.

    Attributes:
        idempotency_key: the caller's key (non-empty); the same key with the same content returns the first result.
        ts_ns: when the caller issued it (UTC ns; ``0`` not given). Not part of the content compared for a replay.
        account_id: the account it is for (``None``: the desk's own).
    """

    idempotency_key: str
    ts_ns: int = 0
    account_id: int | None = None

    def content(self) -> tuple[object, ...]:
        """The command's type and fields without ``ts_ns``: what a replayed key must repeat exactly."""
        return (type(self).__name__, *((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "ts_ns"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrder(Command):
    """Send a new order through the pre-trade gate to the broker.

    Attributes:
        symbol: the contract (``ESZ5``). side: buy or sell. qty: contracts (> 0).
        order_type: MARKET, LIMIT or STOP (others as the broker supports them).
        limit_price / stop_price: points on the tick, as the order type needs.
        tag: the attribution tag of the order (default ``desk``).
        stop_loss_ticks / take_profit_ticks: a bracket: children this many ticks from the entry's fill.
        dry_run: check only: the verdict and the USD at risk to the stop, nothing is sent.
    """

    symbol: str
    side: Side
    qty: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Price | None = None
    stop_price: Price | None = None
    tag: str = "desk"
    stop_loss_ticks: int | None = None
    take_profit_ticks: int | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ModifyOrder(Command):
    """Change a working order's total quantity (contracts) or prices (points); ``None`` fields stay as they are."""

    client_order_id: ClientOrderId
    qty: int | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_ticks: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Command):
    """Cancel one working order."""

    client_order_id: ClientOrderId


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAllOrders(Command):
    """Cancel every working order of the account, or of one symbol when ``symbol`` is set."""

    symbol: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosePosition(Command):
    """Close the position in ``symbol`` at market; ``qty`` closes part of it (contracts), ``None`` all of it."""

    symbol: str
    qty: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenAccount(Command):
    """Cancel every working order and close every position of the account at market."""

    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTradingState(Command):
    """Put the account in trading state ``state`` (``ACTIVE``, ``REDUCING`` or ``HALTED``, risk-rules.md 7.1).

    Towards a more restrictive state always; towards a less restrictive one only with ``admin=True`` (and only the
    desk's own restriction is lifted: a rule's lockout or a fail-closed condition stays)."""

    state: str
    reason: str = ""
    admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StartStrategy(Command):
    """Run the strategy with tag ``strategy`` (a paused one resumes its entries; a stopped one starts again)."""

    strategy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseStrategy(Command):
    """Stop the strategy's entries; it keeps receiving data and managing its exits."""

    strategy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopStrategy(Command):
    """Stop the strategy: no more data, no new orders; ``mode`` says what happens to what it holds."""

    strategy: str
    mode: StopMode = StopMode.LEAVE


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateStrategyParams(Command):
    """Change parameters of the strategy with tag ``strategy``.

    Attributes:
        params: ``(name, value)`` pairs (values as the strategy's configuration model validates them).
        expected_version: the parameter version the caller edited; another version is a conflict (refused).
        changed_by / source / reason: who asks (a user name), from where (``cli``, ``api``, ``desk`` ...) and why:
            kept with the new version by ``propdesk serve`` (``strategy_param_versions``).
    """

    strategy: str
    params: tuple[tuple[str, object], ...]
    expected_version: int
    changed_by: str = ""
    source: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The gate's answer to a command.

    Attributes:
        accepted: True when the command was taken (an order sent, a cancel requested, a state changed).
        rule_id: for a denial, the rule (``R5``), the trading state (``HALTED``, ``REDUCING``) or the desk's reason
            (:data:`INVALID`, :data:`IDEMPOTENCY_CONFLICT`, ...); ``""`` when accepted.
        reason: for a denial, a sentence with the numbers.
        headroom_usd: USD left before the denying rule's limit (R1: equity above the MLL floor; R2/R3: daily loss
            left), ``None`` where the rule has no USD limit.
        headroom_qty: mini-equivalent contracts left before the denying rule's position limit (R5), else ``None``.
    """

    accepted: bool
    rule_id: str = ""
    reason: str = ""
    headroom_usd: Money | None = None
    headroom_qty: Decimal | None = None


ACCEPTED: Final[Verdict] = Verdict(accepted=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskAtStop:
    """What a dry-run order risks if its stop is hit.

    Attributes:
        at_risk_usd: qty x ticks to the stop x tick value (USD).
        daily_loss_headroom_usd / mll_headroom_usd: USD left today before the daily loss limit, and equity above the
            MLL floor (``None`` when unknown).
        daily_loss_share / mll_share: ``at_risk_usd`` as a share of each headroom (``1`` uses all of it; ``None``
            when the headroom is unknown or zero).
    """

    at_risk_usd: Money
    daily_loss_headroom_usd: Money | None
    mll_headroom_usd: Money | None
    daily_loss_share: Decimal | None
    mll_share: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """What a command returns at once.

    Attributes:
        idempotency_key: the command's key. command: its type name (``SubmitOrder``).
        verdict: accepted, or denied with the rule, reason and headroom.
        client_order_ids: the orders the command created (a submit's order; empty otherwise).
        risk: for a dry run with a stop distance, what it risks (else ``None``).
        dry_run: nothing was sent. replayed: the first result of this key, returned again.
        ts_ns: when the desk handled it (UTC ns, the node's clock).
    """

    idempotency_key: str
    command: str
    verdict: Verdict
    client_order_ids: tuple[ClientOrderId, ...] = ()
    risk: RiskAtStop | None = None
    dry_run: bool = False
    replayed: bool = False
    ts_ns: int = 0

    @property
    def accepted(self) -> bool:
        """The verdict's ``accepted``."""
        return self.verdict.accepted


@dataclass(frozen=True, slots=True, kw_only=True)
class AddStrategy(Command):
    """Add a named strategy instance to a running desk (``propdesk serve``), bound to ``account_id`` and ``symbol``.

    Attributes:
        name: the instance's name, unique on the desk (its orders' attribution tag; :data:`INSTANCE_NAME_RE`).
        strategy: the strategy reference (a bundled name, an installed entry point, ``module:Class`` or
            ``path/to/file.py:Class``; :mod:`propdesk.strategies.registry`).
        symbol: the contract (``ESZ5``) or root (``ES``: the account's front month).
        params: ``(name, value)`` pairs for the strategy's configuration (its defaults for the rest).
        state: the state it starts in (``running``, ``paused`` or ``stopped``).
        changed_by / source / reason: who adds it, from where and why (kept with parameter version 1).
    """

    name: str
    strategy: str
    symbol: str
    params: tuple[tuple[str, object], ...] = ()
    state: StrategyState = StrategyState.RUNNING
    changed_by: str = ""
    source: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveStrategy(Command):
    """Remove the stopped strategy instance ``name`` from the desk (its history stays in the journal); a running or
    paused instance is refused (stop it first, choosing what happens to what it holds)."""

    name: str
    changed_by: str = ""
    source: str = ""
    reason: str = ""


INSTANCE_NAME_RE: Final[re.Pattern[str]] = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""A strategy instance's name (:class:`AddStrategy`; also its orders' attribution tag): lowercase letters, digits,
``_`` and ``-``, starting with a letter or digit, 1-64 characters."""
