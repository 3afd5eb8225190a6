"""Size, nesting and number limits of the JSON the gateway reads (REST bodies, admin bodies, hub messages).

:func:`loads` checks a text's size and nesting against :class:`JsonLimits` *before* :func:`json.loads` sees it, and
each number token's length and exponent (:data:`MAX_EXPONENT`) before the token is converted (the parser's
``parse_int``/``parse_float`` hooks receive the token's text); JSON floats become :class:`~decimal.Decimal` (exact
prices) and ``NaN``/``Infinity`` (not JSON) are refused. Each refusal is a :class:`JsonLimitError` naming what was
wrong and where, which the REST layer answers with HTTP 400 ProblemDetails and the hubs log and skip.

Why this and not a library: neither :mod:`json` nor :mod:`msgspec` (both C parsers, both linear) has a nesting or
number-size limit. Without one, ``json.loads`` raises ``RecursionError`` past the interpreter's recursion limit and
``ValueError`` for an integer of more than 4,300 digits (CPython's int/str conversion guard), and it accepts
``1E+300000`` as a ``Decimal``, whose later conversion to ``int`` holds the event loop for seconds, and ``1E+400``,
which no float holds. The nesting scan is one C regex (possessive quantifiers: no backtracking) that skips plain
text and whole strings up to the next bracket; Python looks only at brackets, and stops at the first one too deep.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

_NOT_BRACKET: Final = re.compile(r'(?:[^"\[\]{}]++|"(?:[^"\\]|\\.)*+")*+', re.DOTALL)
"""Plain text and whole strings up to the next bracket outside a string (linear: possessive quantifiers)."""


class JsonLimitError(ValueError):
    """A text the gateway refuses to parse: over a limit or not JSON. ``message`` names the problem and its offset."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


MAX_EXPONENT: Final[int] = 99
"""Largest exponent of a JSON number (``1E+99`` and ``1E-99`` pass, ``1E+100`` does not)."""
_EXPONENT: Final = re.compile(r"[eE]([-+]?[0-9]+)$")


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Limits checked before parsing (and :data:`MAX_EXPONENT`).

    Attributes:
        max_bytes: longest text (bytes of UTF-8).
        max_depth: deepest nesting of arrays and objects (the API's own bodies nest 2 deep).
        max_number_chars: longest number token (an int64 has 20 characters with its sign; a price 10-20).
    """

    max_bytes: int = 65_536
    max_depth: int = 32
    max_number_chars: int = 40

    def check(self, text: str) -> None:
        """Check the nesting of ``text`` (the size with :meth:`check_size`, numbers with :meth:`number`).

        Raises:
            JsonLimitError: nesting deeper than ``max_depth``, or an unterminated string.
        """
        depth = 0
        i = 0
        n = len(text)
        while True:
            m = _NOT_BRACKET.match(text, i)
            i = m.end() if m is not None else i
            if i >= n:
                return
            c = text[i]
            if c == '"':
                raise JsonLimitError(f"unterminated string at offset {i}")
            if c in "[{":
                depth += 1
                if depth > self.max_depth:
                    raise JsonLimitError(f"nesting deeper than {self.max_depth} at offset {i}")
            else:
                depth -= 1
            i += 1

    def check_size(self, size: int) -> None:
        """Raises :class:`JsonLimitError` when ``size`` (bytes) exceeds ``max_bytes``."""
        if size > self.max_bytes:
            raise JsonLimitError(f"{size} bytes is more than the limit of {self.max_bytes}")

    def number(self, token: str) -> str:
        """``token`` (a JSON number's text) when it is at most ``max_number_chars`` long with an exponent within
        :data:`MAX_EXPONENT`.

        Raises:
            JsonLimitError: otherwise.
        """
        if len(token) > self.max_number_chars:
            raise JsonLimitError(f"number longer than {self.max_number_chars} characters: {token[:20]}...")
        e = _EXPONENT.search(token)
        if e is not None and abs(int(e.group(1))) > MAX_EXPONENT:
            raise JsonLimitError(f"number {token} has an exponent beyond +/-{MAX_EXPONENT}")
        return token


def _no_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not a JSON number")


def loads(raw: bytes | str, limits: JsonLimits, *, exact: bool = True) -> Any:
    """Parse ``raw`` after checking it against ``limits`` (module docstring).

    Args:
        raw: UTF-8 bytes or text.
        limits: the limits.
        exact: JSON floats as :class:`~decimal.Decimal` (True) or ``float``.

    Returns:
        The parsed value (``dict``/``list``/``str``/``int``/``Decimal`` or ``float``/``bool``/``None``).

    Raises:
        JsonLimitError: over a limit, not UTF-8, or not JSON.
    """
    limits.check_size(len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass")))
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"not UTF-8 at byte {exc.start}") from None
    limits.check(text)
    try:
        return json.loads(
            text,
            parse_int=lambda t: int(limits.number(t)),
            parse_float=(lambda t: Decimal(limits.number(t))) if exact else (lambda t: float(limits.number(t))),
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as exc:
        raise JsonLimitError(f"not JSON: {exc.msg} at offset {exc.pos}") from None
