"""The desk's command results as journal rows (propdesk.storage.command_results): exact JSON, the content digest,
written through the journal and read back (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from propdesk.model.commands import CommandResult, RiskAtStop, SubmitOrder, UpdateStrategyParams, Verdict
from propdesk.model.enums import Side
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.storage.command_results import (
    command_digest,
    command_result_from_json,
    command_result_json,
    command_result_row,
    load_command_results,
)
from propdesk.storage.db import create_engine_for
from propdesk.storage.journal import Journal

RESULT = CommandResult(
    idempotency_key="k1",
    command="SubmitOrder",
    verdict=Verdict(
        accepted=False, rule_id="R5", reason="R5: 6 > 5", headroom_usd=Money.of("1999.99"), headroom_qty=Decimal("2.5")
    ),
    client_order_ids=(ClientOrderId("pd-abc-1"),),
    risk=RiskAtStop(
        at_risk_usd=Money.of("200"),
        daily_loss_headroom_usd=Money.of("500.00"),
        mll_headroom_usd=None,
        daily_loss_share=Decimal("0.40"),
        mll_share=Decimal(1) / Decimal(3),
    ),
    dry_run=True,
    ts_ns=1_760_000_000_123_456_789,
)


def test_a_result_round_trips_through_json_exactly() -> None:
    back = command_result_from_json(command_result_json(RESULT))
    assert back == RESULT
    assert back.risk is not None and str(back.risk.daily_loss_share) == "0.40"  # the exponent too
    plain = CommandResult(idempotency_key="k2", command="CancelOrder", verdict=Verdict(accepted=True))
    assert command_result_from_json(command_result_json(plain)) == plain
    with pytest.raises(ValueError, match="not a command result"):
        command_result_from_json('{"verdict": {}}')


def test_the_digest_covers_the_content_but_not_the_time() -> None:
    def order(qty: int, ts_ns: int = 0) -> SubmitOrder:
        return SubmitOrder(
            idempotency_key="k", symbol="ESZ5", side=Side.BUY, qty=qty, limit_price=Price.of("6700.25"), ts_ns=ts_ns
        )

    assert command_digest(order(1)) == command_digest(order(1, ts_ns=5))
    assert command_digest(order(1)) != command_digest(order(2))
    update = UpdateStrategyParams(
        idempotency_key="u", strategy="s", params=(("x", Decimal("1.5")),), expected_version=1
    )
    assert len(command_digest(update)) == 64


def test_rows_journaled_are_loaded_per_account_and_the_first_result_of_a_key_stays(db_url: str) -> None:
    async def go() -> None:
        engine = create_engine_for(db_url)
        journal = Journal(engine, max_delay_s=0.001)
        await journal.start()
        try:
            journal.record_rows([("command_results", command_result_row(1, "d" * 64, RESULT))], 1)
            later = CommandResult(idempotency_key="k1", command="SubmitOrder", verdict=Verdict(accepted=True))
            journal.record_rows([("command_results", command_result_row(1, "e" * 64, later))], 1)
            other = CommandResult(idempotency_key="k1", command="CancelOrder", verdict=Verdict(accepted=True))
            journal.record_rows([("command_results", command_result_row(2, "f" * 64, other))], 2)
            await journal.flush()
            assert await load_command_results(engine, 1) == {"k1": ("d" * 64, RESULT)}
            assert await load_command_results(engine, 2) == {"k1": ("f" * 64, other)}
            assert await load_command_results(engine, 3) == {}
        finally:
            await journal.stop()
            await engine.dispose()

    asyncio.run(go())
