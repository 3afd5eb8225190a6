"""An account created with a past (``AccountConfig.history``): ``Trade/search`` serves the past fills and the
balance includes them (propdesk.emulators.projectx.config.PastTrade, propdesk.emulators.projectx.state)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from propdesk.core.errors import ConfigError
from propdesk.emulators.projectx import AccountConfig, PastTrade
from tests.unit.emulators.projectx.conftest import Api, gateway_client

ES_Z25 = "CON.F.US.EP.Z25"  # an expired month of a configured root


def past(day: int, side: str, pnl: str | None, fees: str = "2.80", **kw: object) -> PastTrade:
    return PastTrade.model_validate(
        {"time": datetime(2026, 10, day, 15, 0), "contract_id": ES_Z25, "side": side, "size": 1,
         "price": Decimal("6000.25"), "pnl": pnl, "fees": fees, **kw}
    )  # fmt: skip


def test_trade_search_serves_the_past_and_the_balance_includes_it(app_factory: Callable[..., FastAPI]) -> None:
    history = [
        past(5, "buy", None),
        past(6, "sell", "500.00"),  # net 500 - 5.60 = 494.40
        past(7, "sell", None, voided=True),
        past(7, "buy", None, voided=True),  # voided: no balance change
        past(8, "sell", None, fees="1.40"),
        past(9, "buy", "-250.00", fees="1.40"),  # net -250 - 2.80 = -252.80
    ]
    acct = AccountConfig(id=21001, name="COMBINE-OLD", balance=Decimal("50000"), history=history)
    with gateway_client(app_factory(accounts=[acct])) as client:
        api = Api(client)
        (a,) = api.ok("Account/search", {"onlyActiveAccounts": True})["accounts"]
        assert a["balance"] == 50241.60  # 50,000 + 494.40 - 252.80
        rows = api.ok("Trade/search", {"accountId": 21001})["trades"]  # no start: from the account's creation
        assert [r["profitAndLoss"] for r in rows] == [None, 500.0, None, None, None, -250.0]
        assert [r["voided"] for r in rows] == [False, False, True, True, False, False]
        assert rows[0]["creationTimestamp"].startswith("2026-10-05T15:00:00")
        assert rows[0]["contractId"] == ES_Z25 and rows[0]["fees"] == 2.8
        assert len({r["id"] for r in rows}) == 6
        window = {"accountId": 21001, "startTimestamp": "2026-10-06T00:00:00Z", "endTimestamp": "2026-10-07T23:00:00Z"}
        assert len(api.ok("Trade/search", window)["trades"]) == 3


def test_a_history_that_leaves_a_position_open_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"position open in CON\.F\.US\.EP\.Z25"):
        AccountConfig(id=1, name="x", history=[past(5, "buy", None)])


def test_a_past_trade_after_the_start_is_refused(app_factory: Callable[..., FastAPI]) -> None:
    late = [past(5, "buy", None), past(5, "sell", "1.00")]
    late[1] = late[1].model_copy(update={"time": datetime(2027, 1, 1, tzinfo=UTC)})
    with pytest.raises(ConfigError, match="not before the start"):
        app_factory(accounts=[AccountConfig(id=1, name="x", history=late)])
