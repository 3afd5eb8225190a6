"""ProjectX errors: per-endpoint ``errorCode`` tables mapped to propdesk error classes, plus transport errors.

The same integer means different things on different endpoints (``../shared/specs/projectx-gateway-api.md``
section 1.2 and the enums of section 3.5; TIQ ``models/models.go`` and UR agree on place/modify/cancel/close codes).
:func:`api_error` turns an envelope with ``success: false`` into the matching exception, carrying the endpoint, the
code, its enum name, what it means for a trader, and the server's ``errorMessage``. Endpoints without a documented
table treat any non-zero code as :class:`UnknownApiError`.

Transport outcomes: :class:`UnauthorizedError` (401), :class:`RateLimitedError` (429, ``retry_after_s``),
:class:`HttpStatusError` (other non-200), :class:`TransportError` (timeout, connection), :class:`CircuitOpenError`
(the endpoint class's breaker is open) and :class:`UncertainOutcomeError`: a mutating call whose effect is unknown
(timeout, disconnect, 5xx, 401, 429). Such a call is never sent again blindly; the broker resolves it by looking
the order up by its ``customTag`` (spec section 8, pitfall 6).
"""

from __future__ import annotations

from typing import Final

from propdesk.core.errors import PropdeskError


class ProjectXError(PropdeskError):
    """Base of every ProjectX adapter error. ``endpoint`` is the path under ``/api`` (``Order/place``)."""

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        super().__init__(f"{endpoint}: {message}" if endpoint else message)
        self.endpoint = endpoint


# ------------------------------------------------------------------------------------------------ business errors


class ApiError(ProjectXError):
    """The server answered ``success: false``.

    Attributes:
        error_code: the envelope's ``errorCode``.
        name: the code's enum name on this endpoint (``OrderRejected``), ``Unknown`` if undocumented.
        meaning: what it means, in a trader's words.
        server_message: the envelope's ``errorMessage`` (may be ``None``).
        order_id: ``orderId`` of the reply when it carried one (a rejected bracket order still does, spec 3.3).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        error_code: int,
        name: str,
        meaning: str,
        server_message: str | None,
        order_id: int | None = None,
    ) -> None:
        detail = f"{name} (errorCode {error_code}): {meaning}"
        if server_message:
            detail += f" - server says: {server_message}"
        super().__init__(detail, endpoint=endpoint)
        self.error_code = error_code
        self.name = name
        self.meaning = meaning
        self.server_message = server_message
        self.order_id = order_id

    @property
    def reason(self) -> str:
        """A one-line reason for ``OrderRejected`` and friends."""
        msg = f"ProjectX {self.endpoint} {self.name} ({self.error_code})"
        return f"{msg}: {self.server_message}" if self.server_message else f"{msg}: {self.meaning}"


class AuthenticationError(ApiError):
    """Login, validate or logout failed (bad credentials, no API subscription, expired session, ...)."""


class AccountNotFoundError(ApiError):
    """The account id is unknown or not the user's."""


class AccountViolationError(ApiError):
    """The account is locked by a risk rule (``Order/place`` 4): treat as a lockout (spec 7)."""


class AccountRejectedError(ApiError):
    """The account may not do this through the API (live or follower accounts; spec 3.3, UNVERIFIED)."""


class ContractNotFoundError(ApiError):
    """The contract id is unknown."""


class ContractNotActiveError(ApiError):
    """The contract is expired or not tradable."""


class OrderNotFoundError(ApiError):
    """The order id is unknown or no longer working."""


class PositionNotFoundError(ApiError):
    """There is no open position in the contract (already flat)."""


class OrderRejectedError(ApiError):
    """The order (or the modify/cancel/close) was refused."""


class BracketModeError(OrderRejectedError):
    """Bracket objects sent to an account in Position Brackets mode (``Order/place`` 2 with the Position Brackets
    message, spec 3.3): native brackets are not available on this account."""


class InsufficientFundsError(ApiError):
    """Not enough buying power."""


class OutsideTradingHoursError(ApiError):
    """The market (or the account's trading window) is closed."""


class OrderPendingError(ApiError):
    """Another request for the order or position is still pending."""


class InvalidCloseSizeError(ApiError):
    """``partialCloseContract``: the size is not below the position size."""


class InvalidRequestError(ApiError):
    """A request parameter was refused (bar unit, unit number, limit)."""


class UnknownApiError(ApiError):
    """An undocumented code or the server's own UnknownError."""


_Entry = tuple[str, str, type[ApiError]]

_LOGIN: Final[dict[int, _Entry]] = {
    1: ("UserNotFound", "the user name is unknown", AuthenticationError),
    2: ("PasswordVerificationFailed", "the credentials were refused", AuthenticationError),
    3: ("InvalidCredentials", "the user name or API key is wrong", AuthenticationError),
    4: ("AppNotFound", "the application is unknown", AuthenticationError),
    5: ("AppVerificationFailed", "the application could not be verified", AuthenticationError),
    6: ("InvalidDevice", "the device was refused", AuthenticationError),
    7: (
        "AgreementsNotSigned",
        "log into the ProjectX platform and complete the required agreements",
        AuthenticationError,
    ),
    8: ("UnknownError", "the server failed to log in", AuthenticationError),
    9: ("ApiSubscriptionNotFound", "the API subscription is missing or not linked to the profile", AuthenticationError),
    10: ("ApiKeyAuthenticationDisabled", "API-key login is disabled for this user", AuthenticationError),
}
_VALIDATE: Final[dict[int, _Entry]] = {
    1: ("InvalidSession", "the token is not a valid session", AuthenticationError),
    2: ("SessionNotFound", "the session does not exist", AuthenticationError),
    3: ("ExpiredToken", "the token expired; log in again", AuthenticationError),
    4: ("UnknownError", "the server failed to validate", AuthenticationError),
}
_LOGOUT: Final[dict[int, _Entry]] = {
    1: ("InvalidSession", "the token is not a valid session", AuthenticationError),
    2: ("UnknownError", "the server failed to log out", AuthenticationError),
}
_CONTRACT_BY_ID: Final[dict[int, _Entry]] = {
    1: ("ContractNotFound", "no contract has this id", ContractNotFoundError),
}
_HISTORY: Final[dict[int, _Entry]] = {
    1: ("ContractNotFound", "no contract has this id", ContractNotFoundError),
    2: ("UnitInvalid", "the bar unit is not supported", InvalidRequestError),
    3: ("UnitNumberInvalid", "the bar unit number is not supported", InvalidRequestError),
    4: ("LimitInvalid", "the bar limit is out of range (<= 20,000)", InvalidRequestError),
}
_PLACE: Final[dict[int, _Entry]] = {
    1: ("AccountNotFound", "the account is unknown", AccountNotFoundError),
    2: ("OrderRejected", "the order was rejected", OrderRejectedError),
    3: ("InsufficientFunds", "not enough buying power", InsufficientFundsError),
    4: ("AccountViolation", "the account is locked by a risk rule", AccountViolationError),
    5: ("OutsideTradingHours", "the market is closed", OutsideTradingHoursError),
    6: ("OrderPending", "an order request is still pending", OrderPendingError),
    7: ("UnknownError", "the server failed to place the order", UnknownApiError),
    8: ("ContractNotFound", "the contract is unknown", ContractNotFoundError),
    9: ("ContractNotActive", "the contract is not active (expired)", ContractNotActiveError),
    10: ("AccountRejected", "the account may not trade through the API", AccountRejectedError),
}
_MODIFY: Final[dict[int, _Entry]] = {
    1: ("AccountNotFound", "the account is unknown", AccountNotFoundError),
    2: ("OrderNotFound", "the order is unknown or no longer working", OrderNotFoundError),
    3: ("Rejected", "the modification was rejected", OrderRejectedError),
    4: ("Pending", "a request for this order is still pending", OrderPendingError),
    5: ("UnknownError", "the server failed to modify the order", UnknownApiError),
    6: ("AccountRejected", "the account may not modify orders through the API", AccountRejectedError),
    7: ("ContractNotFound", "the order's contract is unknown", ContractNotFoundError),
}
_CANCEL: Final[dict[int, _Entry]] = {
    1: ("AccountNotFound", "the account is unknown", AccountNotFoundError),
    2: ("OrderNotFound", "the order is unknown or no longer working", OrderNotFoundError),
    3: ("Rejected", "the cancel was rejected", OrderRejectedError),
    4: ("Pending", "a request for this order is still pending", OrderPendingError),
    5: ("UnknownError", "the server failed to cancel the order", UnknownApiError),
    6: ("AccountRejected", "live or follower accounts cannot cancel through the API", AccountRejectedError),
}
_CLOSE: Final[dict[int, _Entry]] = {
    1: ("AccountNotFound", "the account is unknown", AccountNotFoundError),
    2: ("PositionNotFound", "there is no open position in the contract", PositionNotFoundError),
    3: ("ContractNotFound", "the contract is unknown", ContractNotFoundError),
    4: ("ContractNotActive", "the contract is not active", ContractNotActiveError),
    5: ("OrderRejected", "the closing order was rejected", OrderRejectedError),
    6: ("OrderPending", "an order for the position is still pending", OrderPendingError),
    7: ("UnknownError", "the server failed to close the position", UnknownApiError),
    8: ("AccountRejected", "the account may not close through the API", AccountRejectedError),
}
_PARTIAL_CLOSE: Final[dict[int, _Entry]] = {
    1: ("AccountNotFound", "the account is unknown", AccountNotFoundError),
    2: ("PositionNotFound", "there is no open position in the contract", PositionNotFoundError),
    3: ("ContractNotFound", "the contract is unknown", ContractNotFoundError),
    4: ("ContractNotActive", "the contract is not active", ContractNotActiveError),
    5: ("InvalidCloseSize", "the close size must be below the position size", InvalidCloseSizeError),
    6: ("OrderRejected", "the closing order was rejected (market closed or no price)", OrderRejectedError),
    7: ("OrderPending", "an order for the position is still pending", OrderPendingError),
    8: ("UnknownError", "the server failed to close part of the position", UnknownApiError),
    9: ("AccountRejected", "the account may not close through the API (live accounts)", AccountRejectedError),
}
_ACCOUNT_NOT_FOUND_1: Final[dict[int, _Entry]] = {
    1: ("AccountNotFound", "the account is unknown", AccountNotFoundError),
}

ERROR_TABLES: Final[dict[str, dict[int, _Entry]]] = {
    "Auth/loginKey": _LOGIN,
    "Auth/validate": _VALIDATE,
    "Auth/logout": _LOGOUT,
    "Contract/searchById": _CONTRACT_BY_ID,
    "History/retrieveBars": _HISTORY,
    "Order/place": _PLACE,
    "Order/modify": _MODIFY,
    "Order/cancel": _CANCEL,
    "Position/closeContract": _CLOSE,
    "Position/partialCloseContract": _PARTIAL_CLOSE,
    "Trade/search": _ACCOUNT_NOT_FOUND_1,
    # undocumented tables (spec 3.1): the server's errorCode 1 for an unknown account is an assumption
    "Order/search": _ACCOUNT_NOT_FOUND_1,
    "Order/searchOpen": _ACCOUNT_NOT_FOUND_1,
    "Order/searchById": _ACCOUNT_NOT_FOUND_1,
    "Order/v2/query": _ACCOUNT_NOT_FOUND_1,
    "Position/searchOpen": _ACCOUNT_NOT_FOUND_1,
}
"""``endpoint -> {errorCode: (name, meaning, class)}`` (spec section 3.5)."""

POSITION_BRACKETS_MARKER: Final[str] = "position brackets"
"""Text of the Order/place code-2 message that reveals an account in Position Brackets mode (spec 3.3)."""


def api_error(endpoint: str, error_code: int, server_message: str | None, *, order_id: int | None = None) -> ApiError:
    """The exception for ``errorCode`` on ``endpoint`` (see :data:`ERROR_TABLES`)."""
    entry = ERROR_TABLES.get(endpoint, {}).get(error_code)
    cls: type[ApiError]
    if entry is None:
        name, meaning, cls = "Unknown", "an undocumented error code", UnknownApiError
    else:
        name, meaning, cls = entry
    if (
        endpoint == "Order/place"
        and error_code == 2
        and server_message
        and POSITION_BRACKETS_MARKER in server_message.lower()
    ):
        cls = BracketModeError
        meaning = "bracket objects need Auto OCO Brackets; the account is in Position Brackets mode"
    return cls(
        endpoint=endpoint,
        error_code=error_code,
        name=name,
        meaning=meaning,
        server_message=server_message,
        order_id=order_id,
    )


# ------------------------------------------------------------------------------------------------ transport errors


class TransportError(ProjectXError):
    """The request failed below the API: timeout, connection refused or reset, malformed reply."""


class HttpStatusError(TransportError):
    """A non-200 HTTP status other than 401/429 (``status``)."""

    def __init__(self, message: str, *, endpoint: str, status: int) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status


class UnauthorizedError(HttpStatusError):
    """HTTP 401: missing, invalid or expired token."""


class RateLimitedError(HttpStatusError):
    """HTTP 429; ``retry_after_s`` from ``Retry-After`` (or the configured default)."""

    def __init__(self, message: str, *, endpoint: str, retry_after_s: float) -> None:
        super().__init__(message, endpoint=endpoint, status=429)
        self.retry_after_s = retry_after_s


class CircuitOpenError(ProjectXError):
    """The endpoint class's circuit breaker is open: the call was not sent. ``retry_in_s`` until a trial call."""

    def __init__(self, message: str, *, endpoint: str, endpoint_class: str, retry_in_s: float) -> None:
        super().__init__(message, endpoint=endpoint)
        self.endpoint_class = endpoint_class
        self.retry_in_s = retry_in_s


class UncertainOutcomeError(ProjectXError):
    """A mutating call (place, modify, cancel, close) may or may not have taken effect: ``cause`` says why
    (timeout, disconnect, 5xx, 401, 429). Resolve it by looking the order or position up; never resend blindly."""

    def __init__(self, message: str, *, endpoint: str, cause: BaseException, retry_after_s: float = 0.0) -> None:
        super().__init__(message, endpoint=endpoint)
        self.cause = cause
        self.retry_after_s = retry_after_s


UncertainOutcome = UncertainOutcomeError
"""Alias used in the issue text."""
