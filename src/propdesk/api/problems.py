"""RFC 9457 problem details: every error of propdesk's API is ``application/problem+json`` with a stable code.

A client branches on :class:`ProblemCode` (the ``code`` member), never on the human ``title``/``detail``. The
``type`` member is ``urn:propdesk:problem:<code in lower case>`` (RFC 9457 section 3.1.1 allows any URI; a URN
needs no web page to resolve). Where a risk rule decided, ``rule_id`` and the headroom left are set
(``headroom_usd`` a decimal string, ``headroom_qty`` a decimal string of mini-equivalent contracts).

:class:`ApiProblem` is the exception route code raises; :func:`install_problem_handlers` makes a FastAPI app answer
it, FastAPI's own request validation errors (``VALIDATION_FAILED``, HTTP 422) and Starlette's HTTP errors (404,
405, ...) as problem documents. Details never echo a secret (an API key, a passphrase).

Source: RFC 9457, https://www.rfc-editor.org/rfc/rfc9457.
"""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ApiProblem",
    "Problem",
    "ProblemCode",
    "install_problem_handlers",
    "problem_response",
]

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
"""The media type of a problem document (RFC 9457 section 3)."""


class ProblemCode(StrEnum):
    """The stable error codes of propdesk's API, each with its usual HTTP status (:attr:`status`)."""

    UNAUTHORIZED = "UNAUTHORIZED"
    """No API key, an unknown or revoked one, or a wrong secret (401)."""
    FORBIDDEN = "FORBIDDEN"
    """The key lacks the scope, or trades from a non-loopback client without ``allow_trade_remote`` (403)."""
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"
    """The ``Host`` header names no allowed host (DNS rebinding; 400)."""
    CROSS_ORIGIN = "CROSS_ORIGIN"
    """A browser's cross-origin request (``Origin`` / ``Sec-Fetch-Site``; 403)."""
    RATE_LIMITED = "RATE_LIMITED"
    """The key's token bucket is empty; ``Retry-After`` says when one token is back (429)."""
    NOT_FOUND = "NOT_FOUND"
    """No such resource or route (404)."""
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    """The route exists, the method does not (405)."""
    VALIDATION_FAILED = "VALIDATION_FAILED"
    """The request's parameters or body are malformed (422)."""
    RISK_DENIED = "RISK_DENIED"
    """The pre-trade gate denied the command; ``rule_id`` and headroom say which rule and how much is left (409)."""
    TRADING_STATE_HALTED = "TRADING_STATE_HALTED"
    """The account's trading state refuses the command (HALTED, or REDUCING for an order adding exposure; 409)."""
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    """The ``Idempotency-Key`` was already used by a different command (409)."""
    VERSION_CONFLICT = "VERSION_CONFLICT"
    """``If-Match`` names a version that is not the current one (412)."""
    BROKER_UNAVAILABLE = "BROKER_UNAVAILABLE"
    """The broker connection is down or not reconciled yet (503)."""

    @property
    def status(self) -> int:
        """The HTTP status this code is answered with."""
        return _STATUS[self]

    @property
    def type_uri(self) -> str:
        """The problem's ``type`` URI: ``urn:propdesk:problem:<code in lower case>``."""
        return f"urn:propdesk:problem:{self.value.lower()}"


_STATUS: Final[dict[ProblemCode, int]] = {
    ProblemCode.UNAUTHORIZED: 401,
    ProblemCode.FORBIDDEN: 403,
    ProblemCode.HOST_NOT_ALLOWED: 400,
    ProblemCode.CROSS_ORIGIN: 403,
    ProblemCode.RATE_LIMITED: 429,
    ProblemCode.NOT_FOUND: 404,
    ProblemCode.METHOD_NOT_ALLOWED: 405,
    ProblemCode.VALIDATION_FAILED: 422,
    ProblemCode.RISK_DENIED: 409,
    ProblemCode.TRADING_STATE_HALTED: 409,
    ProblemCode.IDEMPOTENCY_CONFLICT: 409,
    ProblemCode.VERSION_CONFLICT: 412,
    ProblemCode.BROKER_UNAVAILABLE: 503,
}

_BY_STATUS: Final[dict[int, ProblemCode]] = {
    401: ProblemCode.UNAUTHORIZED,
    403: ProblemCode.FORBIDDEN,
    404: ProblemCode.NOT_FOUND,
    405: ProblemCode.METHOD_NOT_ALLOWED,
    422: ProblemCode.VALIDATION_FAILED,
    429: ProblemCode.RATE_LIMITED,
}


class Problem(BaseModel):
    """One problem document (RFC 9457 section 3.1 members plus propdesk's extensions).

    Attributes:
        type: ``urn:propdesk:problem:<code>``. title: the status phrase. status: the HTTP status.
        detail: a sentence for a person (never a secret). instance: the request path, when known.
        code: the stable :class:`ProblemCode`. rule_id: the rule or state that decided (``R1``, ``HALTED``).
        headroom_usd: USD left before that rule's limit (decimal string). headroom_qty: mini-equivalent contracts
            left (decimal string). errors: for ``VALIDATION_FAILED``, each bad field's location and message.
    """

    model_config = ConfigDict(extra="forbid")

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str | None = None
    code: ProblemCode
    rule_id: str | None = None
    headroom_usd: str | None = None
    headroom_qty: str | None = None
    errors: list[dict[str, str]] | None = Field(default=None)

    @classmethod
    def of(cls, code: ProblemCode, detail: str = "", **extra: object) -> Problem:
        """The problem of ``code`` with its status, title and type (``extra``: the optional members)."""
        status = code.status
        return cls.model_validate(
            {
                "type": code.type_uri,
                "title": HTTPStatus(status).phrase,
                "status": status,
                "detail": detail,
                "code": code,
                **extra,
            }
        )


class ApiProblem(Exception):  # noqa: N818 - it is the problem itself, raised
    """Raised by route code to answer a problem document.

    Args:
        problem: the document. headers: extra response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    def __init__(self, problem: Problem, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem.detail or problem.code.value)
        self.problem = problem
        self.headers = headers or {}

    @classmethod
    def of(cls, code: ProblemCode, detail: str = "", *, headers: dict[str, str] | None = None) -> ApiProblem:
        """The exception for ``code`` with ``detail`` (see :meth:`Problem.of`)."""
        return cls(Problem.of(code, detail), headers)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    """``problem`` as an HTTP response with media type ``application/problem+json`` (``None`` members left out)."""
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _with_instance(problem: Problem, request: Request) -> Problem:
    return problem if problem.instance else problem.model_copy(update={"instance": request.url.path})


async def _on_api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return problem_response(_with_instance(exc.problem, request), exc.headers)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": ".".join(str(p) for p in err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()
    ]
    problem = Problem.of(ProblemCode.VALIDATION_FAILED, "the request is malformed", errors=errors)
    return problem_response(_with_instance(problem, request))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _BY_STATUS.get(exc.status_code)
    if code is None:
        try:
            phrase = HTTPStatus(exc.status_code).phrase
        except ValueError:
            phrase = "Error"
        body = {"type": "about:blank", "title": phrase, "status": exc.status_code, "detail": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_MEDIA_TYPE, headers=exc.headers)
    problem = Problem.of(code, str(exc.detail) if exc.detail else "")
    return problem_response(_with_instance(problem, request), dict(exc.headers or {}))


def install_problem_handlers(app: FastAPI) -> None:
    """Make ``app`` answer :class:`ApiProblem`, request validation errors and HTTP errors as problem documents."""
    app.add_exception_handler(ApiProblem, _on_api_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
