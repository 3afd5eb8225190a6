"""The desk's command results in the journal (``command_results``): what makes an idempotency key hold across
restarts.

A row holds the first :class:`~propdesk.model.commands.CommandResult` the desk gave a key of an account, with the
command's type and ``content_digest`` (:func:`command_digest`: SHA-256 hex of the canonical JSON of the command's
content without ``ts_ns``). It is written through the journal like every other record (``Journal.record_rows``:
insert-or-ignore, so the first result of a key stays) and read back when a desk starts (:func:`load_command_results`).

The result's JSON is exact: money as integer cents, decimals as their decimal strings (``Decimal(str(d)) == d`` with
the same exponent), client order ids as strings; :func:`command_result_from_json` rebuilds an equal result.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select

from propdesk.model.commands import Command, CommandResult, RiskAtStop, Verdict
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.storage.repositories import TABLES
from propdesk.storage.rows import Row

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "MAX_KEY_LENGTH",
    "StoredResult",
    "command_digest",
    "command_result_from_json",
    "command_result_json",
    "command_result_row",
    "load_command_results",
]

MAX_KEY_LENGTH: Final[int] = 128
"""The longest idempotency key the ``command_results`` table holds (characters)."""

StoredResult = tuple[str, CommandResult]
"""``(content digest, first result)`` of one key."""


def _plain(value: object) -> object:
    if isinstance(value, Price):
        return value.raw  # exact: points x 10**9
    if isinstance(value, Money):
        return value.cents
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


_CONTENT_JSON: Final = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=_plain).encode


def command_digest(command: Command) -> str:
    """SHA-256 hex of the canonical JSON of ``command``'s content (its type and fields without ``ts_ns``; prices as
    ``Price.raw``, money as cents, enums by name (int enums as ints), decimals as strings, other values by
    ``repr``). Commands carry no secrets, so nothing is scrubbed."""
    return hashlib.sha256(_CONTENT_JSON(command.content()).encode()).hexdigest()


def _money(m: Money | None) -> int | None:
    return None if m is None else m.cents


def _dec(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def _money_of(v: Any) -> Money | None:
    return None if v is None else Money(int(v))


def _dec_of(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


def command_result_json(result: CommandResult) -> str:
    """``result`` as compact JSON with sorted keys (money in cents, decimals as strings)."""
    v, r = result.verdict, result.risk
    doc: dict[str, Any] = {
        "idempotency_key": result.idempotency_key,
        "command": result.command,
        "verdict": {
            "accepted": v.accepted,
            "rule_id": v.rule_id,
            "reason": v.reason,
            "headroom_cents": _money(v.headroom_usd),
            "headroom_qty": _dec(v.headroom_qty),
        },
        "client_order_ids": [str(c) for c in result.client_order_ids],
        "risk": None
        if r is None
        else {
            "at_risk_cents": r.at_risk_usd.cents,
            "daily_loss_headroom_cents": _money(r.daily_loss_headroom_usd),
            "mll_headroom_cents": _money(r.mll_headroom_usd),
            "daily_loss_share": _dec(r.daily_loss_share),
            "mll_share": _dec(r.mll_share),
        },
        "dry_run": result.dry_run,
        "replayed": result.replayed,
        "ts_ns": result.ts_ns,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def command_result_from_json(text: str) -> CommandResult:
    """The :class:`CommandResult` of :func:`command_result_json`'s ``text``.

    Raises:
        ValueError: ``text`` is not such JSON (``json.JSONDecodeError``, a missing key, a bad number).
    """
    try:
        doc = json.loads(text)
        v = doc["verdict"]
        r = doc["risk"]
        risk = None
        if r is not None:
            risk = RiskAtStop(
                at_risk_usd=Money(int(r["at_risk_cents"])),
                daily_loss_headroom_usd=_money_of(r["daily_loss_headroom_cents"]),
                mll_headroom_usd=_money_of(r["mll_headroom_cents"]),
                daily_loss_share=_dec_of(r["daily_loss_share"]),
                mll_share=_dec_of(r["mll_share"]),
            )
        return CommandResult(
            idempotency_key=str(doc["idempotency_key"]),
            command=str(doc["command"]),
            verdict=Verdict(
                accepted=bool(v["accepted"]),
                rule_id=str(v["rule_id"]),
                reason=str(v["reason"]),
                headroom_usd=_money_of(v["headroom_cents"]),
                headroom_qty=_dec_of(v["headroom_qty"]),
            ),
            client_order_ids=tuple(ClientOrderId(str(c)) for c in doc["client_order_ids"]),
            risk=risk,
            dry_run=bool(doc["dry_run"]),
            replayed=bool(doc["replayed"]),
            ts_ns=int(doc["ts_ns"]),
        )
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"not a command result: {type(exc).__name__}: {exc}") from exc


def command_result_row(account_id: int, digest: str, result: CommandResult) -> Row:
    """The ``command_results`` row of ``result`` (the first result of its key on ``account_id``)."""
    return {
        "account_id": int(account_id),
        "idempotency_key": result.idempotency_key,
        "command_type": result.command,
        "content_digest": digest,
        "result": command_result_json(result),
        "ts_ns": int(result.ts_ns),
    }


async def load_command_results(engine: AsyncEngine, account_id: int) -> dict[str, StoredResult]:
    """Every stored first result of ``account_id``: ``idempotency key -> (content digest, result)``.

    Raises:
        ValueError: a stored result is not valid JSON of a result (naming the key).
        sqlalchemy errors: the table cannot be read (the database is not migrated to 0004).
    """
    t = TABLES["command_results"]
    q = select(t.c.idempotency_key, t.c.content_digest, t.c.result).where(t.c.account_id == int(account_id))
    out: dict[str, StoredResult] = {}
    async with engine.connect() as conn:
        for key, digest, text in await conn.execute(q):
            try:
                out[key] = (digest, command_result_from_json(text))
            except ValueError as exc:
                raise ValueError(f"command_results: account {account_id}, key {key!r}: {exc}") from exc
    return out
