"""``propdesk serve``'s strategy instances and their parameter versions in the journal's database.

Two tables (migration 0004, :class:`~propdesk.storage.models.StrategyInstanceRow` and
:class:`~propdesk.storage.models.StrategyParamVersionRow`):

* ``strategy_instances``: one row per named instance (account, contract, strategy reference, desired state, current
  parameter version, created and updated times, UTC ns), upserted by name;
* ``strategy_param_versions``: one row per parameter version of an instance (the full parameters as JSON, who, from
  where, why, when), never changed once written (insert-or-ignore).

The rows are written through the journal (:meth:`propdesk.storage.journal.Journal.record_rows`: in order with the
orders and fills around them, each one a numbered event of the stream); :func:`load_instances` and
:func:`param_history` read them back when the service starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select

from propdesk.storage.repositories import TABLES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.ext.asyncio import AsyncEngine

    from propdesk.storage.rows import Row

__all__ = [
    "INSTANCES_TABLE",
    "VERSIONS_TABLE",
    "ParamVersion",
    "StoredInstance",
    "instance_row",
    "load_instances",
    "param_history",
    "param_version_row",
]

INSTANCES_TABLE: Final[str] = "strategy_instances"
VERSIONS_TABLE: Final[str] = "strategy_param_versions"


def _json(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamVersion:
    """One stored parameter version: ``params`` (the full configuration, JSON values), ``changed_by``, ``source``,
    ``reason`` and ``ts_ns`` (UTC ns)."""

    instance: str
    version: int
    params: dict[str, Any]
    changed_by: str
    source: str
    reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredInstance:
    """One stored instance with the parameters of its current version (``params``; empty when that version's row is
    missing). ``desired_state``: ``running``, ``paused`` or ``stopped``; times UTC ns."""

    name: str
    account_id: int
    strategy: str
    symbol: str
    desired_state: str
    version: int
    params: dict[str, Any]
    created_ns: int
    updated_ns: int


def instance_row(
    *,
    name: str,
    account_id: int,
    strategy: str,
    symbol: str,
    desired_state: str,
    version: int,
    created_ns: int,
    updated_ns: int,
) -> Row:
    """The ``strategy_instances`` row of an instance (see the module docstring)."""
    return {
        "name": name,
        "account_id": int(account_id),
        "strategy": strategy,
        "symbol": symbol,
        "desired_state": desired_state,
        "params_version": int(version),
        "created_ns": int(created_ns),
        "updated_ns": int(updated_ns),
    }


def param_version_row(
    *,
    instance: str,
    version: int,
    params: Mapping[str, Any],
    changed_by: str,
    source: str,
    reason: str,
    ts_ns: int,
) -> Row:
    """The ``strategy_param_versions`` row of one version (``params`` as canonical JSON, keys sorted)."""
    return {
        "instance": instance,
        "version": int(version),
        "params": _json(params),
        "changed_by": changed_by,
        "source": source,
        "reason": reason,
        "ts_ns": int(ts_ns),
    }


async def load_instances(engine: AsyncEngine) -> list[StoredInstance]:
    """Every stored instance with the parameters of its current version, by creation time then name.

    Raises:
        sqlalchemy errors: the database cannot be read (migrated to 0004 or later is required).
    """
    inst, ver = TABLES[INSTANCES_TABLE], TABLES[VERSIONS_TABLE]
    q = (
        select(inst, ver.c.params)
        .select_from(inst.outerjoin(ver, (ver.c.instance == inst.c.name) & (ver.c.version == inst.c.params_version)))
        .order_by(inst.c.created_ns, inst.c.name)
    )
    async with engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(q)]
    return [
        StoredInstance(
            name=r["name"],
            account_id=int(r["account_id"]),
            strategy=r["strategy"],
            symbol=r["symbol"],
            desired_state=r["desired_state"],
            version=int(r["params_version"]),
            params={} if r["params"] is None else dict(json.loads(r["params"])),
            created_ns=int(r["created_ns"]),
            updated_ns=int(r["updated_ns"]),
        )
        for r in rows
    ]


async def param_history(engine: AsyncEngine, instance: str) -> list[ParamVersion]:
    """Every stored parameter version of ``instance``, oldest first.

    Raises:
        sqlalchemy errors: the database cannot be read.
    """
    ver = TABLES[VERSIONS_TABLE]
    async with engine.connect() as conn:
        rows = await conn.execute(select(ver).where(ver.c.instance == instance).order_by(ver.c.version))
        return [
            ParamVersion(
                instance=r.instance,
                version=int(r.version),
                params=dict(json.loads(r.params)),
                changed_by=r.changed_by,
                source=r.source,
                reason=r.reason,
                ts_ns=int(r.ts_ns),
            )
            for r in rows
        ]
