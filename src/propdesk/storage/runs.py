"""Strategy runs on one journal database: their statuses, who owns a running run, when a run counts as aborted, and
which run a restart continues.

Statuses (``strategy_runs.status``, :data:`STATUSES`):

* ``running``: its process runs it;
* ``completed``: it reached its end (the end of a replay's or a backtest's data; a live session's ``--duration`` or
  ``--bars``);
* ``stopped``: it ended on request before that (Ctrl-C);
* ``failed``: it ended with an error;
* ``aborted``: its process died without ending it (``kill -9``, a crash, a power cut); found at the next start.

**Owner and lease.** A running run records its owner - the host name, the pid and (Linux) the process's start time,
so a pid reused by a later process is told apart - and a heartbeat (UTC ns) its journal refreshes every
:data:`HEARTBEAT_S` seconds. Whenever a run starts on the database (and whenever a journal writer starts: it migrates
the schema, then sweeps), every ``running`` run is checked (:func:`sweep_runs`):

* owned by this host: aborted when its process is gone (no such pid, a zombie, or the pid now held by a process
  started at another time);
* owned by another host, or with no owner recorded (rows from before revision 0002): aborted when its last heartbeat
  (else its start) is older than :data:`LEASE_S` seconds.

So a run that is genuinely running beside the new one - alive on this host, or heartbeating from another - is never
marked aborted. An aborted run's ``ended_ns`` is its last heartbeat (the last moment it was known alive), else its
start.

**Continuing a killed replay.** A replay is identified by its inputs (:func:`run_key_of`, computed by
:meth:`propdesk.sessions.replay.RunSession.run_key`: the file (path, size, modification time), the strategy and its
parameters, the window, the contract, the account, the starting balance, the simulated exchange's and the risk
configuration; not the speed, which does not change its fills). When the newest run with the same key is ``aborted``, a
new start continues it (:func:`claim_run`): the same run id, ``running`` again, the new owner, ``attempts`` + 1. The
replay is deterministic and plays from its first bar again: its fills are journaled under the same venue session (the
run id) with the same trade ids, its orders under the same client order ids (the run token is derived from the run id),
so what the killed attempt journaled is not written twice and the run ends with every fill exactly once. A completed,
stopped or failed replay is not continued (the same inputs start a new run), nor is a backtest or a live session (a
live account's fills are identified by the broker's trade ids within the account, whatever run journals them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlalchemy import Connection, Table, func, insert, select, update

from propdesk.core.errors import ConfigError
from propdesk.storage import rows as rw
from propdesk.storage.models import FillRow, OrderRow, StrategyRun

__all__ = [
    "ABORTED",
    "COMPLETED",
    "FAILED",
    "HEARTBEAT_S",
    "LEASE_S",
    "RUNNING",
    "RUN_SEMANTICS",
    "STATUSES",
    "STOPPED",
    "RunInfo",
    "RunOwner",
    "claim_run",
    "is_abandoned",
    "list_runs",
    "owner_alive",
    "process_start",
    "resolve_run",
    "run_key_of",
    "run_token_of",
    "sweep_runs",
]

log = logging.getLogger("propdesk.storage.runs")

RUNNING: Final = "running"
COMPLETED: Final = "completed"
STOPPED: Final = "stopped"
FAILED: Final = "failed"
ABORTED: Final = "aborted"
STATUSES: Final = (RUNNING, COMPLETED, STOPPED, FAILED, ABORTED)
"""Every run status (module docstring)."""

HEARTBEAT_S: Final = 10.0
"""How often a running run's journal refreshes its heartbeat (seconds)."""

LEASE_S: Final = 120.0
"""How old the heartbeat of a run owned by another host (or by no recorded owner) may be before the run counts as
aborted (seconds): twelve missed heartbeats, so a busy or briefly stalled node keeps its run."""

RUN_SEMANTICS: Final = (
    f"status: running (its process holds it: alive on this host, or a heartbeat within {LEASE_S:.0f} s from "
    "another host), completed, stopped (Ctrl-C), failed, aborted (its process died; marked at the next start). "
    "A restart of the same replay (same file, strategy, params, window, account) continues its aborted run under "
    "the same id (starts: how often a run was started). A fill is unique per (account, venue session, broker trade "
    "id): a simulated exchange's venue session is its run id, a broker's (ProjectX) is empty (its trade ids are "
    "unique in the account)."
)
"""The semantics ``propdesk db info`` prints above the runs."""

_RUNS: Table = StrategyRun.__table__  # type: ignore[assignment]
_FILLS: Table = FillRow.__table__  # type: ignore[assignment]
_ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
_COLUMNS: Final = tuple(c.name for c in _RUNS.columns)


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` (Linux: clock ticks after boot, field 22 of ``/proc/<pid>/stat``), or
    ``None`` where it cannot be read (no such process, another system)."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state letter, start time)`` of ``pid`` from ``/proc``, or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class RunOwner:
    """The process that runs a run: ``host`` (``socket.gethostname()``), ``pid``, ``pid_start``
    (:func:`process_start`, ``None`` where unknown)."""

    host: str
    pid: int
    pid_start: int | None

    @classmethod
    def current(cls) -> RunOwner:
        """This process."""
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_start(pid))


def owner_alive(host: str, pid: int | None, pid_start: int | None, *, this_host: str | None = None) -> bool | None:
    """Whether the owner ``(host, pid, pid_start)`` still runs: True or False for a process of this host (a zombie,
    or a pid now held by a process started at another time, counts as gone); ``None`` when it cannot be told here
    (another host, or a system without POSIX signals)."""
    here = socket.gethostname() if this_host is None else this_host
    if host != here or os.name != "posix":
        return None
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    stat = _proc_stat(pid)
    if stat is not None:
        state, start = stat
        if state in ("Z", "X") or (pid_start is not None and start != pid_start):
            return False
    return True


def is_abandoned(row: Any, *, now_ns: int, this_host: str | None = None, lease_s: float = LEASE_S) -> bool:
    """Whether the ``running`` run ``row`` (a ``strategy_runs`` row) has lost its process (module docstring)."""
    r = getattr(row, "_mapping", row)
    alive = owner_alive(r["host"], r["pid"], r["pid_start"], this_host=this_host) if r["host"] else None
    if alive is not None:
        return not alive
    last = r["heartbeat_ns"] if r["heartbeat_ns"] is not None else r["started_ns"]
    return bool(now_ns - int(last) > lease_s * 1e9)


def sweep_runs(
    conn: Connection, *, now_ns: int | None = None, this_host: str | None = None, lease_s: float = LEASE_S
) -> list[str]:
    """Mark every ``running`` run whose process is gone ``aborted`` (module docstring), inside the open transaction
    ``conn``; returns their ids. A run whose heartbeat moved meanwhile is left running.

    Raises:
        sqlalchemy errors: the database refused the reads or writes.
    """
    now = time.time_ns() if now_ns is None else now_ns
    t = _RUNS.c
    rows = conn.execute(
        select(t.id, t.host, t.pid, t.pid_start, t.heartbeat_ns, t.started_ns).where(t.status == RUNNING)
    ).all()
    aborted: list[str] = []
    for r in rows:
        if not is_abandoned(r, now_ns=now, this_host=this_host, lease_s=lease_s):
            continue
        beat = r.heartbeat_ns
        same_beat = t.heartbeat_ns.is_(None) if beat is None else t.heartbeat_ns == beat
        res = conn.execute(
            update(_RUNS)
            .where(t.id == r.id, t.status == RUNNING, same_beat)
            .values(status=ABORTED, ended_ns=beat if beat is not None else r.started_ns)
        )
        if res.rowcount:
            aborted.append(str(r.id))
            log.warning(
                "run %s was running in a process that is gone (pid %s on %s): marked aborted", r.id, r.pid, r.host
            )
    return aborted


def claim_run(conn: Connection, row: Mapping[str, Any]) -> tuple[rw.Row, bool]:
    """Record the start of the run ``row`` (:func:`propdesk.storage.rows.strategy_run_row`, with its owner, first
    heartbeat and ``run_key``) inside the open transaction ``conn``, or, when the newest run with the same
    ``run_key`` is ``aborted``, continue that run (module docstring): its id, ``running`` again, this row's owner and
    heartbeat, ``attempts`` + 1. Run :func:`sweep_runs` first, so a killed run is found. Returns the stored row (every
    column) and whether an aborted run was continued.

    Raises:
        sqlalchemy errors: the database refused the write (e.g. the run id exists).
    """
    t = _RUNS.c
    key = row.get("run_key")
    if key is not None:
        newest = conn.execute(select(_RUNS).where(t.run_key == key).order_by(t.started_ns.desc()).limit(1)).first()
        if newest is not None and newest.status == ABORTED:
            res = conn.execute(
                update(_RUNS)
                .where(t.id == newest.id, t.status == ABORTED)
                .values(
                    status=RUNNING,
                    ended_ns=None,
                    host=row["host"],
                    pid=row["pid"],
                    pid_start=row["pid_start"],
                    heartbeat_ns=row["heartbeat_ns"],
                    attempts=t.attempts + 1,
                )
            )
            if res.rowcount == 1:  # not continued by another start at the same moment
                stored = conn.execute(select(_RUNS).where(t.id == newest.id)).one()
                return {c: stored._mapping[c] for c in _COLUMNS}, True
    full = {c: row[c] for c in _COLUMNS}
    conn.execute(insert(_RUNS).values(**full))
    return full, False


def run_key_of(inputs: Mapping[str, Any]) -> str:
    """The identity of a replay: SHA-256 hex of its inputs as canonical JSON (module docstring)."""
    return hashlib.sha256(rw.canonical_json(dict(inputs)).encode()).hexdigest()


def run_token_of(run_id: str) -> str:
    """The client order id run token of the run ``run_id`` (:mod:`propdesk.execution.ids`): its first 9 hex digits,
    so a continued run issues the same client order ids as its killed attempt."""
    return run_id.replace("-", "")[:9].lower()


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run as ``propdesk db info`` lists it.

    Attributes:
        run_id, kind, status (:data:`STATUSES`), strategy, symbol, account_id.
        started_ns / ended_ns / heartbeat_ns: UTC ns (``ended_ns`` ``None`` while running).
        attempts: how many times it was started (1 + the restarts that continued it).
        fills / orders: rows of ``fills`` / ``orders`` journaled under it.
        host / pid: its owner.
        owner_gone: ``running`` but its process is gone (it is marked aborted at the next start).
    """

    run_id: str
    kind: str
    status: str
    strategy: str
    symbol: str
    account_id: int | None
    started_ns: int
    ended_ns: int | None
    heartbeat_ns: int | None
    attempts: int
    fills: int
    orders: int
    host: str
    pid: int | None
    owner_gone: bool

    def to_dict(self) -> dict[str, Any]:
        """The run as a JSON-ready dict (field names as above)."""
        return asdict(self)


def list_runs(conn: Connection, *, now_ns: int | None = None, this_host: str | None = None) -> list[RunInfo]:
    """Every run, oldest first, with its fill and order counts (read-only: nothing is marked aborted here)."""
    now = time.time_ns() if now_ns is None else now_ns
    fills: dict[str | None, int] = dict(
        conn.execute(select(_FILLS.c.run_id, func.count()).group_by(_FILLS.c.run_id)).all()
    )
    orders: dict[str | None, int] = dict(
        conn.execute(select(_ORDERS.c.run_id, func.count()).group_by(_ORDERS.c.run_id)).all()
    )
    out: list[RunInfo] = []
    for r in conn.execute(select(_RUNS).order_by(_RUNS.c.started_ns, _RUNS.c.id)):
        out.append(
            RunInfo(
                run_id=str(r.id),
                kind=str(r.kind),
                status=str(r.status),
                strategy=str(r.strategy),
                symbol=str(r.symbol),
                account_id=r.account_id,
                started_ns=int(r.started_ns),
                ended_ns=r.ended_ns,
                heartbeat_ns=r.heartbeat_ns,
                attempts=int(r.attempts),
                fills=int(fills.get(r.id, 0)),
                orders=int(orders.get(r.id, 0)),
                host=str(r.host),
                pid=r.pid,
                owner_gone=r.status == RUNNING and is_abandoned(r, now_ns=now, this_host=this_host),
            )
        )
    return out


def resolve_run(conn: Connection, ident: str) -> str:
    """The id of the run ``ident`` names: its id, or a prefix of exactly one run's id.

    Raises:
        ConfigError: no run, or several, match (the message says which).
    """
    t = _RUNS.c
    ident = ident.strip()
    if not ident:
        raise ConfigError("--run needs a run id (propdesk db info lists the runs)")
    ids = [str(r[0]) for r in conn.execute(select(t.id).where(t.id.startswith(ident, autoescape=True)).limit(3))]
    if ident in ids:
        return ident
    if not ids:
        raise ConfigError(f"no run {ident!r} in the journal (propdesk db info lists the runs)")
    if len(ids) > 1:
        more = ", ..." if len(ids) > 2 else ""
        raise ConfigError(f"run {ident!r} is ambiguous: {', '.join(ids[:2])}{more} (give more of the id)")
    return ids[0]
