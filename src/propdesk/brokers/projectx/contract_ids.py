"""ProjectX contract ids and symbol ids, mapped to and from propdesk's broker-neutral :class:`Contract`.

ProjectX names a product by its ``symbolId`` (``F.US.EP`` for ES) and one listed month by its contract id
``CON.F.US.EP.Z25`` (``CON.`` + symbol id + month code + two-digit year). Ids generated here always match the regex
real clients use, ``^CON\\.[A-Z]\\.[A-Z]{2}\\.(.+)\\.([FGHJKMNQUVXZ])(\\d{1,2})$`` (project-x-py
``client/contract_calendar.py``; ``/work/shared/specs/projectx-gateway-api.md`` section 1.2). A one-digit year in an
id is resolved like a listed symbol's (:func:`propdesk.model.symbology.resolve_year`).

Symbol ids per root (:data:`SYMBOL_IDS`), with their sources: ES ``F.US.EP`` and NQ ``F.US.ENQ`` from
projectx-gateway-api.md section 1.2 and project-x-py; MNQ ``F.US.MNQ`` from section 5.4's example and project-x-py;
MES from project-x-py and community TopstepX clients; the others from community TopstepX clients only (not in the
spec), e.g. ``CON.F.US.CLE.K26`` for CL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from propdesk.core.errors import ContractError
from propdesk.model.contracts import default_registry
from propdesk.model.identifiers import ContractId, Root, Symbol
from propdesk.model.symbology import Contract, contract, month_of_code, parse_symbol, resolve_year

__all__ = [
    "PROJECTX_CONTRACT_ID_RE",
    "SYMBOL_IDS",
    "contract_id",
    "contract_id_to_symbol",
    "parse",
    "parse_contract_id",
    "projectx_root",
    "root_of_symbol_id",
    "symbol_id",
    "symbol_to_contract_id",
    "to_contract_id",
]

PROJECTX_CONTRACT_ID_RE: Final[re.Pattern[str]] = re.compile(
    r"^CON\.([A-Z])\.([A-Z]{2})\.(.+)\.([FGHJKMNQUVXZ])(\d{1,2})$"
)
"""The ProjectX contract id grammar real clients rely on (project-x-py ``client/contract_calendar.py``)."""

SYMBOL_IDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ES": "F.US.EP",
        "MES": "F.US.MES",
        "NQ": "F.US.ENQ",
        "MNQ": "F.US.MNQ",
        "RTY": "F.US.RTY",
        "M2K": "F.US.M2K",
        "YM": "F.US.YM",
        "MYM": "F.US.MYM",
        "CL": "F.US.CLE",
        "MCL": "F.US.MCLE",
        "GC": "F.US.GCE",
        "MGC": "F.US.MGC",
        "6E": "F.US.EU6",
    }
)
"""ProjectX ``symbolId`` of each propdesk root (sources: the module docstring)."""

_ROOT_OF: Final[Mapping[str, str]] = MappingProxyType({v: k for k, v in SYMBOL_IDS.items()})


def symbol_id(root: str) -> str:
    """The ProjectX ``symbolId`` of ``root`` (``ES`` -> ``F.US.EP``).

    Raises:
        ContractError: ``root`` has no ProjectX symbol id (the message lists the roots that have one).
    """
    try:
        return SYMBOL_IDS[root]
    except KeyError:
        raise ContractError(f"root {root!r} has no ProjectX symbol id; known roots: {', '.join(SYMBOL_IDS)}") from None


def projectx_root(root: str) -> str:
    """The root inside ProjectX ids (``ES`` -> ``EP``, from ``F.US.EP``). Raises ContractError as :func:`symbol_id`."""
    return symbol_id(root).rsplit(".", 1)[1]


def root_of_symbol_id(sid: str) -> Root:
    """The propdesk root of a ProjectX ``symbolId`` (``F.US.EP`` -> ``ES``).

    Raises:
        ContractError: unknown symbol id (the message lists the known ones).
    """
    try:
        return Root(_ROOT_OF[sid])
    except KeyError:
        raise ContractError(f"unknown ProjectX symbol id {sid!r}; known: {', '.join(sorted(_ROOT_OF))}") from None


def contract_id(c: Contract) -> ContractId:
    """The ProjectX contract id of ``c`` (ESZ5 of 2025 -> ``CON.F.US.EP.Z25``). Raises ContractError (no symbol id)."""
    return ContractId(f"CON.{symbol_id(c.root)}.{c.month_code}{c.year % 100:02d}")


def to_contract_id(root: str, month: int | str, year: int) -> ContractId:
    """The ProjectX contract id of ``root`` / ``month`` / ``year`` (``("ES", "Z", 2025)`` -> ``CON.F.US.EP.Z25``).

    Raises:
        ContractError: as :func:`propdesk.model.symbology.contract`, or the root has no ProjectX symbol id.
    """
    return contract_id(contract(root, month, year))


def parse_contract_id(cid: str, ref_ns: int | None = None) -> Contract:
    """Parse a ProjectX contract id: ``CON.F.US.EP.Z25`` -> ESZ5, ``CON.F.US.ENQ.H26`` -> NQH6.

    A one-digit year (the client regex allows it) is resolved with ``ref_ns`` (UTC ns, default now) like a symbol's.

    Raises:
        ContractError: the id does not match :data:`PROJECTX_CONTRACT_ID_RE`, names an unknown ProjectX symbol id,
            or a month outside the product's cycle.
    """
    if not isinstance(cid, str):
        raise ContractError(f"contract id {cid!r} is not a string")
    m = PROJECTX_CONTRACT_ID_RE.match(cid)
    if m is None:
        raise ContractError(
            f"malformed ProjectX contract id {cid!r}: expected CON.F.US.<root>.<month code><year>, e.g. CON.F.US.EP.Z25"
        )
    kind, region, px_root, code, digits = m.groups()
    try:
        root = root_of_symbol_id(f"{kind}.{region}.{px_root}")
        default_registry().spec(root)
        return Contract(root, resolve_year(digits, ref_ns), month_of_code(code))
    except ContractError as exc:
        raise ContractError(f"contract id {cid!r}: {exc}") from None


def parse(text: str, ref_ns: int | None = None) -> Contract:
    """Parse either a ProjectX contract id (``CON.`` prefix) or a listed symbol (``ESZ5``).

    Raises:
        ContractError: as :func:`parse_contract_id` / :func:`propdesk.model.symbology.parse_symbol`.
    """
    if isinstance(text, str) and text.startswith("CON."):
        return parse_contract_id(text, ref_ns)
    return parse_symbol(text, ref_ns)


def symbol_to_contract_id(symbol: str, ref_ns: int | None = None) -> ContractId:
    """``ESZ5`` -> ``CON.F.US.EP.Z25`` (one-digit year resolved with ``ref_ns``). Raises ContractError."""
    return contract_id(parse_symbol(symbol, ref_ns))


def contract_id_to_symbol(cid: str, ref_ns: int | None = None) -> Symbol:
    """``CON.F.US.EP.Z25`` -> ``ESZ5``. Raises ContractError."""
    return parse_contract_id(cid, ref_ns).symbol
