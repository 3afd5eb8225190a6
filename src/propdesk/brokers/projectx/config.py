"""Settings of the ProjectX (TopstepX) broker adapter: hosts, timeouts, rate budgets, retries, breakers, accounts.

Hosts default to TopstepX production (``../shared/specs/projectx-gateway-api.md`` section 1.1); every host is
configurable (other ProjectX firms, the local gateway). Credentials come from the environment
(``PROPDESK_PROJECTX_USERNAME`` / ``PROPDESK_PROJECTX_API_KEY``, see :meth:`ProjectXSettings.with_env_credentials`);
the API key is a :class:`~pydantic.SecretStr`, so it never appears in ``repr``, ``str`` or logs.

Rate budgets follow section 9: ``general`` 200 requests / 60 s (login included) of which ``reserve_fraction``
(default 25 %) is kept for cancel, close and flatten calls; ``history`` (``History/retrieveBars``) 30 / 30 s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from propdesk.core.backoff import Backoff
from propdesk.core.errors import ConfigError

BracketMode = Literal["position", "auto_oco"]
"""TopstepX bracket mode of an account (platform Settings -> Risk Settings); the API cannot read it (spec 7)."""

OrderPlaceStyle = Literal["brackets", "linked"]
"""How ``Order/place`` links orders: newer-vintage bracket objects, or older-vintage ``linkedOrderId`` (spec 3.6)."""

ENV_USERNAME = "PROPDESK_PROJECTX_USERNAME"
ENV_API_KEY = "PROPDESK_PROJECTX_API_KEY"

TOPSTEPX_API_BASE = "https://api.topstepx.com"
TOPSTEPX_USER_HUB = "https://rtc.topstepx.com/hubs/user"
TOPSTEPX_MARKET_HUB = "https://rtc.topstepx.com/hubs/market"


class RateBudget(BaseModel):
    """At most ``count`` requests per sliding window of ``window_s`` seconds; ``reserve_fraction`` of them are kept
    for priority calls (cancel, close, flatten). Source: spec section 9."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=1)
    window_s: float = Field(gt=0)
    reserve_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)

    @property
    def routine_limit(self) -> int:
        """Requests per window open to routine calls (``count`` minus the reserve, at least 1)."""
        return max(1, int(self.count * (1.0 - self.reserve_fraction)))


class BreakerSettings(BaseModel):
    """Circuit breaker per endpoint class: open after ``failure_threshold`` consecutive transport failures (timeouts,
    connection errors, HTTP 5xx); after ``reset_timeout_s`` let one trial call through (half-open)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout_s: float = Field(default=30.0, gt=0)


class RetrySettings(BaseModel):
    """Retries of non-mutating calls: ``max_retries`` more attempts, waiting ``base_s * 2**n`` (capped at ``max_s``)
    with full jitter. Mutating calls are never retried (spec section 8, pitfall 6)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(default=3, ge=0)
    base_s: float = Field(default=0.5, gt=0)
    max_s: float = Field(default=8.0, gt=0)
    default_retry_after_s: float = Field(default=60.0, gt=0)
    """Wait after a 429 without ``Retry-After`` (PXPY's 60 s, spec 1.2)."""

    def schedule(self) -> Backoff:
        """These numbers as a :class:`~propdesk.core.backoff.Backoff` (factor 2, full jitter, ``max_retries``)."""
        return Backoff(self.base_s, 2.0, self.max_s, full_jitter=True, max_attempts=self.max_retries)


class ProjectXSettings(BaseModel):
    """Everything the ProjectX adapter needs (frozen).

    Attributes:
        api_base: REST host; endpoints live under ``{api_base}/api/...``.
        user_hub_url, market_hub_url: SignalR hub URLs (``http(s)``; the WebSocket scheme is derived).
        username: the ProjectX user name (``userName`` of ``Auth/loginKey``).
        api_key: the API key (secret; full trading access).
        account_id / account_name: which account to trade (one of them; the first active account otherwise).
        bracket_modes: per account id, ``position`` (TopstepX default: native brackets refused, the order manager
            synthesizes them) or ``auto_oco`` (native bracket objects on ``Order/place``).
        order_place_style: ``brackets`` (newer docs) or ``linked`` (older docs; never both, spec 3.6).
        request_timeout_s, connect_timeout_s: HTTP timeouts (seconds).
        general_budget, history_budget: rate budgets (spec 9).
        retry, breaker: see :class:`RetrySettings`, :class:`BreakerSettings`.
        validate_interval_s: call ``Auth/validate`` at least this often (12 h, spec 2).
        refresh_before_expiry_s: ... or when less than this lifetime is left (1 h, spec 2).
        token_check_interval_s: how often the background task checks the token.
        hub_connect_timeout_s: how long ``connect()`` waits for both hubs and the first reconciliation.
        reconnect_base_s, reconnect_max_s: hub reconnect backoff (exponential with jitter).
        stale_feed_s: a subscribed contract silent this long is reported stale (PXPY uses 30 s, spec 5.5).
        stale_check_interval_s: how often the watchdog looks.
        reconnect_on_stale: reconnect the market hub when every subscribed contract is stale.
        confirm_timeout_s: after a cancel/modify/fill without the matching hub event, verify through REST after
            this long.
        max_bars_per_request: ``limit`` of ``History/retrieveBars`` (<= 20,000, spec 3.4).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_base: str = TOPSTEPX_API_BASE
    user_hub_url: str = TOPSTEPX_USER_HUB
    market_hub_url: str = TOPSTEPX_MARKET_HUB
    username: str | None = None
    api_key: SecretStr | None = None
    account_id: int | None = None
    account_name: str | None = None
    bracket_modes: dict[int, BracketMode] = Field(default_factory=dict)
    order_place_style: OrderPlaceStyle = "brackets"
    request_timeout_s: float = Field(default=10.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    general_budget: RateBudget = RateBudget(count=200, window_s=60.0, reserve_fraction=0.25)
    history_budget: RateBudget = RateBudget(count=30, window_s=30.0)
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    validate_interval_s: float = Field(default=12 * 3600.0, gt=0)
    refresh_before_expiry_s: float = Field(default=3600.0, ge=0)
    token_check_interval_s: float = Field(default=60.0, gt=0)
    hub_connect_timeout_s: float = Field(default=30.0, gt=0)
    reconnect_base_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    stale_feed_s: float = Field(default=30.0, gt=0)
    stale_check_interval_s: float = Field(default=5.0, gt=0)
    reconnect_on_stale: bool = True
    confirm_timeout_s: float = Field(default=3.0, gt=0)
    max_bars_per_request: int = Field(default=20_000, ge=1, le=20_000)

    @field_validator("api_base", "user_hub_url", "market_hub_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} must start with http:// or https://")
        return v.rstrip("/")

    def bracket_mode(self, account_id: int) -> BracketMode:
        """The configured bracket mode of ``account_id`` (``position`` unless set)."""
        return self.bracket_modes.get(account_id, "position")

    def with_env_credentials(self, environ: Mapping[str, str] | None = None) -> ProjectXSettings:
        """A copy with ``username``/``api_key`` read from ``PROPDESK_PROJECTX_USERNAME`` /
        ``PROPDESK_PROJECTX_API_KEY`` (values already set are kept when a variable is absent).

        Raises:
            ConfigError: neither the settings nor the environment give both credentials.
        """
        env = os.environ if environ is None else environ
        user = env.get(ENV_USERNAME) or self.username
        key_text = env.get(ENV_API_KEY)
        key = SecretStr(key_text) if key_text else self.api_key
        if not user or key is None or not key.get_secret_value():
            raise ConfigError(f"ProjectX credentials missing: set {ENV_USERNAME} and {ENV_API_KEY}")
        return self.model_copy(update={"username": user, "api_key": key})

    def require_credentials(self) -> tuple[str, str]:
        """``(username, api_key)`` for ``Auth/loginKey``.

        Raises:
            ConfigError: either is missing.
        """
        if not self.username or self.api_key is None or not self.api_key.get_secret_value():
            raise ConfigError(f"ProjectX credentials missing: set {ENV_USERNAME} and {ENV_API_KEY}")
        return self.username, self.api_key.get_secret_value()
