"""Wire models: both doc vintages, timestamps, envelopes (spec sections 3.2, 3.6)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from propdesk.brokers.projectx.models import (
    Account,
    BarsResponse,
    Contract,
    ContractByIdResponse,
    ModifyOrderRequest,
    OrderRow,
    OrderSearchResponse,
    PlaceOrderRequest,
    TradeRow,
    ValidateResponse,
    format_ts,
    parse_ts_ns,
)

NS = 1_000_000_000
BASE = 1_752_872_401 * NS  # 2025-07-18T21:00:01Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-18T21:00:01.268009+00:00", BASE + 268_009_000),
        ("2025-07-18T21:00:01.268009Z", BASE + 268_009_000),
        ("2025-07-18T21:00:01.2680091234+00:00", BASE + 268_009_123),
        ("2025-07-18T21:00:01.5", BASE + 500_000_000),
        ("2025-07-18T16:00:01-05:00", BASE),
        ("2025-07-19T02:30:01+0530", BASE),
        ("2025-07-18T21:00:01", BASE),
    ],
)
def test_timestamps_any_offset_any_fraction(text: str, expected: int) -> None:
    assert parse_ts_ns(text) == expected


def test_timestamp_rejects_garbage_and_formats_utc() -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_ts_ns("yesterday")
    assert format_ts(BASE + 268_009_000) == "2025-07-18T21:00:01.268009+00:00"
    assert parse_ts_ns(format_ts(BASE + 5_000)) == BASE + 5_000


def test_account_older_vintage_has_no_simulated() -> None:
    old = Account.model_validate({"id": 1, "name": "A", "balance": 50000.5, "canTrade": True, "isVisible": True})
    new = Account.model_validate(
        {"id": 1, "name": "A", "balance": 50000.5, "canTrade": True, "isVisible": True, "simulated": True}
    )
    assert old.simulated is None
    assert new.simulated is True
    assert old.balance == Decimal("50000.5")


def test_contract_symbol_id_derived_when_absent() -> None:
    c = Contract.model_validate(
        {
            "id": "CON.F.US.ENQ.H25",
            "name": "NQH5",
            "description": "",
            "tickSize": 0.25,
            "tickValue": 5,
            "activeContract": True,
        }
    )
    assert c.symbol_id is None
    assert c.symbol_id_or_derived == "F.US.ENQ"
    assert c.tick_size == Decimal("0.25")


def test_contract_by_id_both_shapes() -> None:
    c = {"id": "CON.F.US.EP.Z25", "name": "ESZ5", "tickSize": 0.25, "tickValue": 12.5}
    newer = ContractByIdResponse.model_validate({"success": True, "errorCode": 0, "contract": c})
    older = ContractByIdResponse.model_validate({"success": True, "errorCode": 0, "contracts": [c]})
    both = ContractByIdResponse.model_validate({"success": True, "errorCode": 0, "contract": c, "contracts": [c]})
    none = ContractByIdResponse.model_validate({"success": False, "errorCode": 1, "contract": None, "contracts": None})
    assert newer.item is not None and newer.item.name == "ESZ5"
    assert older.item is not None and older.item.id == "CON.F.US.EP.Z25"
    assert both.item is not None
    assert none.item is None


def test_order_older_example_without_newer_fields() -> None:
    row = OrderRow.model_validate(
        {
            "id": 26060,
            "accountId": 545,
            "contractId": "CON.F.US.EP.M25",
            "creationTimestamp": "2025-04-14T17:49:10.142532+00:00",
            "updateTimestamp": None,
            "status": 2,
            "type": 2,
            "side": 0,
            "size": 1,
            "limitPrice": None,
            "stopPrice": None,
        }
    )
    assert row.custom_tag is None and row.fill_volume == 0 and row.symbol_id is None
    assert row.update_timestamp is None
    assert row.creation_timestamp == parse_ts_ns("2025-04-14T17:49:10.142532Z")


def test_order_sw_extras_and_nulls() -> None:
    row = OrderRow.model_validate(
        {
            "id": 9,
            "accountId": 1,
            "contractId": "X",
            "status": 8,
            "type": 4,
            "side": 1,
            "size": 2,
            "stopPrice": 6335.250000000,
            "fillVolume": None,
            "customTag": "pd-1",
            "parentOrderId": 7,
            "trailDistance": None,
            "someFutureField": 1,
        }
    )
    assert row.parent_order_id == 7 and row.fill_volume == 0 and row.stop_price == Decimal("6335.25")


def test_trade_opening_half_turn_has_null_pnl() -> None:
    t = TradeRow.model_validate(
        {
            "id": 8604,
            "accountId": 203,
            "contractId": "CON.F.US.EP.H25",
            "creationTimestamp": "2025-01-21T16:13:52.523293+00:00",
            "price": 6065.25,
            "profitAndLoss": None,
            "fees": 1.4,
            "side": 1,
            "size": 1,
            "voided": False,
            "orderId": 14328,
        }
    )
    assert t.profit_and_loss is None and t.fees == Decimal("1.4") and t.commissions is None


def test_null_payload_lists_are_empty_and_validate_token_either_key() -> None:
    r = OrderSearchResponse.model_validate({"success": False, "errorCode": 1, "errorMessage": "x", "orders": None})
    assert r.orders == []
    assert ValidateResponse.model_validate({"success": True, "token": "a.b.c"}).fresh_token == "a.b.c"
    assert ValidateResponse.model_validate({"success": True, "newToken": "d.e.f"}).fresh_token == "d.e.f"


def test_bars_parse() -> None:
    r = BarsResponse.model_validate(
        {
            "success": True,
            "errorCode": 0,
            "bars": [{"t": "2024-12-20T14:00:00+00:00", "o": 2208.1, "h": 2217, "l": 2206.7, "c": 2210.1, "v": 87}],
        }
    )
    assert r.bars[0].h == Decimal(2217) and r.bars[0].v == 87


def test_request_bodies() -> None:
    place = PlaceOrderRequest(
        account_id=1, contract_id="C", type=1, side=0, size=2, limit_price=Decimal("6543.25"), custom_tag="pd-1"
    ).body()
    assert place["limitPrice"] == 6543.25 and place["stopPrice"] is None and place["trailPrice"] is None
    assert "linkedOrderId" not in place and "stopLossBracket" not in place
    mod = ModifyOrderRequest(account_id=1, order_id=5, stop_price=Decimal("1.08505")).body()
    assert mod == {"accountId": 1, "orderId": 5, "stopPrice": 1.08505}
