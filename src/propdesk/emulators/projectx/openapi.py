"""The gateway's OpenAPI document (served at ``/openapi.json``): every REST endpoint with its request and reply.

The REST layer (:mod:`propdesk.emulators.projectx.app`) reads bodies itself (ASP.NET's tolerant binding, the spec's
400 ProblemDetails), so FastAPI cannot derive the document from its routes. Here each endpoint gets a pydantic
request model and reply model (``../shared/specs/projectx-gateway-api.md`` sections 2, 3.1-3.3, 6), and FastAPI's own
generator (:func:`fastapi.openapi.utils.get_openapi`) builds the document from documentation-only routes over them.
Integers carry the .NET ranges the gateway enforces (``int`` = Int32, ids Int64); decimals are JSON numbers (the
gateway parses them exactly). Replies allow extra keys, as the spec's clients must (section 6).

:data:`REPLIES` maps each endpoint (lower-case path, as :data:`~propdesk.emulators.projectx.app.ENDPOINTS`) to its
reply model, so tests can validate what the gateway sends against what the document promises.
"""

# ruff: noqa: N815 - the models' fields are the wire's camelCase names (spec sections 3.1-3.3)
from __future__ import annotations

import inspect
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------------------------------------------- requests


class LoginKeyRequest(_Body):
    """``Auth/loginKey``."""

    userName: str
    apiKey: str


class AccountSearchRequest(_Body):
    """``Account/search`` (``onlyActiveAccounts`` false when omitted)."""

    onlyActiveAccounts: bool = False


class ContractSearchRequest(_Body):
    """``Contract/search``: at most 20 active contracts whose root, symbol or description contains ``searchText``."""

    searchText: str
    live: bool = False


class ContractByIdRequest(_Body):
    """``Contract/searchById``."""

    contractId: str


class ContractAvailableRequest(_Body):
    """``Contract/available``."""

    live: bool = False


class BarsRequest(_Body):
    """``History/retrieveBars`` (unit 1 Second .. 6 Month; a bar spans at most 100 years; ``limit`` <= 20,000)."""

    contractId: str
    live: bool = False
    startTime: datetime
    endTime: datetime
    unit: Int32
    unitNumber: Int32
    limit: Int32
    includePartialBar: bool = False


class Bracket(_Body):
    """A bracket object of ``Order/place`` (Auto OCO Brackets accounts): a distance in ticks and an OrderType."""

    ticks: Int32
    type: Int32


class PlaceRequest(_Body):
    """``Order/place`` (spec 3.3): prices positive and on the contract's tick; ``size`` 1..the gateway's cap."""

    accountId: Int32
    contractId: str
    type: Int32
    side: Int32
    size: Int32
    limitPrice: float | None = None
    stopPrice: float | None = None
    trailPrice: float | None = None
    customTag: str | None = None
    linkedOrderId: Int64 | None = None
    stopLossBracket: Bracket | None = None
    takeProfitBracket: Bracket | None = None


class ModifyRequest(_Body):
    """``Order/modify``: omitted fields stay."""

    accountId: Int32
    orderId: Int64
    size: Int32 | None = None
    limitPrice: float | None = None
    stopPrice: float | None = None
    trailPrice: float | None = None


class OrderRef(_Body):
    """``Order/cancel`` and ``Order/searchById``."""

    accountId: Int32
    orderId: Int64


class AccountRef(_Body):
    """``Order/searchOpen`` and ``Position/searchOpen``."""

    accountId: Int32


class OrderSearchRequest(_Body):
    """``Order/search``."""

    accountId: Int32
    startTimestamp: datetime
    endTimestamp: datetime | None = None


class OrderQueryFilter(_Body):
    """The ``filter`` of ``Order/v2/query`` (statuses 0..8)."""

    accountId: Int32
    statuses: list[int] | None = None
    contractId: str | None = None
    createdAfter: datetime | None = None
    createdBefore: datetime | None = None


class OrderQueryRequest(_Body):
    """``Order/v2/query`` (``pageSize`` 1..1000, ``sortBy`` 0 CreatedAt / 1 Id, ``sortDirection`` 0 Asc / 1 Desc)."""

    filter: OrderQueryFilter
    pageSize: int | None = Field(default=None, ge=1, le=1000)
    pageOffset: int | None = Field(default=None, ge=0, le=2**31 - 1)
    sortBy: int | None = Field(default=None, ge=0, le=1)
    sortDirection: int | None = Field(default=None, ge=0, le=1)
    includeTotalCount: bool | None = None


class CloseRequest(_Body):
    """``Position/closeContract``."""

    accountId: Int32
    contractId: str


class PartialCloseRequest(_Body):
    """``Position/partialCloseContract``."""

    accountId: Int32
    contractId: str
    size: Int32


class TradeSearchRequest(_Body):
    """``Trade/search`` (``startTimestamp`` defaults to the account's creation)."""

    accountId: Int32
    startTimestamp: datetime | None = None
    endTimestamp: datetime | None = None
    contractId: str | None = None


# ------------------------------------------------------------------------------------------------------- models


class Account(_Body):
    """The Account model (spec 3.2)."""

    id: int
    name: str
    balance: float
    canTrade: bool
    isVisible: bool
    simulated: bool


class Contract(_Body):
    """The Contract model."""

    id: str
    name: str
    description: str
    tickSize: float
    tickValue: float
    activeContract: bool
    symbolId: str


class Bar(_Body):
    """A bar: ``t`` its start (UTC), prices, volume (contracts)."""

    t: datetime
    o: float
    h: float
    l: float  # noqa: E741 - the wire's name
    c: float
    v: int


class Order(_Body):
    """The Order model."""

    id: int
    accountId: int
    contractId: str
    symbolId: str
    creationTimestamp: datetime
    updateTimestamp: datetime
    status: int
    type: int
    side: int
    size: int
    limitPrice: float | None
    stopPrice: float | None
    fillVolume: int
    filledPrice: float | None
    customTag: str | None


class Position(_Body):
    """The Position model (``size`` 0 only in hub events, once closed)."""

    id: int
    accountId: int
    contractId: str
    creationTimestamp: datetime
    type: int
    size: int
    averagePrice: float


class Trade(_Body):
    """The Trade model (one fill, a half-turn; ``profitAndLoss`` null on an opening fill)."""

    id: int
    accountId: int
    contractId: str
    creationTimestamp: datetime
    price: float
    profitAndLoss: float | None
    fees: float
    side: int
    size: int
    voided: bool
    orderId: int


# ------------------------------------------------------------------------------------------------------- replies


class Envelope(_Body):
    """What every REST reply carries (business failures are HTTP 200 with ``success`` false and the endpoint's code)."""

    success: bool
    errorCode: int
    errorMessage: str | None


class TokenReply(Envelope):
    """``Auth/loginKey``."""

    token: str | None


class ValidateReply(Envelope):
    """``Auth/validate``."""

    newToken: str | None


class AccountsReply(Envelope):
    """``Account/search``."""

    accounts: list[Account]


class ContractsReply(Envelope):
    """``Contract/search`` and ``Contract/available``."""

    contracts: list[Contract]


class ContractReply(Envelope):
    """``Contract/searchById`` (``contract``, ``contracts`` or both, per ``contract_by_id_shape``)."""

    contract: Contract | None = None
    contracts: list[Contract] | None = None


class BarsReply(Envelope):
    """``History/retrieveBars``: newest first."""

    bars: list[Bar]


class OrderIdReply(Envelope):
    """``Order/place``, ``Position/closeContract``, ``Position/partialCloseContract``."""

    orderId: int | None


class OrdersReply(Envelope):
    """``Order/search`` and ``Order/searchOpen``."""

    orders: list[Order]


class OrderReply(Envelope):
    """``Order/searchById``."""

    order: Order | None


class OrderQueryReply(Envelope):
    """``Order/v2/query``."""

    orders: list[Order]
    totalCount: int


class PositionsReply(Envelope):
    """``Position/searchOpen``."""

    positions: list[Position]


class TradesReply(Envelope):
    """``Trade/search``."""

    trades: list[Trade]


class ProblemDetails(_Body):
    """HTTP 400 (RFC 7807, ASP.NET's validation shape): ``errors`` maps each bad field (``$`` = the body) to why."""

    type: str
    title: str
    status: int
    errors: dict[str, list[str]]
    traceId: str


# (path as written in the spec, request model or None, reply model, needs a token)
_ENDPOINTS: Final[list[tuple[str, type[BaseModel] | None, type[Envelope], bool]]] = [
    ("Auth/loginKey", LoginKeyRequest, TokenReply, False),
    ("Auth/validate", None, ValidateReply, True),
    ("Auth/logout", None, Envelope, True),
    ("Account/search", AccountSearchRequest, AccountsReply, True),
    ("Contract/search", ContractSearchRequest, ContractsReply, True),
    ("Contract/searchById", ContractByIdRequest, ContractReply, True),
    ("Contract/available", ContractAvailableRequest, ContractsReply, True),
    ("History/retrieveBars", BarsRequest, BarsReply, True),
    ("Order/place", PlaceRequest, OrderIdReply, True),
    ("Order/modify", ModifyRequest, Envelope, True),
    ("Order/cancel", OrderRef, Envelope, True),
    ("Order/search", OrderSearchRequest, OrdersReply, True),
    ("Order/searchOpen", AccountRef, OrdersReply, True),
    ("Order/searchById", OrderRef, OrderReply, True),
    ("Order/v2/query", OrderQueryRequest, OrderQueryReply, True),
    ("Position/searchOpen", AccountRef, PositionsReply, True),
    ("Position/closeContract", CloseRequest, OrderIdReply, True),
    ("Position/partialCloseContract", PartialCloseRequest, OrderIdReply, True),
    ("Trade/search", TradeSearchRequest, TradesReply, True),
]
REPLIES: Final[dict[str, type[Envelope]]] = {path.lower(): reply for path, _, reply, _ in _ENDPOINTS}
"""Lower-case endpoint path -> the model of its HTTP 200 reply."""

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "The body is not a JSON object within the limits, or a field is missing or of the wrong "
          "type or range (ProblemDetails)", "model": ProblemDetails},
    413: {"description": "The body is larger than the gateway's limit"},
    429: {"description": "Rate limited; wait Retry-After seconds"},
}  # fmt: skip


def _doc_route(path: str, request: type[BaseModel] | None, reply: type[Envelope], secured: bool) -> APIRoute:
    """A route that only documents ``POST /api/<path>`` (it is never mounted)."""

    async def endpoint(**_: Any) -> None:
        """Documentation only."""

    params = [] if request is None else [inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=request)]
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    responses = dict(_ERRORS)
    if secured:
        responses[401] = {"description": "Missing, invalid, revoked or expired token"}
    return APIRoute(
        f"/api/{path}",
        endpoint,
        methods=["POST"],
        response_model=reply,
        responses=responses,
        summary=path,
        description=(reply.__doc__ or "").strip(),
        operation_id=path.replace("/", "_"),
        openapi_extra={"security": [{"bearer": []}]} if secured else None,
    )


def _ping_route() -> APIRoute:
    async def ping() -> str:
        """``"pong"`` (no envelope, no token)."""
        return "pong"

    return APIRoute("/api/Status/ping", ping, methods=["GET"], response_model=str, operation_id="Status_ping")


def build_openapi(title: str, version: str) -> dict[str, Any]:
    """The OpenAPI document of the REST API (module docstring)."""
    routes = [_ping_route(), *(_doc_route(*e) for e in _ENDPOINTS)]
    doc = get_openapi(
        title=title,
        version=version,
        description=(
            "A local ProjectX Gateway API over propdesk's simulated exchange (REST here; SignalR hubs at /hubs/user "
            "and /hubs/market). Every endpoint but Status/ping is POST with a JSON body; business failures are "
            "HTTP 200 with success=false and the endpoint's errorCode."
        ),
        routes=routes,
    )
    for item in doc["paths"].values():  # FastAPI documents its own 422; the gateway answers 400 ProblemDetails
        for operation in item.values():
            operation["responses"].pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        doc.get("components", {}).get("schemas", {}).pop(unused, None)
    doc.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "From Auth/loginKey"}
    }
    return doc
