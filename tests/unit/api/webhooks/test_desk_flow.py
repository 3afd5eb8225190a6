"""A TradingView strategy alert (TradersPost-style JSON) through the webhook pipeline onto the Desk of a simulated
account: a bracket order placed and filled, the repeated alert doing nothing, a reversal, and a rule's denial
giving the ``denied`` outcome with its rule id. The Desk and its simulated ES account come from tests.kit.desk."""

from __future__ import annotations

import json
from functools import partial

from propdesk.api.ratelimit import RateLimiter
from propdesk.api.webhooks.checks import DedupeWindow, market_open
from propdesk.api.webhooks.pipeline import Evaluation, evaluate, receive
from propdesk.api.webhooks.security import new_hook_id
from propdesk.api.webhooks.signal import HookSettings, Judgement, Outcome
from propdesk.model.calendar import default_calendar
from propdesk.model.price import Price
from tests.kit.desk import SYM, Env, make_env
from tests.unit.api.conftest import FakeClock

PASS = "a long enough passphrase"


def _hook() -> HookSettings:
    return HookSettings(
        hook_id=new_hook_id(), account_id=1, passphrase=PASS, allowed_roots=frozenset({"ES"}), max_age_s=120
    )


class Flow:
    def __init__(self, env: Env) -> None:
        self.env, self.hook = env, _hook()
        self.dedupe, self.limiter = DedupeWindow(), RateLimiter(clock=FakeClock())
        self.n = 0

    def alert(self, target: int, **extra: object) -> tuple[Evaluation, Judgement]:
        self.n += 1
        body = {"ticker": "ES1!", "action": "buy" if target >= 0 else "sell", "quantity": abs(target) or 1}
        body |= {"target_position": target, "price": "6700", "id": f"alert-{self.n}", "passphrase": PASS, **extra}
        now_ns = self.env.clock.timestamp_ns()
        received = receive(self.hook, json.dumps(body).encode(), signature=None, now_s=now_ns / 1e9)
        result = evaluate(
            received,
            self.hook,
            now_ns=now_ns,
            position_of=lambda symbol: self.env.node.positions.net_qty(self.env.node.account_id, symbol),
            price_of=lambda _symbol: Price.of("6700"),
            is_open=partial(market_open, default_calendar()),
            dedupe=self.dedupe,
            limiter=self.limiter,
        )
        if result.judgement is not None:
            return result, result.judgement
        judgement = Judgement(Outcome.EXECUTED)
        for command in result.commands:
            verdict = self.env.desk.execute(command).verdict
            if not verdict.accepted:
                judgement = Judgement.of_verdict(verdict)
                break
        return result, judgement


def test_tradingview_alert_places_a_bracket_order_on_the_simulated_account() -> None:
    env = make_env()
    flow = Flow(env)
    bracket = {"stopLoss": {"stopPrice": "6698"}, "takeProfit": {"limitPrice": "6704"}}
    result, judgement = flow.alert(1, **bracket)
    assert judgement.outcome is Outcome.EXECUTED and result.signal is not None and result.signal.symbol == SYM
    env.bar()
    assert env.net() == 1
    working = env.desk.working_orders()  # the bracket's children, now that the entry filled at 6700
    exits = sorted((v.side, v.order_type, v.stop_price or v.limit_price) for v in working)
    assert exits == [("SELL", "limit", Price.of("6704")), ("SELL", "stop", Price.of("6698"))]
    assert {v.tag for v in working} == {flow.hook.tag}

    again, judgement = flow.alert(1, **bracket)  # the same target, sent again: converged, nothing to do
    assert judgement.outcome is Outcome.EXECUTED and again.commands == ()

    reverse, judgement = flow.alert(-1)
    assert judgement.outcome is Outcome.EXECUTED and len(reverse.commands) == 3
    env.bar()
    env.bar()
    assert env.net() == -1


def test_a_rule_denial_is_the_denied_outcome_with_its_rule_id() -> None:
    flow = Flow(make_env())
    _, judgement = flow.alert(6)  # 6 minis > the 50K Combine's 5 (R5)
    assert judgement.outcome is Outcome.DENIED and judgement.rule_id == "R5"
