"""The ProjectX REST client: one method per endpoint, with rate budgets, retries, circuit breakers and token upkeep.

Source: ``../shared/specs/projectx-gateway-api.md`` sections 1.2 (conventions, HTTP statuses), 2 (auth), 3 (endpoints),
8 (pitfalls) and 9 (rate limits). Rules:

* **Rate budget per endpoint class** (:class:`SlidingWindowBudget`): ``general`` (every endpoint but bars, login
  included) 200 / 60 s of which 25 % is reserved for priority calls (``Order/cancel``, ``Position/closeContract``,
  ``Position/partialCloseContract``, and any call made with ``priority=True``, e.g. the searches of a flatten);
  ``history`` 30 / 30 s. A call waits for room instead of failing. A 429 blocks its class for ``Retry-After``
  seconds (60 s when absent).
* **Retries** with exponential backoff and full jitter, only for calls that change nothing (searches, bars, auth);
  after a 401 a non-mutating call refreshes the token and is retried once.
* **Mutating calls** (``Order/place|modify|cancel``, ``Position/closeContract|partialCloseContract``) are sent once.
  When their outcome is unknown (timeout, connection lost, 5xx, 401, 429, unreadable reply) they raise
  :class:`~propdesk.brokers.projectx.errors.UncertainOutcomeError`; the broker resolves it through the order's
  ``customTag`` (pitfall 6).
* **Circuit breaker per endpoint class** (:class:`CircuitBreaker`): after ``failure_threshold`` consecutive transport
  failures (timeouts, connection errors, 5xx) the class is OPEN and routine calls fail fast with
  :class:`~propdesk.brokers.projectx.errors.CircuitOpenError`; after ``reset_timeout_s`` one trial call goes through
  (HALF_OPEN); its success closes the breaker. Priority calls (cancel, close, flatten) are never held back by a
  breaker: losing a flatten costs more than one extra request to a failing API.
* **Business failures** (``success: false``) raise the endpoint's error class (:func:`~propdesk.brokers.projectx.errors.
  api_error`); they are never retried.

Numbers are read as :class:`~decimal.Decimal`; the token is sent as ``Authorization: Bearer`` and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, TypeVar

import httpx
from pydantic import ValidationError

from propdesk.brokers.projectx.auth import TokenManager
from propdesk.brokers.projectx.config import ProjectXSettings, RateBudget
from propdesk.brokers.projectx.errors import (
    CircuitOpenError,
    ContractNotFoundError,
    HttpStatusError,
    ProjectXError,
    RateLimitedError,
    TransportError,
    UnauthorizedError,
    UncertainOutcomeError,
    api_error,
)
from propdesk.brokers.projectx.models import (
    Account,
    AccountSearchResponse,
    BarRow,
    BarsResponse,
    CloseResponse,
    Contract,
    ContractByIdResponse,
    ContractSearchResponse,
    Envelope,
    LoginKeyRequest,
    LoginResponse,
    ModifyOrderRequest,
    OrderByIdResponse,
    OrderQueryRequest,
    OrderRow,
    OrderSearchResponse,
    PlaceOrderRequest,
    PlaceOrderResponse,
    PositionRow,
    PositionSearchResponse,
    RetrieveBarsRequest,
    TradeRow,
    TradeSearchResponse,
    ValidateResponse,
    format_ts,
)

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)

MUTATING: Final[frozenset[str]] = frozenset(
    {"Order/place", "Order/modify", "Order/cancel", "Position/closeContract", "Position/partialCloseContract"}
)
"""Endpoints that change state: sent once, never retried (spec 8, pitfall 6)."""
PRIORITY: Final[frozenset[str]] = frozenset({"Order/cancel", "Position/closeContract", "Position/partialCloseContract"})
"""Endpoints that may use the reserved part of the general budget and pass an open breaker."""
HISTORY_ENDPOINT: Final[str] = "History/retrieveBars"


class EndpointClass(StrEnum):
    """Rate-limit and breaker class of an endpoint (spec 9)."""

    GENERAL = "general"
    HISTORY = "history"


def endpoint_class(endpoint: str) -> EndpointClass:
    """``history`` for ``History/retrieveBars``, ``general`` for everything else (login included)."""
    return EndpointClass.HISTORY if endpoint == HISTORY_ENDPOINT else EndpointClass.GENERAL


# ------------------------------------------------------------------------------------------------ rate budget


class SlidingWindowBudget:
    """At most ``budget.count`` requests in any ``budget.window_s`` seconds; routine requests stop at
    ``budget.routine_limit`` so the rest stays free for priority ones (spec 9: "keep the remainder for
    cancel/flatten").

    Args:
        budget: the limits.
        clock: monotonic seconds.
        sleep: awaited while there is no room.
    """

    def __init__(
        self,
        budget: RateBudget,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
    ) -> None:
        self.budget = budget
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0

    def _prune(self, now: float) -> None:
        edge = now - self.budget.window_s
        sent = self._sent
        while sent and sent[0] <= edge:
            sent.popleft()

    @property
    def used(self) -> int:
        """Requests sent in the current window."""
        self._prune(self._clock())
        return len(self._sent)

    def wait_s(self, *, priority: bool) -> float:
        """Seconds until a request of this kind may go (0 = now)."""
        now = self._clock()
        self._prune(now)
        wait = max(0.0, self._blocked_until - now)
        limit = self.budget.count if priority else self.budget.routine_limit
        n = len(self._sent)
        if n >= limit:
            wait = max(wait, self._sent[n - limit] + self.budget.window_s - now)
        return wait

    def try_acquire(self, *, priority: bool) -> bool:
        """Take a slot now if there is one."""
        if self.wait_s(priority=priority) > 0:
            return False
        self._sent.append(self._clock())
        return True

    async def acquire(self, *, priority: bool) -> None:
        """Wait until a slot is free and take it."""
        while not self.try_acquire(priority=priority):
            await self._sleep(max(self.wait_s(priority=priority), 0.001))

    def block_for(self, seconds: float) -> None:
        """Hold every request of this class for ``seconds`` (after a 429)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


# ------------------------------------------------------------------------------------------------ circuit breaker


class BreakerState(StrEnum):
    """CLOSED: calls flow. OPEN: routine calls fail fast. HALF_OPEN: one trial call decides."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """A breaker's state for dashboards and health checks: ``retry_in_s`` until a trial call (0 unless OPEN)."""

    endpoint_class: str
    state: BreakerState
    consecutive_failures: int
    retry_in_s: float


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures; open -> half-open after ``reset_timeout_s``;
    half-open -> closed on a success, -> open on a failure. ``on_change(status)`` is called on every state change."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerStatus], None] | None = None,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset_s = reset_timeout_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_out = False

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN turns HALF_OPEN once the reset timeout passed)."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._reset_s:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    def status(self) -> BreakerStatus:
        """A snapshot of the breaker."""
        st = self.state
        retry = max(0.0, self._opened_at + self._reset_s - self._clock()) if st is BreakerState.OPEN else 0.0
        return BreakerStatus(self.name, st, self._failures, retry)

    def before_call(self, endpoint: str, *, priority: bool) -> bool:
        """Admit a call; returns True when it is the half-open trial.

        Raises:
            CircuitOpenError: OPEN (or a trial already under way) and the call is not a priority call.
        """
        st = self.state
        if st is BreakerState.CLOSED or priority:
            return False
        if st is BreakerState.HALF_OPEN and not self._trial_out:
            self._trial_out = True
            return True
        retry = max(0.0, self._opened_at + self._reset_s - self._clock())
        raise CircuitOpenError(
            f"circuit breaker '{self.name}' is {st.value} after {self._failures} consecutive failures; "
            f"not sending (trial in {retry:.1f} s)",
            endpoint=endpoint,
            endpoint_class=self.name,
            retry_in_s=retry,
        )

    def on_success(self) -> None:
        """The call reached the API and got an answer."""
        self._failures = 0
        self._trial_out = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def on_failure(self) -> None:
        """The call failed below the API (timeout, connection, 5xx)."""
        self._failures += 1
        self._trial_out = False
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self._threshold
        ):
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)
        elif self._state is BreakerState.OPEN:
            self._opened_at = self._clock()

    def release_trial(self) -> None:
        """The trial call ended without telling anything (e.g. a business error was not a transport failure)."""
        self._trial_out = False

    def _set(self, st: BreakerState) -> None:
        if st is self._state:
            return
        logger.warning("ProjectX circuit breaker '%s': %s -> %s", self.name, self._state.value, st.value)
        self._state = st
        if self._on_change is not None:
            self._on_change(self.status())


# ------------------------------------------------------------------------------------------------ the client


def _retry_after(resp: httpx.Response, default: float) -> float:
    raw = resp.headers.get("Retry-After")
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


class ProjectXRest:
    """The REST client (see the module docstring).

    Args:
        settings: hosts, timeouts, budgets, retries, breakers, credentials.
        transport: an httpx transport (tests pass ``httpx.MockTransport``); default: the network.
        clock: monotonic seconds (budgets, breakers).
        wall: epoch seconds (token expiry).
        sleep: awaited for backoff and budget waits.
        rng: uniform [0, 1) for jitter.
        on_breaker_change: called with a :class:`BreakerStatus` whenever a breaker changes state.
    """

    def __init__(
        self,
        settings: ProjectXSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        on_breaker_change: Callable[[BreakerStatus], None] | None = None,
    ) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.api_base,
            transport=transport,
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self.budgets: dict[EndpointClass, SlidingWindowBudget] = {
            EndpointClass.GENERAL: SlidingWindowBudget(settings.general_budget, clock=clock, sleep=sleep),
            EndpointClass.HISTORY: SlidingWindowBudget(settings.history_budget, clock=clock, sleep=sleep),
        }
        b = settings.breaker
        self.breakers: dict[EndpointClass, CircuitBreaker] = {
            c: CircuitBreaker(
                c.value,
                failure_threshold=b.failure_threshold,
                reset_timeout_s=b.reset_timeout_s,
                clock=clock,
                on_change=on_breaker_change,
            )
            for c in EndpointClass
        }
        self.tokens = TokenManager(
            self.login_key,
            self.validate,
            validate_interval_s=settings.validate_interval_s,
            refresh_before_expiry_s=settings.refresh_before_expiry_s,
            now=wall,
        )
        self.requests_sent = 0

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    def breaker_status(self) -> dict[str, BreakerStatus]:
        """Every breaker's state, by endpoint class."""
        return {c.value: br.status() for c, br in self.breakers.items()}

    def _backoff(self, attempt: int) -> float:
        return self.settings.retry.schedule().delay(attempt, self._rng)

    async def _call(
        self,
        endpoint: str,
        body: dict[str, Any],
        model: type[E],
        *,
        priority: bool = False,
        auth: bool = True,
        token: str | None = None,
    ) -> E:
        """POST ``body`` to ``/api/<endpoint>`` and parse the envelope into ``model`` (see the module docstring).

        Raises:
            ApiError: ``success: false`` (the endpoint's subclass).
            UncertainOutcomeError: a mutating call whose effect is unknown.
            UnauthorizedError, RateLimitedError, HttpStatusError, TransportError: non-mutating calls out of retries.
            CircuitOpenError: the class's breaker is open.
        """
        cls = endpoint_class(endpoint)
        budget = self.budgets[cls]
        breaker = self.breakers[cls]
        mutating = endpoint in MUTATING
        priority = priority or endpoint in PRIORITY
        attempt = 0
        reauthed = False
        retry_cfg = self.settings.retry
        while True:
            breaker.before_call(endpoint, priority=priority)
            await budget.acquire(priority=priority)
            headers: dict[str, str] = {}
            used_token = token
            if auth and used_token is None:
                used_token = await self.tokens.get()
            if used_token is not None:
                headers["Authorization"] = f"Bearer {used_token}"
            failure: ProjectXError
            self.requests_sent += 1
            try:
                resp = await self._client.post(f"/api/{endpoint}", json=body, headers=headers)
            except httpx.HTTPError as exc:
                breaker.on_failure()
                failure = TransportError(f"{type(exc).__name__}: {exc}", endpoint=endpoint)
                if mutating:
                    raise UncertainOutcomeError(
                        f"outcome unknown after {type(exc).__name__}", endpoint=endpoint, cause=failure
                    ) from exc
                if attempt < retry_cfg.max_retries:
                    attempt += 1
                    await self._sleep(self._backoff(attempt))
                    continue
                raise failure from exc
            status = resp.status_code
            if status == 200:
                try:
                    data = resp.json(parse_float=Decimal)
                    parsed = model.model_validate(data)
                except (ValueError, ValidationError) as exc:
                    breaker.on_failure()
                    failure = TransportError(f"unreadable reply: {exc}", endpoint=endpoint)
                    if mutating:
                        raise UncertainOutcomeError(
                            "outcome unknown: unreadable reply", endpoint=endpoint, cause=failure
                        ) from exc
                    if attempt < retry_cfg.max_retries:
                        attempt += 1
                        await self._sleep(self._backoff(attempt))
                        continue
                    raise failure from exc
                breaker.on_success()
                if not parsed.success:
                    raise api_error(
                        endpoint, parsed.error_code, parsed.error_message, order_id=getattr(parsed, "order_id", None)
                    )
                return parsed
            if status == 401:
                breaker.on_success()
                failure = UnauthorizedError("HTTP 401: token refused", endpoint=endpoint, status=401)
                if auth and used_token is not None and token is None:
                    try:
                        await self.tokens.refresh(stale=used_token)
                    except ProjectXError as exc:
                        logger.error("ProjectX token refresh after 401 failed: %s", exc)
                if mutating:
                    raise UncertainOutcomeError("outcome unknown after HTTP 401", endpoint=endpoint, cause=failure)
                if auth and token is None and not reauthed:
                    reauthed = True
                    continue
                raise failure
            if status == 429:
                breaker.on_success()
                wait = _retry_after(resp, retry_cfg.default_retry_after_s)
                budget.block_for(wait)
                failure = RateLimitedError(f"HTTP 429: retry after {wait:g} s", endpoint=endpoint, retry_after_s=wait)
                if mutating:
                    raise UncertainOutcomeError(
                        "outcome unknown after HTTP 429", endpoint=endpoint, cause=failure, retry_after_s=wait
                    )
                if attempt < retry_cfg.max_retries:
                    attempt += 1
                    continue  # budget.acquire waits out the block
                raise failure
            if status >= 500:
                breaker.on_failure()
                failure = HttpStatusError(f"HTTP {status}", endpoint=endpoint, status=status)
                if mutating:
                    raise UncertainOutcomeError(
                        f"outcome unknown after HTTP {status}", endpoint=endpoint, cause=failure
                    )
                if attempt < retry_cfg.max_retries:
                    attempt += 1
                    await self._sleep(self._backoff(attempt))
                    continue
                raise failure
            breaker.on_success()
            raise HttpStatusError(f"HTTP {status}: {resp.text[:200]}", endpoint=endpoint, status=status)

    # ------------------------------------------------------------------------------------------------ auth

    async def login_key(self) -> str:
        """``Auth/loginKey`` with the configured credentials; returns the token.

        Raises:
            ConfigError: credentials missing. AuthenticationError: refused (the code says why).
        """
        user, key = self.settings.require_credentials()
        req = LoginKeyRequest(user_name=user, api_key=key)
        resp = await self._call("Auth/loginKey", req.wire(), LoginResponse, auth=False)
        if not resp.token:
            raise TransportError("login succeeded without a token", endpoint="Auth/loginKey")
        return resp.token

    async def validate(self, token: str) -> str | None:
        """``Auth/validate`` with ``token``; the fresh token, or ``None`` when refused (HTTP 401 included).

        Raises:
            AuthenticationError: ``success: false`` (e.g. 3 ExpiredToken).
        """
        try:
            resp = await self._call("Auth/validate", {}, ValidateResponse, token=token)
        except UnauthorizedError:
            return None
        return resp.fresh_token

    async def logout(self) -> None:
        """``Auth/logout``: revokes the current token (SW only)."""
        await self._call("Auth/logout", {}, Envelope)

    # ---------------------------------------------------------------------------------------------- accounts, contracts

    async def search_accounts(self, *, only_active: bool = True) -> list[Account]:
        """``Account/search``."""
        resp = await self._call("Account/search", {"onlyActiveAccounts": only_active}, AccountSearchResponse)
        return resp.accounts

    async def search_contracts(self, text: str, *, live: bool = False) -> list[Contract]:
        """``Contract/search`` (at most 20 results, the active month per root on TopstepX)."""
        resp = await self._call("Contract/search", {"searchText": text, "live": live}, ContractSearchResponse)
        return resp.contracts

    async def contract_by_id(self, contract_id: str) -> Contract:
        """``Contract/searchById``; accepts ``contract`` or ``contracts`` in the reply.

        Raises:
            ContractNotFoundError: code 1, or a successful reply without a contract.
        """
        resp = await self._call("Contract/searchById", {"contractId": contract_id}, ContractByIdResponse)
        item = resp.item
        if item is None:
            raise ContractNotFoundError(
                endpoint="Contract/searchById",
                error_code=1,
                name="ContractNotFound",
                meaning=f"no contract in the reply for {contract_id}",
                server_message=None,
            )
        return item

    async def available_contracts(self, *, live: bool = False) -> list[Contract]:
        """``Contract/available``."""
        resp = await self._call("Contract/available", {"live": live}, ContractSearchResponse)
        return resp.contracts

    async def retrieve_bars(self, req: RetrieveBarsRequest) -> list[BarRow]:
        """``History/retrieveBars`` (history budget); bars sorted oldest first."""
        resp = await self._call(HISTORY_ENDPOINT, req.wire(), BarsResponse)
        return sorted(resp.bars, key=lambda b: b.t)

    # ------------------------------------------------------------------------------------------------ orders

    async def place_order(self, req: PlaceOrderRequest) -> int:
        """``Order/place``; the new order id.

        Raises:
            ApiError: rejected (``order_id`` set when the reply carried one; ``BracketModeError`` for brackets on a
                Position Brackets account). UncertainOutcomeError: resolve by ``customTag``.
        """
        resp = await self._call("Order/place", req.body(), PlaceOrderResponse)
        if resp.order_id is None:
            raise UncertainOutcomeError(
                "success without an orderId", endpoint="Order/place", cause=TransportError("no orderId")
            )
        return resp.order_id

    async def modify_order(self, req: ModifyOrderRequest) -> None:
        """``Order/modify``. Raises ApiError, UncertainOutcomeError."""
        await self._call("Order/modify", req.body(), Envelope)

    async def cancel_order(self, account_id: int, order_id: int) -> None:
        """``Order/cancel`` (priority). Raises ApiError, UncertainOutcomeError."""
        await self._call("Order/cancel", {"accountId": account_id, "orderId": order_id}, Envelope)

    async def search_orders(
        self, account_id: int, start_ns: int, end_ns: int | None = None, *, priority: bool = False
    ) -> list[OrderRow]:
        """``Order/search`` over ``[start_ns, end_ns]`` (UTC ns)."""
        body: dict[str, Any] = {"accountId": account_id, "startTimestamp": format_ts(start_ns)}
        if end_ns is not None:
            body["endTimestamp"] = format_ts(end_ns)
        resp = await self._call("Order/search", body, OrderSearchResponse, priority=priority)
        return resp.orders

    async def search_open_orders(self, account_id: int, *, priority: bool = False) -> list[OrderRow]:
        """``Order/searchOpen`` (misses Suspended bracket children, spec 3.3)."""
        resp = await self._call("Order/searchOpen", {"accountId": account_id}, OrderSearchResponse, priority=priority)
        return resp.orders

    async def order_by_id(self, account_id: int, order_id: int) -> OrderRow | None:
        """``Order/searchById`` (SW only)."""
        resp = await self._call("Order/searchById", {"accountId": account_id, "orderId": order_id}, OrderByIdResponse)
        return resp.order

    async def query_orders(
        self, req: OrderQueryRequest, *, priority: bool = False
    ) -> tuple[list[OrderRow], int | None]:
        """``Order/v2/query`` (SW only): ``(orders, totalCount)``. A malformed request gets HTTP 400
        (``HttpStatusError``)."""
        resp = await self._call("Order/v2/query", req.body(), OrderSearchResponse, priority=priority)
        return resp.orders, resp.total_count

    # ------------------------------------------------------------------------------------------------ positions, trades

    async def search_open_positions(self, account_id: int, *, priority: bool = False) -> list[PositionRow]:
        """``Position/searchOpen``."""
        resp = await self._call(
            "Position/searchOpen", {"accountId": account_id}, PositionSearchResponse, priority=priority
        )
        return resp.positions

    async def close_position(self, account_id: int, contract_id: str) -> int | None:
        """``Position/closeContract`` (a market order; priority); the closing order's id when the server sends it.

        Raises:
            ApiError (``PositionNotFoundError`` when flat), UncertainOutcomeError.
        """
        resp = await self._call(
            "Position/closeContract", {"accountId": account_id, "contractId": contract_id}, CloseResponse
        )
        return resp.order_id

    async def partial_close_position(self, account_id: int, contract_id: str, size: int) -> int | None:
        """``Position/partialCloseContract`` of ``size`` contracts (priority). Raises as :meth:`close_position`."""
        resp = await self._call(
            "Position/partialCloseContract",
            {"accountId": account_id, "contractId": contract_id, "size": size},
            CloseResponse,
        )
        return resp.order_id

    async def search_trades(
        self, account_id: int, start_ns: int, end_ns: int | None = None, *, priority: bool = False
    ) -> list[TradeRow]:
        """``Trade/search`` from ``start_ns`` (always sent, spec 3.6) to ``end_ns`` (UTC ns); oldest first."""
        body: dict[str, Any] = {"accountId": account_id, "startTimestamp": format_ts(start_ns)}
        if end_ns is not None:
            body["endTimestamp"] = format_ts(end_ns)
        resp = await self._call("Trade/search", body, TradeSearchResponse, priority=priority)
        return sorted(resp.trades, key=lambda t: (t.creation_timestamp, t.id))

    async def ping(self) -> bool:
        """``GET Status/ping`` (no envelope): True when the server answers ``"pong"``."""
        try:
            resp = await self._client.get("/api/Status/ping")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and "pong" in resp.text
