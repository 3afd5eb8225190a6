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

    The message names the file's ``line`` when it is known (what an editor shows), else the data ``row``.

    Attributes:
        path: the file concerned, or ``None`` for in-memory data.
        row: the 1-based data row (the header is row 0 for CSV files), or ``None`` if not tied to a row.
        line: the 1-based line of the file that holds ``row`` (``row + 1`` under a header line), or ``None``.
        reason: what was wrong, without the location.
    """

    def __init__(
        self, reason: str, *, path: str | Path | None = None, row: int | None = None, line: int | None = None
    ) -> None:
        self.reason = reason
        self.path = None if path is None else Path(path)
        self.row = row
        self.line = line
        at = f"line {line}" if line is not None else (f"row {row}" if row is not None else "")
        where = ", ".join(part for part in (str(self.path) if self.path is not None else "", at) if part)
        super().__init__(f"{where}: {reason}" if where else reason)

    def at_line(self, header_lines: int) -> DataError:
        """This error with :attr:`line` set to ``row + header_lines`` (itself when it has no row or a line already).

        Args:
            header_lines: lines of the file before data row 1 (1 under a header line, 0 for a headerless CSV).
        """
        if self.row is None or self.line is not None:
            return self
        return DataError(self.reason, path=self.path, row=self.row, line=self.row + header_lines)


class TimerError(PropdeskError):
    """A timer was set with invalid arguments (a time in the past for a one-shot, a non-positive interval, ...)."""
