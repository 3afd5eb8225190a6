"""The live session's summary reads the session's Desk: PnL, the open position, the trading state, the MLL floor and
the fills since the broker connected (a session built offline; nothing connects)."""

from __future__ import annotations

from propdesk.model.enums import Side
from propdesk.model.events import OrderFilled
from propdesk.model.identifiers import AccountId, ClientOrderId
from propdesk.model.price import Money, Price
from propdesk.sessions.live import LiveOptions, LiveSession, projectx_settings
from tests.stubs.desk import STUB_NOW_NS, StubDesk

CREDS = {"PROPDESK_PROJECTX_USERNAME": "stub-user", "PROPDESK_PROJECTX_API_KEY": "stub-key"}


def offline_session() -> LiveSession:
    settings = projectx_settings(
        api_base="http://127.0.0.1:9",
        user_hub="http://127.0.0.1:9/hubs/user",
        market_hub="http://127.0.0.1:9/hubs/market",
        config_path=None,
        environ=CREDS,
    )
    return LiveSession(LiveOptions(strategy="sma_cross", symbol="ESZ5"), settings, account_id=7, account_name="stub")


def fill(n: int) -> OrderFilled:
    return OrderFilled(
        client_order_id=ClientOrderId(f"pd-x-{n}"),
        account_id=AccountId(7),
        ts_event_ns=STUB_NOW_NS + n,
        symbol="ESZ5",
        side=Side.BUY,
        qty=1,
        price=Price.of("6700.25"),
        fee=Money(0),
        trade_id=f"t-{n}",
        tag="sma_cross",
    )


def test_the_summary_reads_the_session_desk() -> None:
    session = offline_session()
    assert session.fills == []  # not connected yet: no fill counts
    desk = StubDesk(fill_list=[fill(1), fill(2)])
    session.desk = desk  # type: ignore[assignment]
    session._fills_from = 1  # the broker connected after the first fill (a journal's replayed fill)
    session.symbol = "ESZ5"
    summary = session.summary()
    assert [f.trade_id for f in summary.fills] == ["t-2"]
    assert (summary.realized_pnl, summary.fees, summary.balance, summary.equity) == (
        desk.totals.realized_usd,
        desk.totals.fees_usd,
        desk.totals.balance_usd,
        desk.totals.equity_usd,
    )
    assert (summary.open_qty, str(summary.avg_price)) == (2, "6700.25")
    assert summary.mll_floor == Money.of("49000") and summary.risk is not None  # the desk's
    assert summary.trading_state is None  # no risk configuration: no trading state reported
    out = summary.to_json_dict()
    assert (out["fills"], out["trade_ids"], out["realized_pnl_usd"], out["mll_floor_usd"]) == (
        1,
        ["t-2"],
        "259.50",
        "49000.00",
    )
