"""``DeskService``: the facade of ``propdesk serve`` over several accounts, each with its own :class:`Desk`.

**Routing.** :meth:`DeskService.execute` sends each command of :mod:`propdesk.model.commands` to the desk of its
``account_id`` (``None``: the only account; with several accounts a command without one, or naming an account the
service does not run, is denied as ``invalid`` with the accounts it knows). The strategy life-cycle commands
(``StartStrategy``, ``PauseStrategy``, ``StopStrategy``, ``UpdateStrategyParams``) go to the account of the named
instance. Queries (:meth:`accounts`, :meth:`positions`, :meth:`working_orders`, :meth:`fills`, :meth:`risk_status`)
concatenate the accounts' answers in account order, or answer for one account.

**Strategy instances** are named (the name is the orders' attribution tag), bound to one account and contract, and
managed at runtime: :class:`~propdesk.model.commands.AddStrategy` and
:class:`~propdesk.model.commands.RemoveStrategy` (handled here, idempotent like the desk's commands), start / pause /
stop and parameter changes through the account's desk (``UpdateStrategyParams`` with the expected version; the
strategy's ``on_params_changed`` decides what happens to its working orders).

**Persistence.** With a journal, every instance (account, contract, strategy reference, desired state, current
parameter version) and every parameter version (the full parameters, who, from where, why, when) is written through
the journal (:mod:`propdesk.storage.instances`: numbered events of the stream, in order with the orders and fills),
and :meth:`DeskService.restore` takes them back at the next start.

**Resuming.** An instance is put on its account's node only when the account is ready: reconciled with the broker
(:meth:`account_ready`, called by the session after its reconcile) and not locked out. Until then it *waits*
(:attr:`InstanceView.waiting` says why: the reconcile, or the lockout and when it lifts) and the session calls
:meth:`resume_waiting` as the account's clock moves; commands on a waiting instance change its stored desired state
and parameters, which it resumes with.

Loop-thread only (the desks' thread), like :class:`Desk`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from propdesk.core.errors import PropdeskError
from propdesk.core.timefmt import iso_utc
from propdesk.model.commands import (
    ACCEPTED,
    IDEMPOTENCY_CONFLICT,
    INSTANCE_NAME_RE,
    INVALID,
    NOT_LIVE,
    VERSION_CONFLICT,
    AddStrategy,
    Command,
    CommandResult,
    PauseStrategy,
    RemoveStrategy,
    StartStrategy,
    StopStrategy,
    StrategyState,
    SubmitOrder,
    UpdateStrategyParams,
    Verdict,
)
from propdesk.model.symbology import spec_for_symbol
from propdesk.storage.instances import instance_row, param_version_row
from propdesk.strategies.registry import resolve_strategy

if TYPE_CHECKING:
    from propdesk.execution.portfolio import StrategySummary
    from propdesk.model.events import OrderFilled
    from propdesk.model.positions import PositionSnapshot
    from propdesk.node.desk import AccountSummary, Desk, OrderView, RuleStatus
    from propdesk.storage.instances import StoredInstance
    from propdesk.storage.rows import Row
    from propdesk.strategies.base import Strategy

__all__ = [
    "WAIT_RECONCILE",
    "DeskService",
    "InstanceSpec",
    "InstanceView",
    "RecordRows",
]

log = logging.getLogger("propdesk.node.service")

WAIT_RECONCILE: Final[str] = "waiting for the account's reconcile"
""":attr:`InstanceView.waiting` before the account's first clean reconcile."""
_FIXED: Final[frozenset[str]] = frozenset({"symbol", "tag", "timeframe"})
_STATE_OF: Final[dict[type[Command], StrategyState]] = {
    StartStrategy: StrategyState.RUNNING,
    PauseStrategy: StrategyState.PAUSED,
    StopStrategy: StrategyState.STOPPED,
}

RecordRows = Callable[[list[tuple[str, "Row"]], int], object]
"""Writes ``(table, row)`` pairs through the journal for an account (:meth:`Journal.record_rows
<propdesk.storage.journal.Journal.record_rows>`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSpec:
    """An instance the service starts with (from the configuration, or as stored): ``name``, ``strategy``
    reference, ``account_id``, ``symbol`` (``""``: the account's contract), ``params`` (JSON values), ``state``."""

    name: str
    strategy: str
    account_id: int
    symbol: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    state: StrategyState = StrategyState.RUNNING


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceView:
    """One instance now: its ``state`` (the desired state: what it runs in once on the node), parameter ``version``
    and ``params``, and ``waiting`` (``""`` on the node, else why it is not yet: the reconcile, or a lockout)."""

    name: str
    account_id: int
    strategy: str
    symbol: str
    state: StrategyState
    version: int
    params: dict[str, Any]
    waiting: str


@dataclass(slots=True)
class _Instance:
    name: str
    account_id: int
    strategy: str
    symbol: str
    state: StrategyState
    version: int
    params: dict[str, Any]
    created_ns: int
    waiting: str = WAIT_RECONCILE
    on_node: bool = False
    failed: bool = False  # could not be put on its node: not retried until a command changes it


@dataclass(slots=True)
class _Account:
    desk: Desk
    symbol: str
    ready: bool = False


def _deny(rule_id: str, reason: str) -> Verdict:
    return Verdict(accepted=False, rule_id=rule_id, reason=reason)


class DeskService:
    """Several accounts' desks behind one facade (see the module docstring).

    Args:
        desks: ``(desk, contract)`` per account, in display order: each desk's node trades one account; the contract
            is what an instance without a symbol (or naming the contract's root) trades.
        record_rows: writes rows through the journal (``None``: instances are not stored).
        clock: wall time, UTC ns (the ``ts_ns`` of stored rows).

    Raises:
        ValueError: two desks trade the same account.
    """

    def __init__(
        self,
        desks: Sequence[tuple[Desk, str]],
        *,
        record_rows: RecordRows | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._accounts: dict[int, _Account] = {}
        for desk, symbol in desks:
            aid = int(desk.node.account_id)
            if aid in self._accounts:
                raise ValueError(f"two desks trade account {aid}")
            self._accounts[aid] = _Account(desk, symbol)
        self._record_rows = record_rows
        self._clock = clock
        self._instances: dict[str, _Instance] = {}
        self._removed: dict[str, int] = {}  # name -> its last stored version (a new instance continues after it)
        self._results: dict[str, tuple[tuple[object, ...], CommandResult]] = {}

    # ------------------------------------------------------------------------------------------------ accounts

    @property
    def account_ids(self) -> tuple[int, ...]:
        """The accounts, in display order."""
        return tuple(self._accounts)

    def desk(self, account_id: int | None = None) -> Desk:
        """The desk of ``account_id`` (``None``: the only account).

        Raises:
            ValueError: no such account, or ``None`` with several accounts.
        """
        return self._account(account_id).desk

    def _account(self, account_id: int | None) -> _Account:
        if account_id is None:
            if len(self._accounts) == 1:
                return next(iter(self._accounts.values()))
            raise ValueError(f"the service runs several accounts: name one ({self._known()})")
        entry = self._accounts.get(int(account_id))
        if entry is None:
            raise ValueError(f"the service runs no account {account_id} ({self._known()})")
        return entry

    def _known(self) -> str:
        return "accounts " + ", ".join(str(a) for a in self._accounts)

    def _now(self, account_id: int | None = None) -> int:
        """The account's node clock (UTC ns), else the first account's."""
        entry = self._accounts.get(account_id) if account_id is not None else None
        entry = entry or next(iter(self._accounts.values()), None)
        return self._clock() if entry is None else entry.desk.node.clock.timestamp_ns()

    # ------------------------------------------------------------------------------------------------ commands

    def execute(self, command: Command) -> CommandResult:
        """Route ``command`` (see the module docstring) and return its result at once. Never raises for a bad
        command: a denial with rule id ``invalid`` (an unknown account, instance or strategy, a bad parameter)."""
        name = type(command).__name__
        if isinstance(command, (AddStrategy, RemoveStrategy)):
            return self._idempotent(command, self._add if isinstance(command, AddStrategy) else self._remove)
        if isinstance(command, (StartStrategy, PauseStrategy, StopStrategy, UpdateStrategyParams)):
            inst = self._instances.get(command.strategy)
            if inst is None:
                return self._result(command, _deny(INVALID, f"{name}: no strategy instance {command.strategy!r}"))
            if command.account_id is not None and command.account_id != inst.account_id:
                reason = f"{name}: instance {inst.name} trades account {inst.account_id}, not {command.account_id}"
                return self._result(command, _deny(INVALID, reason))
            if not inst.on_node or command.idempotency_key in self._results:  # a key first used while it waited
                return self._idempotent(command, self._on_waiting)
            result = self._accounts[inst.account_id].desk.execute(command)
            if result.accepted and not result.replayed:
                self._after_desk(inst, command)
            return result
        try:
            entry = self._account(command.account_id)
        except ValueError as exc:
            return self._result(command, _deny(INVALID, f"{name}: {exc}"))
        return entry.desk.execute(command)

    def dry_run(self, command: SubmitOrder) -> CommandResult:
        """The verdict and the USD at risk of ``command`` on its account's desk (:meth:`Desk.dry_run`); nothing is
        sent."""
        try:
            entry = self._account(command.account_id)
        except ValueError as exc:
            return self._result(command, _deny(INVALID, f"SubmitOrder: {exc}"), dry_run=True)
        return entry.desk.dry_run(command)

    def _idempotent(self, command: Command, handle: Callable[[Any], CommandResult]) -> CommandResult:
        key = command.idempotency_key
        name = type(command).__name__
        if not isinstance(key, str) or not key.strip():
            return self._result(command, _deny(INVALID, f"{name}: an idempotency key is required"))
        content = command.content()
        seen = self._results.get(key)
        if seen is not None:
            first_content, first = seen
            if first_content == content:
                return replace(first, replayed=True)
            reason = f"idempotency key {key!r} was already used by a different {first.command} command"
            return self._result(command, _deny(IDEMPOTENCY_CONFLICT, reason))
        try:
            result = handle(command)
        except (PropdeskError, ValueError) as exc:
            result = self._result(command, _deny(INVALID, f"{name}: {exc}"))
        self._results[key] = (content, result)
        return result

    def _result(self, command: Command, verdict: Verdict, *, dry_run: bool = False) -> CommandResult:
        return CommandResult(
            idempotency_key=command.idempotency_key,
            command=type(command).__name__,
            verdict=verdict,
            dry_run=dry_run,
            ts_ns=self._now(command.account_id),
        )

    # --- instances ----------------------------------------------------------------------------------------

    def _symbol_for(self, entry: _Account, symbol: str) -> str:
        """``symbol``, or the account's contract for ``""`` or the contract's root."""
        if not symbol or symbol == entry.symbol:
            return entry.symbol
        if spec_for_symbol(entry.symbol).root == symbol.upper():
            return entry.symbol
        spec_for_symbol(symbol)  # a malformed or unknown contract: ContractError (a PropdeskError)
        return symbol

    def _add(self, c: AddStrategy) -> CommandResult:
        if not INSTANCE_NAME_RE.match(c.name):
            reason = f"AddStrategy: instance name {c.name!r} must match {INSTANCE_NAME_RE.pattern}"
            return self._result(c, _deny(INVALID, reason))
        if c.name in self._instances:
            return self._result(c, _deny(INVALID, f"AddStrategy: an instance named {c.name!r} exists"))
        entry = self._account(c.account_id)
        aid = int(entry.desk.node.account_id)
        symbol = self._symbol_for(entry, c.symbol)
        strategy = _build(c.strategy, dict(c.params), c.name, symbol)  # ConfigError: a bad reference or parameter
        version = self._removed.pop(c.name, 0) + 1
        inst = _Instance(
            name=c.name,
            account_id=aid,
            strategy=c.strategy,
            symbol=symbol,
            state=c.state,
            version=version,
            params=strategy.config.model_dump(mode="json"),
            created_ns=self._clock(),
        )
        if entry.ready and not self._lockout_text(aid):
            entry.desk.add_strategy(strategy, symbol, version=version, state=c.state)  # ConfigError: timeframe
            inst.on_node, inst.waiting = True, ""
        else:
            inst.waiting = self._lockout_text(aid) if entry.ready else WAIT_RECONCILE
        self._instances[c.name] = inst
        self._store(inst, changed_by=c.changed_by, source=c.source or "desk", reason=c.reason or "added")
        return self._result(c, ACCEPTED)

    def _remove(self, c: RemoveStrategy) -> CommandResult:
        inst = self._instances.get(c.name)
        if inst is None:
            return self._result(c, _deny(INVALID, f"RemoveStrategy: no strategy instance {c.name!r}"))
        if inst.state is not StrategyState.STOPPED:
            reason = f"RemoveStrategy: instance {c.name} is {inst.state.value}: stop it first"
            return self._result(c, _deny(INVALID, reason))
        if inst.on_node:
            self._accounts[inst.account_id].desk.remove_strategy(inst.name)
        del self._instances[c.name]
        self._removed[c.name] = inst.version
        self._write([self._instance_row(inst, "removed")], inst.account_id)
        return self._result(c, ACCEPTED)

    def _on_waiting(self, c: StartStrategy | PauseStrategy | StopStrategy | UpdateStrategyParams) -> CommandResult:
        """A command on an instance not yet on its node: its stored desired state or parameters change (an instance
        that could not start is tried again at the next resume)."""
        inst = self._instances[c.strategy]
        inst.failed = False
        if not isinstance(c, UpdateStrategyParams):
            if isinstance(c, PauseStrategy) and inst.state is StrategyState.STOPPED:
                return self._result(c, _deny(INVALID, f"PauseStrategy: {c.strategy} is stopped (start it first)"))
            if inst.state is not _STATE_OF[type(c)]:
                inst.state = _STATE_OF[type(c)]
                self._write([self._instance_row(inst)], inst.account_id)
            return self._result(c, ACCEPTED)
        if c.expected_version != inst.version:
            reason = (
                f"strategy {c.strategy}: parameters are at version {inst.version}, not {c.expected_version} "
                "(changed since they were read)"
            )
            return self._result(c, _deny(VERSION_CONFLICT, reason))
        cls = resolve_strategy(inst.strategy).config_cls
        try:
            new = cls.model_validate({**inst.params, **dict(c.params)}).model_dump(mode="json")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<params>'}: {err['msg']}" for err in exc.errors()
            )
            return self._result(c, _deny(INVALID, f"strategy {c.strategy}: {problems}"))
        changed = {k for k in new if new[k] != inst.params.get(k)}
        fixed = sorted(changed & _FIXED)
        if fixed:
            reason = f"strategy {c.strategy}: {', '.join(fixed)} are fixed when the strategy is wired"
            return self._result(c, _deny(NOT_LIVE, reason))
        if changed:
            inst.params, inst.version = new, inst.version + 1
            self._store(inst, changed_by=c.changed_by, source=c.source or "desk", reason=c.reason)
        return self._result(c, ACCEPTED)

    def _after_desk(self, inst: _Instance, c: Command) -> None:
        """Store what an accepted desk command changed: the desired state, or a new parameter version."""
        if isinstance(c, UpdateStrategyParams):
            view = next((v for v in self.desk(inst.account_id).strategies() if v.tag == inst.name), None)
            if view is not None and view.version != inst.version:
                inst.version = view.version
                inst.params = _jsonable(view.params)
                self._store(inst, changed_by=c.changed_by, source=c.source or "desk", reason=c.reason)
            return
        state = _STATE_OF.get(type(c))
        if state is not None and state is not inst.state:
            inst.state = state
            self._write([self._instance_row(inst)], inst.account_id)

    # --- resuming -----------------------------------------------------------------------------------------

    def restore(self, stored: Iterable[StoredInstance], initial: Iterable[InstanceSpec] = ()) -> list[str]:
        """Take the journal's instances (``stored``: they win) and the configured ones not stored yet
        (``initial``: stored as version 1 with source ``config``) as this service's; each waits for its account
        (:meth:`account_ready`). Call before any command. Returns a warning per instance left out (its account is
        not in the service, or its strategy cannot be built)."""
        warnings: list[str] = []
        for s in stored:
            if s.desired_state == "removed":
                self._removed[s.name] = s.version
                continue
            if s.account_id not in self._accounts:
                warnings.append(f"instance {s.name}: account {s.account_id} is not in the service; left out")
                continue
            try:
                state = StrategyState(s.desired_state)
                _build(s.strategy, s.params, s.name, s.symbol)
            except (PropdeskError, ValueError) as exc:
                warnings.append(f"instance {s.name}: {exc}; left out")
                continue
            self._instances[s.name] = _Instance(
                name=s.name,
                account_id=s.account_id,
                strategy=s.strategy,
                symbol=s.symbol,
                state=state,
                version=s.version,
                params=dict(s.params),
                created_ns=s.created_ns,
            )
        for spec in initial:
            if spec.name in self._instances or spec.name in self._removed:
                continue
            try:
                entry = self._account(spec.account_id)
                symbol = self._symbol_for(entry, spec.symbol)
                strategy = _build(spec.strategy, spec.params, spec.name, symbol)
            except (PropdeskError, ValueError) as exc:
                warnings.append(f"instance {spec.name}: {exc}; left out")
                continue
            inst = _Instance(
                name=spec.name,
                account_id=spec.account_id,
                strategy=spec.strategy,
                symbol=symbol,
                state=spec.state,
                version=1,
                params=strategy.config.model_dump(mode="json"),
                created_ns=self._clock(),
            )
            self._instances[spec.name] = inst
            self._store(inst, changed_by="", source="config", reason="configured")
        for w in warnings:
            log.warning("%s", w)
        return warnings

    def account_ready(self, account_id: int) -> list[str]:
        """The account is reconciled: its waiting instances that may resume do (:meth:`resume_waiting`)."""
        self._account(account_id).ready = True
        return self.resume_waiting(account_id)

    def resume_waiting(self, account_id: int) -> list[str]:
        """Put the account's waiting instances on its node if it is reconciled and not locked out (else their
        ``waiting`` says why); returns the names put on the node. An instance that cannot be put on its node stays
        waiting with the error (``cannot start: ...``) and is not tried again until a command on it."""
        entry = self._account(account_id)
        waiting = [i for i in self._instances.values() if i.account_id == account_id and not i.on_node and not i.failed]
        if not waiting:
            return []
        if not entry.ready:
            return []
        locked = self._lockout_text(account_id)
        resumed: list[str] = []
        for inst in waiting:
            if locked:
                inst.waiting = locked
                continue
            try:
                strategy = _build(inst.strategy, inst.params, inst.name, inst.symbol)
                entry.desk.add_strategy(strategy, inst.symbol, version=inst.version, state=inst.state)
            except (PropdeskError, ValueError) as exc:
                inst.waiting = f"cannot start: {exc}"
                inst.failed = True
                log.warning("instance %s: %s", inst.name, inst.waiting)
                continue
            inst.on_node, inst.waiting = True, ""
            resumed.append(inst.name)
        return resumed

    def _lockout_text(self, account_id: int) -> str:
        """``""``, or why the account is locked out now (rule and end)."""
        risk = self._accounts[account_id].desk.risk
        if risk is None or not risk.running:
            return ""
        now = self._now(account_id)
        active = [lo for lo in risk.guard.lockouts if lo.active_at(now)]
        if not active:
            return ""
        parts = [
            f"{lo.rule_id} until {'further notice' if lo.expires_at_ns is None else iso_utc(lo.expires_at_ns)}"
            for lo in active
        ]
        return f"waiting: the account is locked out ({', '.join(parts)})"

    # --- persistence --------------------------------------------------------------------------------------

    def _instance_row(self, inst: _Instance, state: str | None = None) -> Row:
        return instance_row(
            name=inst.name,
            account_id=inst.account_id,
            strategy=inst.strategy,
            symbol=inst.symbol,
            desired_state=state or inst.state.value,
            version=inst.version,
            created_ns=inst.created_ns,
            updated_ns=self._clock(),
        )

    def _store(self, inst: _Instance, *, changed_by: str, source: str, reason: str) -> None:
        version = param_version_row(
            instance=inst.name,
            version=inst.version,
            params=inst.params,
            changed_by=changed_by,
            source=source,
            reason=reason,
            ts_ns=self._clock(),
        )
        self._write([self._instance_row(inst), version], inst.account_id)

    def _write(self, rows: list[Row], account_id: int) -> None:
        if self._record_rows is None:
            return
        tables = ("strategy_param_versions" if "instance" in r else "strategy_instances" for r in rows)
        self._record_rows(list(zip(tables, rows, strict=True)), account_id)

    # ------------------------------------------------------------------------------------------------ queries

    def instances(self) -> list[InstanceView]:
        """Every instance (on its node or waiting), by account then name."""
        return [
            InstanceView(
                name=i.name,
                account_id=i.account_id,
                strategy=i.strategy,
                symbol=i.symbol,
                state=self._state_on_node(i),
                version=i.version,
                params=dict(i.params),
                waiting=i.waiting,
            )
            for i in sorted(self._instances.values(), key=lambda i: (self.account_ids.index(i.account_id), i.name))
        ]

    def _state_on_node(self, inst: _Instance) -> StrategyState:
        if not inst.on_node:
            return inst.state
        view = next((v for v in self.desk(inst.account_id).strategies() if v.tag == inst.name), None)
        return inst.state if view is None else view.state

    def _desks(self, account_id: int | None) -> list[Desk]:
        return [e.desk for e in self._accounts.values()] if account_id is None else [self.desk(account_id)]

    def accounts(self, account_id: int | None = None) -> list[AccountSummary]:
        """Every account's summary (or one's), in display order."""
        return [a for d in self._desks(account_id) for a in d.accounts()]

    def positions(self, account_id: int | None = None) -> list[PositionSnapshot]:
        """Open positions of every account (or one), by account then symbol."""
        return [p for d in self._desks(account_id) for p in d.positions()]

    def working_orders(self, account_id: int | None = None) -> list[OrderView]:
        """Working orders of every account (or one), bracket children under their entries."""
        return [o for d in self._desks(account_id) for o in d.working_orders()]

    def fills(self, account_id: int | None = None) -> list[OrderFilled]:
        """Fills of every account (or one), by account then time."""
        return [f for d in self._desks(account_id) for f in d.fills()]

    def risk_status(self, account_id: int | None = None) -> dict[int, list[RuleStatus]]:
        """Each account's rules now (:meth:`Desk.risk_status`), by account id."""
        return {int(d.node.account_id): d.risk_status() for d in self._desks(account_id)}

    def strategy_stats(self, account_id: int | None = None) -> dict[int, dict[str, StrategySummary]]:
        """Per account, per strategy tag: PnL, fees, positions and fills (:meth:`Desk.strategy_stats`)."""
        return {int(d.node.account_id): d.strategy_stats() for d in self._desks(account_id)}


def _build(ref: str, params: dict[str, Any], name: str, symbol: str) -> Strategy:
    """The strategy ``ref`` with ``params``, tagged ``name``, on ``symbol``.

    Raises:
        ConfigError: an unresolvable reference, or an unknown or invalid parameter.
    """
    return resolve_strategy(ref).from_params({**params, "tag": name, "symbol": symbol})


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for k, v in params.items()}
