"""The gateway's ids (propdesk.emulators.projectx.state, ``GatewayConfig.id_base``): order and trade ids are unique
and increase across gateway restarts, as the real API's do (the journal keys a ProjectX fill by account and trade
id); a fixed ``id_base`` makes them deterministic; configured history fills keep the same ids in every process."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from propdesk.core.errors import ConfigError
from propdesk.emulators.projectx import AccountConfig, PastTrade
from propdesk.emulators.projectx import config as gateway_config
from tests.unit.emulators.projectx.conftest import ES, POSITION_ACCT, Api, gateway_client, make_app, make_config

SINCE = {"startTimestamp": "2020-01-01T00:00:00Z"}
ES_Z25 = "CON.F.US.EP.Z25"


def _round_trip(**overrides: Any) -> tuple[list[int], list[int], list[int]]:
    """Start a gateway, buy 1 ES at market, close it, stop: (order ids, trade ids, position ids) it handed out."""
    with gateway_client(make_app(**overrides)) as client:
        api = Api(client)
        api.step(4)
        api.ok("Order/place", {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 0, "size": 1})
        positions = [p["id"] for p in api.ok("Position/searchOpen", {"accountId": POSITION_ACCT})["positions"]]
        api.step(2)
        api.ok("Position/closeContract", {"accountId": POSITION_ACCT, "contractId": ES})
        orders = [o["id"] for o in api.ok("Order/search", {"accountId": POSITION_ACCT, **SINCE})["orders"]]
        trades = [t["id"] for t in api.ok("Trade/search", {"accountId": POSITION_ACCT, **SINCE})["trades"]]
    return orders, trades, positions


def test_two_gateways_started_one_after_the_other_hand_out_disjoint_increasing_ids() -> None:
    orders1, trades1, positions1 = _round_trip()
    orders2, trades2, positions2 = _round_trip()
    assert len(orders1) == len(trades1) == len(orders2) == len(trades2) == 2
    for ids in (orders1, trades1, orders2, trades2):
        assert ids == sorted(set(ids))  # unique and increasing within a process
    assert min(orders2) > max(orders1)
    assert min(trades2) > max(trades1)
    assert max(orders2 + trades2) < 2**53  # the spec's int64, and exact in a JSON double
    assert 1 <= min(positions1) <= max(positions2) < 2**31  # the spec's int (int32)


def test_a_fixed_id_base_gives_deterministic_ids() -> None:
    first = _round_trip(id_base=9001)
    assert first == ([9001, 9002], [9001, 9002], [1])
    assert _round_trip(id_base=9001) == first


def test_history_fills_keep_their_ids_in_every_process_below_the_live_ones() -> None:
    history = [
        PastTrade(time=datetime(2026, 10, 5, 15, tzinfo=UTC), contract_id=ES_Z25, side="buy", size=1, price=6000),
        PastTrade(time=datetime(2026, 10, 6, 15, tzinfo=UTC), contract_id=ES_Z25, side="sell", size=1, price=6001),
    ]
    accounts = [AccountConfig(id=POSITION_ACCT, name="OLD", balance=Decimal("50000"), history=history)]
    seen = []
    for _ in range(2):
        with gateway_client(make_app(accounts=accounts)) as client:
            api = Api(client)
            api.step(4)
            api.ok("Order/place", {"accountId": POSITION_ACCT, "contractId": ES, "type": 2, "side": 0, "size": 1})
            rows = api.ok("Trade/search", {"accountId": POSITION_ACCT})["trades"]
        seen.append([(r["id"], r["orderId"]) for r in rows])
    for rows in seen:
        assert rows[:2] == [(1, 1), (2, 2)]
        assert rows[2][0] > 2 and rows[2][1] > 2
    assert seen[1][2][0] > seen[0][2][0]  # the live fill of the later process has the larger id


def test_id_base_must_exceed_the_history_ids_and_stay_json_exact() -> None:
    history = [
        PastTrade(time=datetime(2026, 10, 5, 15, tzinfo=UTC), contract_id=ES_Z25, side="buy", size=1, price=6000),
        PastTrade(time=datetime(2026, 10, 6, 15, tzinfo=UTC), contract_id=ES_Z25, side="sell", size=1, price=6001),
    ]
    accounts = [AccountConfig(id=POSITION_ACCT, name="OLD", history=history)]
    cfg = make_config()
    with pytest.raises(ConfigError, match="id_base 2 must exceed the 2 configured history fills"):
        cfg.with_updates(accounts=[a.model_dump() for a in accounts], id_base=2)
    assert cfg.with_updates(accounts=[a.model_dump() for a in accounts], id_base=3).id_base == 3
    with pytest.raises(ConfigError, match="id_base"):
        cfg.with_updates(id_base=gateway_config.MAX_ID_BASE + 1)
    with pytest.raises(ConfigError, match="id_base"):
        cfg.with_updates(id_base=0)
