"""A signal as Desk commands (:mod:`propdesk.model.commands`), given the account's current position: a pure function.

:func:`signal_commands` returns the commands in the order the Desk must run them (each with an idempotency key
derived from the signal's dedupe key and its index, so the same signal never places a second order):

* ``cancel``: ``CancelAllOrders(symbol)``.
* ``exit`` without a quantity: ``CancelAllOrders(symbol)`` (its bracket children and working entries), then
  ``ClosePosition(symbol)`` when there is a position. With a quantity: ``ClosePosition(symbol, qty)`` of at most the
  position (the bracket children stay with what is left).
* ``buy``/``sell`` with ``target_position`` T from position P (convergence: a repeated alert finds T reached and
  does nothing; a missed one is made up):

  - T == P: nothing;
  - T == 0: cancel the contract's working orders and close the position;
  - same side, further from zero: ``SubmitOrder`` of ``|T - P|`` with the signal's bracket;
  - same side, nearer to zero: ``ClosePosition(symbol, |T - P|)``;
  - other side (or from flat): when P is not flat, cancel and close it; then ``SubmitOrder`` of ``|T|`` on T's side
    with the bracket (the new position gets its own bracket, the old one's children are gone).

* ``buy``/``sell`` without a target: ``SubmitOrder`` of ``qty`` on that side with the bracket (a plain order: send
  ``target_position``, or TradersPost's ``sentiment: flat``, for alerts that must converge).

A signal's target is in the contract it trades (after remapping), like the position given.
"""

from __future__ import annotations

from propdesk.api.webhooks.signal import Signal, SignalAction
from propdesk.model.commands import CancelAllOrders, ClosePosition, Command, SubmitOrder
from propdesk.model.enums import Side

__all__ = ["signal_commands"]


def _key(signal: Signal, n: int) -> str:
    return f"hook:{signal.dedupe_key[:40]}:{n}"


def signal_commands(signal: Signal, position: int, account_id: int | None = None) -> list[Command]:
    """The commands that carry out ``signal`` from ``position`` (signed contracts in ``signal.symbol``) on
    ``account_id`` (module docstring). An empty list: nothing to do (target already reached, nothing to exit).

    Raises:
        ValueError: a buy/sell with neither quantity nor target (resolution refuses these first).
    """
    out: list[Command] = []
    sym = signal.symbol

    def cancel_all() -> None:
        out.append(
            CancelAllOrders(
                idempotency_key=_key(signal, len(out)), ts_ns=signal.received_ns, account_id=account_id, symbol=sym
            )
        )

    def close(qty: int | None, reason: str) -> None:
        out.append(
            ClosePosition(
                idempotency_key=_key(signal, len(out)),
                ts_ns=signal.received_ns,
                account_id=account_id,
                symbol=sym,
                qty=qty,
                reason=reason,
            )
        )

    def submit(side: Side, qty: int) -> None:
        out.append(
            SubmitOrder(
                idempotency_key=_key(signal, len(out)),
                ts_ns=signal.received_ns,
                account_id=account_id,
                symbol=sym,
                side=side,
                qty=qty,
                order_type=signal.order_type,
                limit_price=signal.limit_price,
                tag=signal.tag,
                stop_loss_ticks=signal.stop_loss_ticks,
                take_profit_ticks=signal.take_profit_ticks,
            )
        )

    if signal.action is SignalAction.CANCEL:
        cancel_all()
        return out
    if signal.action is SignalAction.EXIT:
        if signal.qty is not None and position != 0:
            close(min(signal.qty, abs(position)), "webhook exit")
            return out
        cancel_all()
        if position != 0:
            close(None, "webhook exit")
        return out

    target = signal.target_position
    if target is None:
        if signal.qty is None:
            raise ValueError(f"a {signal.action.value} signal needs a quantity or a target position")
        submit(Side.BUY if signal.action is SignalAction.BUY else Side.SELL, signal.qty)
        return out
    if target == position:
        return out
    if target == 0:
        cancel_all()
        close(None, "webhook target 0")
        return out
    if target * position > 0:
        delta = target - position
        if abs(target) > abs(position):
            submit(Side.BUY if delta > 0 else Side.SELL, abs(delta))
        else:
            close(abs(delta), "webhook target position")
        return out
    if position != 0:
        cancel_all()
        close(None, "webhook reversal")
    submit(Side.BUY if target > 0 else Side.SELL, abs(target))
    return out
