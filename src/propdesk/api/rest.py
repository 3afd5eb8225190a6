"""The REST resources of ``/api/v1`` on the :class:`~propdesk.node.service.DeskService`.

Reads need the ``read`` scope, every mutating route ``trade`` (or ``admin``), through :func:`propdesk.api.auth.require`.
A command route builds one command of :mod:`propdesk.model.commands` (its idempotency key from the
``Idempotency-Key`` header, a new random one when absent; required for flatten), executes it on the service and
answers ``202`` with the verdict (:class:`~propdesk.api.schemas.CommandResultOut`), or the denial as a problem
document (:mod:`propdesk.api.verdicts`). The desk runs on the event loop's thread: the routes are ``async`` and call
it directly, between two events.

Resources: ``accounts`` (+ ``/{id}``, ``/{id}/risk``, ``/{id}/trading-state``, ``/{id}/flatten``,
``/{id}/positions/{symbol}/close``), ``positions``, ``orders`` (list with filters and a cursor, place with
``?dry_run=true``, modify, cancel, ``cancel-all``), ``fills``, ``round-trips``, ``stats/daily``,
``stats/strategies``, ``strategies`` (classes with their parameters' JSON Schema), ``instances`` (create, start,
pause, resume, stop, ``PATCH params`` with ``If-Match``, versions, delete), ``contracts``, ``bars``, ``audit``,
``events?after_seq=`` and ``auth/ws-ticket``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from propdesk.api.auth import Principal, authenticator_of, require
from propdesk.api.keys import Scope
from propdesk.api.problems import ApiProblem, Problem, ProblemCode
from propdesk.api.schemas import (
    AccountOut,
    AddInstanceIn,
    AuditOut,
    BarOut,
    CancelAllIn,
    ClosePositionIn,
    CommandResultOut,
    ContractOut,
    DayStatsOut,
    EventOut,
    EventPage,
    FillOut,
    FlattenIn,
    InstanceOut,
    ModifyOrderIn,
    OrderIn,
    OrderOut,
    OrderPage,
    ParamsPatchIn,
    ParamVersionOut,
    PositionOut,
    RollbackIn,
    RoundTripOut,
    RuleOut,
    StopInstanceIn,
    StrategyOut,
    StrategyStatsOut,
    TicketOut,
    TradingStateIn,
)
from propdesk.api.topics import DEFAULT_TOPICS, event_out, patterns_for
from propdesk.api.verdicts import problem_for
from propdesk.core.bus import topic_matches
from propdesk.core.errors import PropdeskError
from propdesk.model.commands import (
    AddStrategy,
    CancelAllOrders,
    CancelOrder,
    ClosePosition,
    Command,
    CommandResult,
    FlattenAccount,
    ModifyOrder,
    PauseStrategy,
    RemoveStrategy,
    SetTradingState,
    StartStrategy,
    StopStrategy,
    SubmitOrder,
    UpdateStrategyParams,
)
from propdesk.model.enums import Side
from propdesk.model.identifiers import ClientOrderId
from propdesk.model.orders import OrderType
from propdesk.model.price import Price
from propdesk.model.symbology import spec_for_symbol
from propdesk.node.desk_views import flat_orders
from propdesk.node.service import DeskService
from propdesk.node.stream import EventStream, StreamEvent
from propdesk.storage.instances import param_history
from propdesk.storage.repositories import Repository
from propdesk.strategies.registry import available_strategies

__all__ = [
    "PROBLEM_RESPONSES",
    "ApiContext",
    "api_context",
    "build_router",
    "execute",
    "idempotency_key",
    "submit_order",
]

PROBLEM_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}} for status in (401, 403, 404, 422, 429)
}
_COMMAND_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    **PROBLEM_RESPONSES,
    409: {"model": Problem, "description": "RISK_DENIED, TRADING_STATE_HALTED or IDEMPOTENCY_CONFLICT"},
    412: {"model": Problem, "description": "VERSION_CONFLICT"},
}
_CONTEXT_ATTR: Final = "propdesk_api"
_ORDER_TYPES: Final = {"MARKET": OrderType.MARKET, "LIMIT": OrderType.LIMIT, "STOP": OrderType.STOP}
_MAX_PAGE: Final = 1000
_MAX_INT: Final = 2**63 - 1  # a database BIGINT: larger numbers are refused (422), never sent to the database


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the routes work on: the service, the event stream (``None``: no live events), the journal's database
    (``None``: no event catch-up, no parameter history) and the WebSocket's heartbeat interval (s)."""

    service: DeskService
    stream: EventStream | None
    engine: AsyncEngine | None
    heartbeat_s: float = 15.0


def api_context(request: HTTPConnection) -> ApiContext:
    """The app's :class:`ApiContext` (a FastAPI dependency).

    Raises:
        RuntimeError: the app was not built by :func:`propdesk.api.app.create_app`.
    """
    ctx = getattr(request.app.state, _CONTEXT_ATTR, None)
    if not isinstance(ctx, ApiContext):
        raise RuntimeError("the app has no propdesk ApiContext (build it with propdesk.api.app.create_app)")
    return ctx


Ctx = Annotated[ApiContext, Depends(api_context)]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Trader = Annotated[Principal, Depends(require(Scope.TRADE))]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="the command's idempotency key: a retry with the same key and body gets the first verdict",
    ),
]
AccountQ = Annotated[int | None, Query(ge=0, le=_MAX_INT, description="one account (all when absent)")]
AccountP = Annotated[int, Path(ge=0, le=_MAX_INT, description="the account id")]


# ------------------------------------------------------------------------------------------------ helpers


def idempotency_key(header: str | None) -> str:
    """The command's key: the header's value, or a new random one (the command is then not retry-safe)."""
    return header.strip() if header and header.strip() else f"api-{uuid.uuid4().hex}"


def execute(ctx: ApiContext, command: Command) -> CommandResultOut:
    """Execute ``command`` on the service: the verdict when accepted.

    Raises:
        ApiProblem: the denial (:func:`propdesk.api.verdicts.problem_for`).
    """
    result: CommandResult = ctx.service.execute(command)
    if not result.accepted:
        raise problem_for(result)
    return CommandResultOut.of(result)


def _account(ctx: ApiContext, account_id: int | None) -> int | None:
    if account_id is not None and account_id not in ctx.service.account_ids:
        known = ", ".join(str(a) for a in ctx.service.account_ids)
        raise ApiProblem.of(ProblemCode.NOT_FOUND, f"no account {account_id} (accounts: {known})")
    return account_id


def _accounts(ctx: ApiContext, account_id: int | None) -> tuple[int, ...]:
    _account(ctx, account_id)
    return ctx.service.account_ids if account_id is None else (account_id,)


def _price(text: str | None, what: str) -> Price | None:
    if text is None:
        return None
    try:
        return Price.of(text)
    except (ValueError, ArithmeticError, PropdeskError) as exc:
        raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, f"{what}: {exc}") from exc


def _tick(symbol: str) -> Price | None:
    try:
        return spec_for_symbol(symbol).tick_size
    except (PropdeskError, ValueError, KeyError):
        return None


def submit_order(body: OrderIn, key: str, *, dry_run: bool) -> SubmitOrder:
    """The :class:`SubmitOrder` of ``body`` with idempotency key ``key``.

    Raises:
        ApiProblem: ``VALIDATION_FAILED``: a price the order type needs is missing, or one it does not take is given.
    """
    otype = _ORDER_TYPES[body.type]
    if otype is OrderType.LIMIT and body.limit_price is None:
        raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, "a LIMIT order needs limit_price")
    if otype is OrderType.STOP and body.stop_price is None:
        raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, "a STOP order needs stop_price")
    if otype is OrderType.MARKET and (body.limit_price is not None or body.stop_price is not None):
        raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, "a MARKET order takes no limit_price or stop_price")
    return SubmitOrder(
        idempotency_key=key,
        account_id=body.account_id,
        symbol=body.symbol,
        side=Side.BUY if body.side == "BUY" else Side.SELL,
        qty=body.qty,
        order_type=otype,
        limit_price=_price(body.limit_price, "limit_price") if otype is OrderType.LIMIT else None,
        stop_price=_price(body.stop_price, "stop_price") if otype is OrderType.STOP else None,
        tag=body.tag,
        stop_loss_ticks=body.stop_loss_ticks,
        take_profit_ticks=body.take_profit_ticks,
        dry_run=dry_run,
    )


def _order_owner(ctx: ApiContext, client_order_id: str) -> int:
    for aid in ctx.service.account_ids:
        if ctx.service.desk(aid).order(ClientOrderId(client_order_id)) is not None:
            return aid
    raise ApiProblem.of(ProblemCode.NOT_FOUND, f"no order {client_order_id!r}")


def _encode_cursor(account_id: int, client_order_id: str) -> str:
    return base64.urlsafe_b64encode(f"{account_id}:{client_order_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        aid, coid = text.split(":", 1)
        return int(aid), coid
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, "cursor: not a cursor this API returned") from exc


def _if_match(header: str | None) -> int:
    if header is None:
        raise ApiProblem.of(
            ProblemCode.VALIDATION_FAILED, "If-Match is required: the parameter version the change was made from"
        )
    text = header.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 9:
        raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, f"If-Match: {header!r} is not a parameter version")
    return int(text)


def _instance(ctx: ApiContext, name: str) -> InstanceOut:
    for i in ctx.service.instances():
        if i.name == name:
            return InstanceOut.of(i)
    raise ApiProblem.of(ProblemCode.NOT_FOUND, f"no strategy instance {name!r}")


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


# ------------------------------------------------------------------------------------------------ the router


def build_router() -> APIRouter:
    """The ``/api/v1`` routes (module docstring)."""
    r = APIRouter(responses=PROBLEM_RESPONSES)

    # --- accounts and risk ------------------------------------------------------------------------------------

    @r.get("/accounts", tags=["accounts"])
    async def list_accounts(ctx: Ctx, _: Reader) -> list[AccountOut]:
        """Every account with its prop-firm figures (MLL floor and distance, daily loss left, consistency share,
        trading state, lockouts)."""
        return [AccountOut.of(a) for a in ctx.service.accounts()]

    @r.get("/accounts/{account_id}", tags=["accounts"])
    async def get_account(ctx: Ctx, _: Reader, account_id: AccountP) -> AccountOut:
        """One account."""
        _account(ctx, account_id)
        return AccountOut.of(ctx.service.accounts(account_id)[0])

    @r.get("/accounts/{account_id}/risk", tags=["accounts"])
    async def get_risk(ctx: Ctx, _: Reader, account_id: AccountP) -> list[RuleOut]:
        """Every risk rule of the account: value, limit, headroom, state and the gate's last decision."""
        _account(ctx, account_id)
        return [RuleOut.of(s) for s in ctx.service.risk_status(account_id).get(account_id, [])]

    @r.put("/accounts/{account_id}/trading-state", status_code=202, responses=_COMMAND_RESPONSES, tags=["accounts"])
    async def set_trading_state(
        ctx: Ctx, who: Trader, account_id: AccountP, body: TradingStateIn, key: IdemKey = None
    ) -> CommandResultOut:
        """Put the account in ACTIVE, REDUCING or HALTED: towards more restrictive with ``trade``; lifting the desk's
        own restriction needs ``admin`` (a rule's lockout stays)."""
        _account(ctx, account_id)
        cmd = SetTradingState(
            idempotency_key=idempotency_key(key),
            account_id=account_id,
            state=body.state,
            reason=body.reason or f"api key {who.key.key_id}",
            admin=who.key.has(Scope.ADMIN),
        )
        return execute(ctx, cmd)

    @r.post("/accounts/{account_id}/flatten", status_code=202, responses=_COMMAND_RESPONSES, tags=["accounts"])
    async def flatten(
        ctx: Ctx, _: Trader, account_id: AccountP, key: IdemKey = None, body: FlattenIn | None = None
    ) -> CommandResultOut:
        """Cancel every working order and close every position of the account at market (``Idempotency-Key``
        required: a retried flatten must not flatten twice)."""
        _account(ctx, account_id)
        if key is None or not key.strip():
            raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, "flatten needs an Idempotency-Key header")
        cmd = FlattenAccount(idempotency_key=key.strip(), account_id=account_id, reason=body.reason if body else "")
        return execute(ctx, cmd)

    # --- positions ----------------------------------------------------------------------------------------

    @r.get("/positions", tags=["positions"])
    async def list_positions(ctx: Ctx, _: Reader, account_id: AccountQ = None) -> list[PositionOut]:
        """Open positions (account level), by account then contract."""
        _account(ctx, account_id)
        return [PositionOut.of(p) for p in ctx.service.positions(account_id)]

    @r.post(
        "/accounts/{account_id}/positions/{symbol}/close",
        status_code=202,
        responses=_COMMAND_RESPONSES,
        tags=["positions"],
    )
    async def close_position(
        ctx: Ctx,
        _: Trader,
        account_id: AccountP,
        symbol: Annotated[str, Path(pattern=r"^[A-Z0-9]{2,16}$")],
        key: IdemKey = None,
        body: ClosePositionIn | None = None,
    ) -> CommandResultOut:
        """Close the position at market: ``qty`` contracts of it, or all."""
        _account(ctx, account_id)
        cmd = ClosePosition(
            idempotency_key=idempotency_key(key),
            account_id=account_id,
            symbol=symbol,
            qty=body.qty if body else None,
            reason=body.reason if body else "",
        )
        return execute(ctx, cmd)

    # --- orders ------------------------------------------------------------------------------------------

    @r.get("/orders", tags=["orders"])
    async def list_orders(
        *,
        ctx: Ctx,
        _: Reader,
        account_id: AccountQ = None,
        symbol: Annotated[str | None, Query(max_length=16)] = None,
        tag: Annotated[str | None, Query(max_length=64)] = None,
        side: Annotated[str | None, Query(pattern="^(BUY|SELL)$")] = None,
        limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> OrderPage:
        """Working orders (bracket children listed after their entry, with ``parent_id``), filtered, one page at a
        time: pass ``next_cursor`` back as ``cursor``."""
        rows: list[OrderOut] = []
        for aid in _accounts(ctx, account_id):
            rows.extend(
                OrderOut.of(aid, o, _tick(o.symbol)) for o in flat_orders(ctx.service.desk(aid).working_orders())
            )
        rows = [
            o
            for o in rows
            if (symbol is None or o.symbol == symbol) and (tag is None or o.tag == tag) and (side in (None, o.side))
        ]
        rows.sort(key=lambda o: (ctx.service.account_ids.index(o.account_id), o.client_order_id))
        if cursor is not None:
            after_aid, after_id = _decode_cursor(cursor)
            pos = ctx.service.account_ids.index(after_aid) if after_aid in ctx.service.account_ids else -1
            rows = [
                o for o in rows if (ctx.service.account_ids.index(o.account_id), o.client_order_id) > (pos, after_id)
            ]
        page = rows[:limit]
        more = len(rows) > limit
        nxt = _encode_cursor(page[-1].account_id, page[-1].client_order_id) if more and page else None
        return OrderPage(items=page, next_cursor=nxt)

    @r.post("/orders", status_code=202, responses=_COMMAND_RESPONSES, tags=["orders"])
    async def place_order(
        ctx: Ctx,
        _: Trader,
        body: OrderIn,
        response: Response,
        key: IdemKey = None,
        dry_run: Annotated[bool, Query(description="check only: the gate's verdict and the USD at risk")] = False,
    ) -> CommandResultOut:
        """Place a market, limit or stop order, with a bracket in ticks and a strategy tag. ``?dry_run=true``
        answers 200 with the verdict (accepted or not) and the USD at risk to the stop; nothing is sent."""
        _account(ctx, body.account_id)
        cmd = submit_order(body, idempotency_key(key), dry_run=dry_run)
        if dry_run:
            response.status_code = 200
            return CommandResultOut.of(ctx.service.dry_run(cmd))
        return execute(ctx, cmd)

    @r.patch("/orders/{client_order_id}", status_code=202, responses=_COMMAND_RESPONSES, tags=["orders"])
    async def modify_order(
        ctx: Ctx,
        _: Trader,
        client_order_id: Annotated[str, Path(max_length=64)],
        body: ModifyOrderIn,
        key: IdemKey = None,
    ) -> CommandResultOut:
        """Change a working order's quantity or prices."""
        aid = _order_owner(ctx, client_order_id)
        cmd = ModifyOrder(
            idempotency_key=idempotency_key(key),
            account_id=aid,
            client_order_id=ClientOrderId(client_order_id),
            qty=body.qty,
            limit_price=_price(body.limit_price, "limit_price"),
            stop_price=_price(body.stop_price, "stop_price"),
        )
        return execute(ctx, cmd)

    @r.delete("/orders/{client_order_id}", status_code=202, responses=_COMMAND_RESPONSES, tags=["orders"])
    async def cancel_order(
        ctx: Ctx, _: Trader, client_order_id: Annotated[str, Path(max_length=64)], key: IdemKey = None
    ) -> CommandResultOut:
        """Cancel a working order."""
        aid = _order_owner(ctx, client_order_id)
        cmd = CancelOrder(
            idempotency_key=idempotency_key(key), account_id=aid, client_order_id=ClientOrderId(client_order_id)
        )
        return execute(ctx, cmd)

    @r.post("/orders/cancel-all", status_code=202, responses=_COMMAND_RESPONSES, tags=["orders"])
    async def cancel_all(ctx: Ctx, _: Trader, body: CancelAllIn, key: IdemKey = None) -> CommandResultOut:
        """Cancel every working order of the account (or of one contract)."""
        _account(ctx, body.account_id)
        cmd = CancelAllOrders(idempotency_key=idempotency_key(key), account_id=body.account_id, symbol=body.symbol)
        return execute(ctx, cmd)

    # --- fills and statistics ------------------------------------------------------------------------------

    @r.get("/fills", tags=["history"])
    async def list_fills(
        ctx: Ctx, _: Reader, account_id: AccountQ = None, after_ts_ns: Annotated[int, Query(ge=0, le=_MAX_INT)] = 0
    ) -> list[FillOut]:
        """Fills since the desk started (after ``after_ts_ns``), by account then time."""
        _account(ctx, account_id)
        return [FillOut.of(f, _tick(f.symbol)) for f in ctx.service.fills(account_id) if f.ts_event_ns > after_ts_ns]

    @r.get("/round-trips", tags=["history"])
    async def list_round_trips(ctx: Ctx, _: Reader, account_id: AccountQ = None) -> list[RoundTripOut]:
        """Closed round trips (flat to flat, per strategy tag and contract), oldest first per account."""
        return [
            RoundTripOut.of(aid, t) for aid in _accounts(ctx, account_id) for t in ctx.service.desk(aid).round_trips()
        ]

    @r.get("/stats/daily", tags=["history"])
    async def daily_stats(ctx: Ctx, _: Reader, account_id: AccountQ = None) -> list[DayStatsOut]:
        """Closed trading days and today so far, per account."""
        return [
            DayStatsOut.of(aid, d) for aid in _accounts(ctx, account_id) for d in ctx.service.desk(aid).daily_stats()
        ]

    @r.get("/stats/strategies", tags=["history"])
    async def strategy_stats(ctx: Ctx, _: Reader, account_id: AccountQ = None) -> list[StrategyStatsOut]:
        """Per account and strategy tag: PnL, fees, open positions and fills."""
        _account(ctx, account_id)
        return [
            StrategyStatsOut.of(aid, s)
            for aid, by_tag in ctx.service.strategy_stats(account_id).items()
            for s in by_tag.values()
        ]

    @r.get("/audit", tags=["history"])
    async def audit(
        ctx: Ctx,
        _: Reader,
        account_id: AccountQ = None,
        point: Annotated[str | None, Query(max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 100,
    ) -> list[AuditOut]:
        """The risk engine's latest audit entries (``point``: pre, fill, quote, clock, condition ...)."""
        return [
            AuditOut.of(e)
            for aid in _accounts(ctx, account_id)
            for e in ctx.service.desk(aid).audit(point=point, limit=limit)
        ]

    # --- market data -----------------------------------------------------------------------------------------

    @r.get("/contracts", tags=["market"])
    async def contracts(ctx: Ctx, _: Reader, account_id: AccountQ = None) -> list[ContractOut]:
        """The contracts the accounts trade or hold."""
        seen: dict[str, ContractOut] = {}
        for aid in _accounts(ctx, account_id):
            for c in ctx.service.desk(aid).contracts():
                seen.setdefault(str(c.root), ContractOut.of(c))
        return list(seen.values())

    @r.get("/bars", tags=["market"])
    async def bars(
        *,
        ctx: Ctx,
        _: Reader,
        symbol: Annotated[str, Query(pattern=r"^[A-Z0-9]{2,16}$")],
        start_ns: Annotated[int, Query(ge=0, le=_MAX_INT)],
        end_ns: Annotated[int, Query(ge=0, le=_MAX_INT)],
        timeframe: Annotated[str, Query(max_length=8)] = "1m",
        limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
        account_id: AccountQ = None,
    ) -> list[BarOut]:
        """Bars opening in ``[start_ns, end_ns)`` (UTC ns) from the journal's bar cache, oldest first."""
        aid = _accounts(ctx, account_id)[0]
        try:
            found = await ctx.service.desk(aid).bars(symbol, timeframe, start_ns, end_ns, limit)
        except ValueError as exc:
            raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, str(exc)) from exc
        except PropdeskError as exc:
            raise ApiProblem.of(ProblemCode.NOT_FOUND, str(exc)) from exc
        return [BarOut.of(b) for b in found]

    # --- strategies and instances --------------------------------------------------------------------------

    @r.get("/strategies", tags=["strategies"])
    async def strategies(_: Reader) -> list[StrategyOut]:
        """The strategy classes that can be instantiated, with their parameters' JSON Schema."""
        out = []
        for info in available_strategies(broken=[]):
            try:
                schema = info.cls.config_cls.model_json_schema()
            except Exception:  # a third-party config whose schema cannot be generated
                schema = {}
            out.append(
                StrategyOut(
                    spec=info.spec,
                    source=info.source,
                    origin=info.origin,
                    description=info.description,
                    params_schema=schema,
                )
            )
        return out

    @r.get("/instances", tags=["strategies"])
    async def list_instances(ctx: Ctx, _: Reader) -> list[InstanceOut]:
        """Every strategy instance, by account then name (those a session put on its node without the service's
        instance book are listed from the desks)."""
        out = [InstanceOut.of(i) for i in ctx.service.instances()]
        named = {i.name for i in out}
        for aid in ctx.service.account_ids:
            out.extend(InstanceOut.of_desk(aid, v) for v in ctx.service.desk(aid).strategies() if v.tag not in named)
        return out

    @r.post("/instances", status_code=202, responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def add_instance(ctx: Ctx, who: Trader, body: AddInstanceIn, key: IdemKey = None) -> CommandResultOut:
        """Add a named strategy instance on an account and contract, in the given state."""
        _account(ctx, body.account_id)
        cmd = AddStrategy(
            idempotency_key=idempotency_key(key),
            account_id=body.account_id,
            name=body.name,
            strategy=body.strategy,
            symbol=body.symbol,
            params=tuple(sorted(body.params.items())),
            state=body.state,
            changed_by=who.key.key_id,
            source="api",
            reason=body.reason,
        )
        return execute(ctx, cmd)

    @r.get("/instances/{name}", tags=["strategies"])
    async def get_instance(ctx: Ctx, _: Reader, name: str, response: Response) -> InstanceOut:
        """One instance; ``ETag`` is its parameter version (give it as ``If-Match`` to change parameters)."""
        inst = _instance(ctx, name)
        _etag(response, inst.version)
        return inst

    @r.delete("/instances/{name}", status_code=202, responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def remove_instance(ctx: Ctx, who: Trader, name: str, key: IdemKey = None) -> CommandResultOut:
        """Remove a stopped instance (its history stays in the journal)."""
        cmd = RemoveStrategy(idempotency_key=idempotency_key(key), name=name, changed_by=who.key.key_id, source="api")
        return execute(ctx, cmd)

    @r.post("/instances/{name}/start", status_code=202, responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def start_instance(ctx: Ctx, _: Trader, name: str, key: IdemKey = None) -> CommandResultOut:
        """Run the instance (a stopped one starts again)."""
        return execute(ctx, StartStrategy(idempotency_key=idempotency_key(key), strategy=name))

    @r.post("/instances/{name}/resume", status_code=202, responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def resume_instance(ctx: Ctx, _: Trader, name: str, key: IdemKey = None) -> CommandResultOut:
        """Resume a paused instance's entries."""
        return execute(ctx, StartStrategy(idempotency_key=idempotency_key(key), strategy=name))

    @r.post("/instances/{name}/pause", status_code=202, responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def pause_instance(ctx: Ctx, _: Trader, name: str, key: IdemKey = None) -> CommandResultOut:
        """Stop the instance's entries; it keeps managing its exits."""
        return execute(ctx, PauseStrategy(idempotency_key=idempotency_key(key), strategy=name))

    @r.post("/instances/{name}/stop", status_code=202, responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def stop_instance(
        ctx: Ctx, _: Trader, name: str, key: IdemKey = None, body: StopInstanceIn | None = None
    ) -> CommandResultOut:
        """Stop the instance; ``mode`` leaves, cancels or flattens what it holds."""
        mode = body.mode if body else StopInstanceIn().mode
        return execute(ctx, StopStrategy(idempotency_key=idempotency_key(key), strategy=name, mode=mode))

    @r.patch("/instances/{name}/params", responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def patch_params(
        *,
        ctx: Ctx,
        who: Trader,
        name: str,
        body: ParamsPatchIn,
        response: Response,
        if_match: Annotated[str | None, Header(alias="If-Match", max_length=32)] = None,
        key: IdemKey = None,
    ) -> InstanceOut:
        """Change parameters; ``If-Match`` must name the current version (else 412 ``VERSION_CONFLICT``). Answers
        the instance with its new version (also the ``ETag``)."""
        version = _if_match(if_match)
        _instance(ctx, name)
        cmd = UpdateStrategyParams(
            idempotency_key=idempotency_key(key),
            strategy=name,
            params=tuple(sorted(body.params.items())),
            expected_version=version,
            changed_by=who.key.key_id,
            source="api",
            reason=body.reason,
        )
        execute(ctx, cmd)
        inst = _instance(ctx, name)
        _etag(response, inst.version)
        return inst

    @r.post("/instances/{name}/rollback", responses=_COMMAND_RESPONSES, tags=["strategies"])
    async def rollback(
        *,
        ctx: Ctx,
        who: Trader,
        name: str,
        body: RollbackIn,
        response: Response,
        if_match: Annotated[str | None, Header(alias="If-Match", max_length=32)] = None,
        key: IdemKey = None,
    ) -> InstanceOut:
        """Change the parameters back to those of a stored ``version`` (a new version; ``If-Match``: the current
        one). Only the fields that differ change, so the same live-change rules apply as for ``PATCH params``."""
        current = _if_match(if_match)
        inst = _instance(ctx, name)
        if ctx.engine is None:
            raise ApiProblem.of(ProblemCode.NOT_FOUND, "the desk runs without a journal: no stored versions")
        stored = {v.version: v for v in await param_history(ctx.engine, name)}
        target = stored.get(body.version)
        if target is None:
            raise ApiProblem.of(ProblemCode.NOT_FOUND, f"instance {name} has no stored version {body.version}")
        changed = {k: v for k, v in target.params.items() if inst.params.get(k) != v}
        if changed:
            cmd = UpdateStrategyParams(
                idempotency_key=idempotency_key(key),
                strategy=name,
                params=tuple(sorted(changed.items())),
                expected_version=current,
                changed_by=who.key.key_id,
                source="api",
                reason=body.reason or f"rollback to version {body.version}",
            )
            execute(ctx, cmd)
        inst = _instance(ctx, name)
        _etag(response, inst.version)
        return inst

    @r.get("/instances/{name}/versions", tags=["strategies"])
    async def versions(ctx: Ctx, _: Reader, name: str) -> list[ParamVersionOut]:
        """Every stored parameter version of the instance, oldest first (from the journal)."""
        if ctx.engine is None:
            raise ApiProblem.of(ProblemCode.NOT_FOUND, "the desk runs without a journal: no stored versions")
        found = [ParamVersionOut.of(v) for v in await param_history(ctx.engine, name)]
        if not found:
            _instance(ctx, name)
        return found

    # --- events and tickets -------------------------------------------------------------------------------

    @r.get("/events", tags=["events"])
    async def events(
        ctx: Ctx,
        _: Reader,
        after_seq: Annotated[int, Query(ge=0, le=_MAX_INT)] = 0,
        limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 500,
        topics: Annotated[str | None, Query(max_length=200, description="comma-separated stream names")] = None,
    ) -> EventPage:
        """Journaled events after ``after_seq`` (the REST catch-up of the WebSocket stream), oldest first."""
        if ctx.engine is None or ctx.stream is None:
            raise ApiProblem.of(ProblemCode.NOT_FOUND, "the desk runs without a journal: no event stream")
        try:
            patterns = patterns_for(t.strip() for t in topics.split(",")) if topics else patterns_for(DEFAULT_TOPICS)
        except ValueError as exc:
            raise ApiProblem.of(ProblemCode.VALIDATION_FAILED, str(exc)) from exc
        head = ctx.stream.head_seq
        rows = await Repository(ctx.engine).events_after(after_seq, limit, upto_seq=head)
        items: list[EventOut] = []
        for row in rows:
            if any(topic_matches(p, row["topic"]) for p in patterns):
                ev = StreamEvent(
                    int(row["seq"]), row["topic"], int(row["account_id"]), int(row["ts_ns"]), None, row["payload"]
                )
                items.append(event_out(ev))
        nxt = int(rows[-1]["seq"]) if rows else after_seq
        return EventPage(items=items, seq_head=head, next_after_seq=nxt)

    @r.post("/auth/ws-ticket", tags=["auth"])
    async def ws_ticket(
        request: Request, who: Annotated[Principal, Depends(require(Scope.READ, safe=True))]
    ) -> TicketOut:
        """A single-use ticket for the WebSocket hello (the key never goes in a URL); ``read`` scope suffices."""
        authenticator = authenticator_of(request.app)
        return TicketOut(ticket=authenticator.issue_ticket(who), ttl_s=authenticator.tickets.ttl_s)

    return r
