"""From an alert's ticker to the listed contract a hook trades, and from an :class:`Alert` to a :class:`Signal`.

Tickers (upper-cased; an exchange prefix such as ``CME_MINI:`` is dropped):

* continuous ``ES1!`` / ``ES2!`` (TradingView): the front contract at the time of the alert through the roll
  calendar (:func:`propdesk.model.symbology.front_month`: ESZ5 until 17:00 CT the day before its roll date), then the
  next ones for ``2!``, ``3!``;
* listed ``ESZ5`` / ``ESZ25`` (:func:`~propdesk.model.symbology.parse_symbol`) and TradingView's ``ESZ2025``;
* a bare root ``ES``: the front contract, as ``ES1!``.

**Remapping** (:func:`remap`, the hook's ``remap``, e.g. ``ES`` -> ``MES``): the same contract month of the other
root, the quantity and target position scaled by the ratio of point values (ES 50 USD / MES 5 USD per point: 1 ES
is 10 MES). It applies only when the result is a whole number of contracts (3 MES cannot become ES; 10 can become
1); otherwise the signal is ``symbol_not_allowed`` with the numbers. Both roots must have the same tick size, so a
bracket in ticks means the same prices.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from propdesk.api.webhooks.payloads import Alert
from propdesk.api.webhooks.signal import HookSettings, Judgement, Outcome, Signal, SignalAction, SignalRejectedError
from propdesk.core.errors import ContractError
from propdesk.model.contracts import ContractSpec, default_registry
from propdesk.model.identifiers import Root
from propdesk.model.orders import OrderType
from propdesk.model.price import Price
from propdesk.model.symbology import Contract, contract, front_month, next_contract, parse_symbol

__all__ = ["contract_of_ticker", "remap", "resolve_signal"]

_CONTINUOUS: Final = re.compile(r"^([A-Z0-9]+?)([1-9])!$")
_FOUR_DIGIT_YEAR: Final = re.compile(r"^([A-Z0-9]+?)([FGHJKMNQUVXZ])(20\d\d)$")


def _not_allowed(reason: str) -> SignalRejectedError:
    return SignalRejectedError(Judgement(Outcome.SYMBOL_NOT_ALLOWED, reason))


def _invalid(reason: str) -> SignalRejectedError:
    return SignalRejectedError(Judgement(Outcome.INVALID, reason))


def contract_of_ticker(ticker: str, ts_ns: int) -> Contract:
    """The listed contract ``ticker`` names at ``ts_ns`` (UTC ns; module docstring).

    Raises:
        SignalRejectedError: ``symbol_not_allowed``: a ticker naming no known contract.
    """
    t = ticker.strip().upper().rsplit(":", 1)[-1]
    try:
        m = _CONTINUOUS.match(t)
        if m is not None:
            c = front_month(m.group(1), ts_ns)
            for _ in range(int(m.group(2)) - 1):
                c = next_contract(c)
            return c
        m = _FOUR_DIGIT_YEAR.match(t)
        if m is not None:
            return contract(m.group(1), m.group(2), int(m.group(3)))
        if t in default_registry():
            return front_month(t, ts_ns)
        return parse_symbol(t, ts_ns)
    except ContractError as exc:
        raise _not_allowed(f"ticker {ticker[:64]!r} names no known contract ({exc})") from None


def _scale(n: int | None, ratio: Decimal, what: str, frm: str, to: str) -> int | None:
    if n is None:
        return None
    scaled = n * ratio
    if scaled != scaled.to_integral_value():
        raise _not_allowed(f"{what} {n} {frm} is {scaled.normalize()} {to}, not a whole number of contracts")
    return int(scaled)


def remap(c: Contract, to_root: str, qty: int | None, target: int | None) -> tuple[Contract, int | None, int | None]:
    """``c`` traded as ``to_root``: the same month, ``qty`` and ``target`` (contracts) scaled by the ratio of point
    values. Identity when ``to_root`` is ``c``'s root.

    Raises:
        SignalRejectedError: ``symbol_not_allowed``: an unknown root, another tick size, a month ``to_root`` does
            not list, or a quantity that would not be whole.
    """
    if to_root == c.root:
        return c, qty, target
    reg = default_registry()
    if to_root not in reg:
        raise _not_allowed(f"remap target {to_root!r} is not a known root")
    frm, to = c.spec, reg.spec(to_root)
    if frm.tick_size != to.tick_size:
        raise _not_allowed(f"{frm.root} and {to.root} have different tick sizes ({frm.tick_size}, {to.tick_size})")
    ratio = frm.point_value / to.point_value
    try:
        mapped = Contract(Root(to_root), c.year, c.month)
    except ContractError as exc:
        raise _not_allowed(f"{c.symbol} has no {to_root} counterpart: {exc}") from None
    new_qty = _scale(qty, ratio, "quantity", frm.root, to.root)
    new_target = _scale(target, ratio, "target position", frm.root, to.root)
    return mapped, new_qty, new_target


def _ticks_between(spec: ContractSpec, ref: Decimal, level: Decimal, what: str) -> int:
    distance = Price.of(abs(level - ref))
    if not distance.is_aligned(spec.tick_size):
        raise _invalid(f"{what} {level} is not a whole number of {spec.tick_size} ticks from {ref}")
    return distance.ticks(spec.tick_size)


def _bracket_ticks(alert: Alert, spec: ContractSpec, side: SignalAction) -> tuple[int | None, int | None]:
    stop, take = alert.stop_loss_ticks, alert.take_profit_ticks
    if alert.stop_loss_price is None and alert.take_profit_price is None:
        return stop, take
    ref = alert.limit_price if alert.order_type is OrderType.LIMIT else alert.price
    if ref is None:
        raise _invalid("a stop or take-profit price needs the alert's price (or limit price) to measure ticks from")
    sign = 1 if side is SignalAction.BUY else -1
    if alert.stop_loss_price is not None:
        if (alert.stop_loss_price - ref) * sign >= 0:
            raise _invalid(f"stop {alert.stop_loss_price} is not on the losing side of {ref} for a {side.value}")
        stop = _ticks_between(spec, ref, alert.stop_loss_price, "stop")
    if alert.take_profit_price is not None:
        if (alert.take_profit_price - ref) * sign <= 0:
            raise _invalid(f"take profit {alert.take_profit_price} is not beyond {ref} for a {side.value}")
        take = _ticks_between(spec, ref, alert.take_profit_price, "take profit")
    return stop, take


def resolve_signal(alert: Alert, hook: HookSettings, *, received_ns: int, dedupe_key: str) -> Signal:
    """The :class:`Signal` of ``alert`` on ``hook``: its contract at ``received_ns`` (what trades now), remapped,
    checked against the hook's roots, with its bracket in ticks and its limit price on the tick.

    Raises:
        SignalRejectedError: ``symbol_not_allowed`` (unknown ticker, root not allowed, remap not whole) or
            ``invalid`` (a buy/sell without quantity or target, a limit or bracket price off the tick grid or on the
            wrong side).
    """
    c = contract_of_ticker(alert.ticker, received_ns)
    c, qty, target = remap(c, hook.remap_of(c.root), alert.qty, alert.target_position)
    if c.root not in hook.allowed_roots:
        allowed = ", ".join(sorted(hook.allowed_roots)) or "none"
        raise _not_allowed(f"{c.symbol} ({c.root}) is not allowed on this hook (allowed roots: {allowed})")
    if alert.action in (SignalAction.BUY, SignalAction.SELL) and qty is None and target is None:
        raise _invalid(f"a {alert.action.value} needs a quantity or a target_position")
    spec = c.spec
    stop, take = (None, None)
    if alert.action in (SignalAction.BUY, SignalAction.SELL):
        stop, take = _bracket_ticks(alert, spec, alert.action)
    limit: Price | None = None
    if alert.order_type is OrderType.LIMIT and alert.limit_price is not None:
        limit = Price.of(alert.limit_price)
        if limit.raw <= 0 or not limit.is_aligned(spec.tick_size):
            raise _invalid(f"limit price {alert.limit_price} is not a positive price on the {spec.tick_size} tick")
    return Signal(
        hook_id=hook.hook_id,
        source=alert.source,
        ticker=alert.ticker,
        symbol=c.symbol,
        root=c.root,
        action=alert.action,
        qty=qty,
        target_position=target,
        order_type=alert.order_type,
        limit_price=limit,
        price=alert.price,
        stop_loss_ticks=stop,
        take_profit_ticks=take,
        sent_at_ns=alert.sent_at_ns,
        received_ns=received_ns,
        dedupe_key=dedupe_key,
        tag=f"{hook.tag}:{alert.tag}" if alert.tag else hook.tag,
    )
