"""The propdesk error hierarchy.

Every error propdesk raises on purpose derives from :class:`PropdeskError`, so callers (the CLI, the node, the API)
can tell a clear, user-facing failure from a programming error. Errors that concern input name *what* was wrong and
*where* (file and row, field, command).
"""

from __future__ import annotations

from pathlib import Path


class PropdeskError(Exception):
    """Base class of every error propdesk raises deliberately."""


class ConfigError(PropdeskError):
    """A configuration file, setting or command-line option is invalid."""


class ContractError(PropdeskError):
    """An unknown root, or a malformed or unknown contract id or symbol."""


class InvalidPriceError(PropdeskError, ValueError):
    """A price that is not a finite number on the contract's tick grid."""


class InvalidAmountError(PropdeskError, ValueError):
    """A money amount that is not a finite, whole number of cents."""


class InvalidQuantityError(PropdeskError, ValueError):
    """A quantity that is not a positive whole number of contracts."""


class DataError(PropdeskError):
    """Market data that cannot be loaded or used.

    Attributes:
        path: the file concerned, or ``None`` for in-memory data.
        row: the 1-based data row (the header is row 0 for CSV files), or ``None`` if not tied to a row.
        reason: what was wrong, without the location.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None, row: int | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else Path(path)
        self.row = row
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        elif row is not None:
            where = f"row {row}: "
        super().__init__(f"{where}{reason}")


class TimerError(PropdeskError):
    """A timer was set with invalid arguments (a time in the past for a one-shot, a non-positive interval, ...)."""
