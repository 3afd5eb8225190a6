"""One webhook request from bytes to commands, without a server: :func:`receive` then :func:`evaluate`.

1. :func:`receive` (before anything is journaled): the body is at most :data:`MAX_BODY_BYTES`, decodes as one JSON
   object (integers of at most 32 digits, no ``NaN``/``Infinity``, nesting the decoder can handle), carries a valid
   signature when the hook has an ``hmac_secret``, and the right passphrase. A request failing the signature or
   passphrase raises :class:`HookAuthError` (the server answers 401 and stores nothing: it is not a signal); a body
   that is not an alert raises :class:`~.signal.SignalRejectedError` with ``invalid``.
2. :func:`evaluate`: resolve the ticker (:mod:`.symbols`), run the checks (:func:`.checks.judge`) and, when they
   pass, build the commands (:func:`.commands.signal_commands`). The Desk's verdict on those commands gives
   ``executed`` or ``denied`` (:meth:`~.signal.Judgement.of_verdict`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from propdesk.api.ratelimit import RateLimiter
from propdesk.api.webhooks.checks import SECRET_FIELDS, DedupeWindow, dedupe_key, judge
from propdesk.api.webhooks.commands import signal_commands
from propdesk.api.webhooks.payloads import Alert, parse_alert
from propdesk.api.webhooks.security import passphrase_matches, verify_signature
from propdesk.api.webhooks.signal import HookSettings, Judgement, Outcome, Signal, SignalRejectedError
from propdesk.api.webhooks.symbols import resolve_signal
from propdesk.model.commands import Command
from propdesk.model.price import Price

__all__ = ["MAX_BODY_BYTES", "Evaluation", "HookAuthError", "Received", "evaluate", "receive"]

MAX_BODY_BYTES: Final = 16_384
"""The largest alert body accepted (TradingView's alert messages are far smaller)."""
_MAX_INT_DIGITS: Final = 32


class HookAuthError(Exception):
    """The request is not from the hook's sender (bad signature or passphrase); the message names which check
    failed, never a secret."""


@dataclass(frozen=True, slots=True)
class Received:
    """An authenticated alert: the parsed :class:`Alert`, its dedupe key, and the body without secrets (to journal)."""

    alert: Alert
    dedupe_key: str
    body: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What :func:`evaluate` decided: the signal (``None`` when it could not be resolved), the judgement (``None``:
    the checks passed and ``commands`` go to the Desk), and the commands."""

    signal: Signal | None
    judgement: Judgement | None
    commands: tuple[Command, ...] = ()


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _invalid(reason: str) -> SignalRejectedError:
    return SignalRejectedError(Judgement(Outcome.INVALID, reason))


def receive(hook: HookSettings, body: bytes, *, signature: str | None, now_s: float) -> Received:
    """Authenticate and parse one request body for ``hook`` (module docstring, step 1).

    Raises:
        HookAuthError: a missing or bad signature (hooks with ``hmac_secret``), or a wrong or missing passphrase.
        SignalRejectedError: ``invalid``: too large, not JSON, not an object, not a known alert format.
    """
    if len(body) > MAX_BODY_BYTES:
        raise _invalid(f"the body has {len(body)} bytes (at most {MAX_BODY_BYTES})")
    if hook.hmac_secret is not None:
        problem = verify_signature(hook.hmac_secret, signature, body, now_s=now_s)
        if problem is not None:
            raise HookAuthError(problem)
    try:
        decoded = json.loads(body, parse_int=_parse_int, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc)[:120] if isinstance(exc, ValueError) else "nested too deeply"
        raise _invalid(f"the body is not valid JSON ({reason})") from None
    if not isinstance(decoded, dict):
        raise _invalid("the alert body must be a JSON object")
    given = decoded.get("passphrase", decoded.get("token"))
    if not passphrase_matches(hook.passphrase, given):
        raise HookAuthError("the passphrase is missing or wrong")
    alert = parse_alert(decoded)
    clean = {k: v for k, v in decoded.items() if k not in SECRET_FIELDS}
    return Received(alert=alert, dedupe_key=dedupe_key(hook.hook_id, decoded, alert.signal_id), body=clean)


def evaluate(
    received: Received,
    hook: HookSettings,
    *,
    now_ns: int,
    position_of: Callable[[str], int],
    price_of: Callable[[str], Price | None],
    is_open: Callable[[str, int], bool],
    dedupe: DedupeWindow,
    limiter: RateLimiter,
) -> Evaluation:
    """Resolve, judge and, when the checks pass, build the commands of an alert (module docstring, step 2).

    Args:
        received: from :func:`receive`. hook: its hook. now_ns: UTC ns (the contract is resolved at this time).
        position_of: the account's signed position (contracts) in a listed symbol (``MESZ5``).
        price_of: the last price of a listed symbol, or ``None`` when unknown.
        is_open: whether a root trades at a UTC ns time (e.g. :func:`~.checks.market_open` on the calendar).
        dedupe / limiter: as :func:`~.checks.judge`.
    """
    try:
        signal = resolve_signal(received.alert, hook, received_ns=now_ns, dedupe_key=received.dedupe_key)
    except SignalRejectedError as exc:
        return Evaluation(signal=None, judgement=exc.judgement)
    position = position_of(signal.symbol)
    verdict = judge(
        signal,
        hook,
        now_ns=now_ns,
        position=position,
        is_open=is_open(signal.root, now_ns),
        market_price=price_of(signal.symbol),
        dedupe=dedupe,
        limiter=limiter,
    )
    if verdict is not None:
        return Evaluation(signal=signal, judgement=verdict)
    return Evaluation(signal=signal, judgement=None, commands=tuple(signal_commands(signal, position, hook.account_id)))
