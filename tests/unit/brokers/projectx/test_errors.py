"""Per-endpoint error codes (spec section 3.5)."""

from __future__ import annotations

import pytest

from propdesk.brokers.projectx.errors import (
    AccountRejectedError,
    AccountViolationError,
    ApiError,
    AuthenticationError,
    BracketModeError,
    ContractNotFoundError,
    InvalidCloseSizeError,
    OrderNotFoundError,
    OrderPendingError,
    OrderRejectedError,
    PositionNotFoundError,
    UnknownApiError,
    api_error,
)


@pytest.mark.parametrize(
    ("endpoint", "code", "cls", "name"),
    [
        ("Order/place", 2, OrderRejectedError, "OrderRejected"),
        ("Order/place", 4, AccountViolationError, "AccountViolation"),
        ("Order/place", 10, AccountRejectedError, "AccountRejected"),
        ("Order/cancel", 2, OrderNotFoundError, "OrderNotFound"),
        ("Order/cancel", 6, AccountRejectedError, "AccountRejected"),
        ("Order/modify", 7, ContractNotFoundError, "ContractNotFound"),
        ("Position/closeContract", 5, OrderRejectedError, "OrderRejected"),
        ("Position/partialCloseContract", 5, InvalidCloseSizeError, "InvalidCloseSize"),
        ("Position/closeContract", 6, OrderPendingError, "OrderPending"),
        ("Position/partialCloseContract", 6, OrderRejectedError, "OrderRejected"),
        ("Position/closeContract", 2, PositionNotFoundError, "PositionNotFound"),
        ("Auth/loginKey", 9, AuthenticationError, "ApiSubscriptionNotFound"),
        ("Auth/validate", 3, AuthenticationError, "ExpiredToken"),
        ("History/retrieveBars", 1, ContractNotFoundError, "ContractNotFound"),
    ],
)
def test_code_means_what_the_endpoint_says(endpoint: str, code: int, cls: type[ApiError], name: str) -> None:
    err = api_error(endpoint, code, "server text")
    assert type(err) is cls
    assert err.name == name and err.error_code == code and err.endpoint == endpoint
    assert "server text" in err.reason and endpoint in str(err)


def test_same_code_differs_between_endpoints() -> None:
    assert type(api_error("Order/place", 2, None)) is OrderRejectedError
    assert type(api_error("Order/cancel", 2, None)) is OrderNotFoundError
    assert type(api_error("Position/closeContract", 2, None)) is PositionNotFoundError


def test_position_brackets_message_is_bracket_mode_error() -> None:
    msg = "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."
    err = api_error("Order/place", 2, msg, order_id=77)
    assert isinstance(err, BracketModeError) and isinstance(err, OrderRejectedError)
    assert err.order_id == 77


def test_unknown_codes_and_undocumented_endpoints() -> None:
    assert type(api_error("Order/place", 42, None)) is UnknownApiError
    assert type(api_error("Contract/search", 3, None)) is UnknownApiError
    assert api_error("Contract/search", 3, None).name == "Unknown"
