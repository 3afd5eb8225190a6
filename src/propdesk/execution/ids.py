"""Client order ids: unique across runs and restarts, short, and safe to send to a broker as an idempotency key.

Format: ``<prefix>-<run token>-<counter>``, e.g. ``pd-t3k9zq4fa-17``.

* ``prefix``: 1-6 characters ``[a-z0-9]`` starting with a letter (default ``pd``), naming the process family.
* ``run token``: 9 characters ``[a-z0-9]``, drawn once per :class:`ClientOrderIdGenerator`: 6 base-36 digits of
  the wall-clock second it was made (``time.time()``, modulo 36**6, which repeats after ~69 years), then 3 base-36
  digits from :mod:`secrets`. Two runs collide only if they start in the same second *and* draw the same 3 random
  digits (1 in 46,656). The wall clock is used even in backtests, on purpose: the token must differ between runs,
  not follow simulated time. Pass ``run_token`` explicitly for reproducible ids (tests, journal recovery).
* ``counter``: a decimal number from 1, incremented per id.

Bracket children append a leg suffix: ``<entry id>-sl`` / ``<entry id>-tp`` (``-sl2``, ``-tp2``, ... for a later
pair of the same bracket); see :mod:`propdesk.execution.brackets`.

Every id matches :data:`CLIENT_ORDER_ID_RE` (lowercase letters, digits and single dashes) and stays well under
:data:`MAX_CLIENT_ORDER_ID_LEN` characters (a 7-digit counter and a bracket suffix give 26). The id is sent to
ProjectX as ``customTag``, which "must be unique across the account" (``../shared/specs/projectx-gateway-api.md``
section 3.3); the API documents no length limit or character set (open question in section 10), so propdesk keeps
to a conservative alphabet and length.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Final

from propdesk.core.errors import ConfigError
from propdesk.model.identifiers import ClientOrderId

DEFAULT_PREFIX: Final[str] = "pd"
"""The prefix used when none is configured."""

MAX_CLIENT_ORDER_ID_LEN: Final[int] = 40
"""The longest client order id propdesk generates or accepts from configuration (characters)."""

CLIENT_ORDER_ID_RE: Final[re.Pattern[str]] = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
"""The shape of every id propdesk generates: lowercase alphanumeric words joined by single dashes."""

_PREFIX_RE: Final[re.Pattern[str]] = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_TOKEN_RE: Final[re.Pattern[str]] = re.compile(r"^[a-z0-9]{1,12}$")
_B36: Final[str] = "0123456789abcdefghijklmnopqrstuvwxyz"
_TIME_DIGITS: Final[int] = 6
_RANDOM_DIGITS: Final[int] = 3


def _base36(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


def new_run_token(now_s: int | None = None) -> str:
    """A fresh 9-character run token: 6 base-36 digits of the wall-clock second, then 3 random base-36 digits.

    Args:
        now_s: the Unix time in seconds to encode (default: ``time.time()``).
    """
    seconds = int(time.time()) if now_s is None else now_s
    return _base36(seconds % 36**_TIME_DIGITS, _TIME_DIGITS) + _base36(
        secrets.randbelow(36**_RANDOM_DIGITS), _RANDOM_DIGITS
    )


def is_valid_client_order_id(value: str) -> bool:
    """True when ``value`` has the shape and length of a propdesk client order id (see the module docstring)."""
    return len(value) <= MAX_CLIENT_ORDER_ID_LEN and CLIENT_ORDER_ID_RE.match(value) is not None


class ClientOrderIdGenerator:
    """Hands out client order ids ``<prefix>-<run token>-<counter>`` (see the module docstring).

    Args:
        prefix: 1-6 characters ``[a-z0-9]`` starting with a letter (default ``pd``).
        run_token: 1-12 characters ``[a-z0-9]``; default a fresh :func:`new_run_token`.

    Raises:
        ConfigError: a malformed ``prefix`` or ``run_token``.
    """

    __slots__ = ("_count", "_head", "_prefix", "_run_token")

    def __init__(self, prefix: str = DEFAULT_PREFIX, *, run_token: str | None = None) -> None:
        if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
            raise ConfigError(
                f"client order id prefix {prefix!r} must be 1-6 characters [a-z0-9] starting with a letter"
            )
        token = new_run_token() if run_token is None else run_token
        if not isinstance(token, str) or not _TOKEN_RE.match(token):
            raise ConfigError(f"client order id run token {token!r} must be 1-12 characters [a-z0-9]")
        self._prefix = prefix
        self._run_token = token
        self._head = f"{prefix}-{token}-"
        self._count = 0

    @property
    def prefix(self) -> str:
        """The configured prefix."""
        return self._prefix

    @property
    def run_token(self) -> str:
        """This run's token."""
        return self._run_token

    @property
    def issued(self) -> int:
        """How many ids :meth:`next` has handed out."""
        return self._count

    def use_run_token(self, run_token: str) -> None:
        """Issue the ids to come under ``run_token`` instead (a journaled replay takes its run's token, so a killed
        run continued from its first bar issues the same ids again: :mod:`propdesk.storage.runs`).

        Raises:
            ConfigError: a malformed token, or ids were already issued under the current one.
        """
        if not isinstance(run_token, str) or not _TOKEN_RE.match(run_token):
            raise ConfigError(f"client order id run token {run_token!r} must be 1-12 characters [a-z0-9]")
        if self._count and run_token != self._run_token:
            raise ConfigError(f"{self._count} client order ids were already issued under run token {self._run_token}")
        self._run_token = run_token
        self._head = f"{self._prefix}-{run_token}-"

    def next(self) -> ClientOrderId:
        """The next id (``<prefix>-<run token>-<n>``, n from 1)."""
        self._count += 1
        return ClientOrderId(f"{self._head}{self._count}")

    def owns(self, client_order_id: str) -> bool:
        """True when ``client_order_id`` was made by this generator (or is a bracket child of one that was)."""
        return client_order_id.startswith(self._head)
