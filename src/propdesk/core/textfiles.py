"""Reading configuration files (TOML, JSON) with one clear :class:`~propdesk.core.errors.ConfigError` per failure.

Every failure of reading or parsing a configuration file, whatever its cause (a missing file, a directory, bytes
that are not UTF-8, a syntax error, nesting deeper than the parser's recursion allows), becomes a ``ConfigError``
whose message is ``"<where>: <reason>"``, so the CLI prints one line naming the file and what was wrong.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from propdesk.core.errors import ConfigError

__all__ = ["parse_json", "parse_toml", "read_utf8"]


def read_utf8(path: Path, where: str) -> str:
    """The text of ``path`` decoded as UTF-8.

    Args:
        path: the file.
        where: how messages name it, e.g. ``"risk config /etc/risk.toml"``.

    Raises:
        ConfigError: ``"<where>: does not exist"``, ``"<where>: is a directory, not a file"``,
            ``"<where>: is not UTF-8 text (byte 0xff at offset 0)"`` or ``"<where>: cannot read (<OS reason>)"``.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where}: is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read ({exc.strerror or exc})") from None


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """``text`` parsed as TOML.

    Raises:
        ConfigError: ``"<where>: invalid TOML (<parser's reason>)"``, or ``"<where>: invalid TOML (nested too deeply
            to parse)"`` when the nesting exceeds Python's recursion limit.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid TOML (nested too deeply to parse)") from None


def parse_json(text: str, where: str) -> Any:
    """``text`` parsed as JSON.

    Raises:
        ConfigError: ``"<where>: invalid JSON (<parser's reason>)"``, or ``"<where>: invalid JSON (nested too deeply
            to parse)"`` when the nesting exceeds Python's recursion limit.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid JSON (nested too deeply to parse)") from None
