"""``BodyGuard``: request bodies checked before anything parses them.

A JSON parser given a 20 MB body, an array nested 100,000 deep (``RecursionError``) or an integer of 4,300+ digits
(Python's ``int`` limit, a ``ValueError`` that is not a ``JSONDecodeError``) either blocks the event loop the desks
run on or answers HTTP 500. The guard reads the body first (at most ``max_bytes``) and refuses, as problem documents:

* a body over ``max_bytes`` (by ``Content-Length`` or as read): HTTP 413, code ``VALIDATION_FAILED``;
* JSON nested deeper than ``max_depth`` arrays/objects, or a number token longer than ``max_number_chars``
  (outside strings): HTTP 422, ``VALIDATION_FAILED``.

Then the app gets the body as it came. WebSocket messages are bounded by the server (``ws_max_size``).
"""

from __future__ import annotations

import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from propdesk.api.problems import Problem, ProblemCode, problem_response

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_NUMBER_CHARS", "BodyGuard", "body_problem"]

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
"""The largest request body (bytes): an order or a parameter change is a few hundred."""
DEFAULT_MAX_DEPTH: Final = 32
"""The deepest JSON nesting accepted."""
DEFAULT_MAX_NUMBER_CHARS: Final = 40
"""The longest JSON number token accepted (characters): a price has at most 9 + 1 + 9."""

_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET: Final = re.compile(rb"[\[\]{}]")


def body_problem(body: bytes, *, max_depth: int, max_number_chars: int) -> str | None:
    """Why ``body`` (JSON text) is refused before parsing, or ``None`` when it passes (it may still be invalid JSON:
    the app's parser says so)."""
    bare = _STRING.sub(b'""', body)
    if re.search(rb"[-+.eE0-9]{%d,}" % (max_number_chars + 1), bare):
        return f"a number longer than {max_number_chars} characters"
    depth = 0
    for m in _BRACKET.finditer(bare):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > max_depth:
            return f"JSON nested deeper than {max_depth} levels"
    return None


class BodyGuard:
    """ASGI middleware refusing oversized, deeply nested or huge-number bodies before the app parses them (module
    docstring).

    Args:
        app: the wrapped app. max_bytes / max_depth / max_number_chars: the limits.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_number_chars: int = DEFAULT_MAX_NUMBER_CHARS,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.max_number_chars = max_number_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, receive, send, 413, f"the body exceeds {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, 413, f"the body exceeds {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        why = body_problem(body, max_depth=self.max_depth, max_number_chars=self.max_number_chars) if body else None
        if why is not None:
            await self._refuse(scope, receive, send, 422, f"the body is refused: {why}")
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        problem = Problem.of(ProblemCode.VALIDATION_FAILED, detail)
        if status != problem.status:
            problem = problem.model_copy(update={"status": status, "title": "Content Too Large"})
        await problem_response(problem)(scope, receive, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
