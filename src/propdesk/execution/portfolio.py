"""The portfolio: an account-level view over the position manager -- balance, equity, day PnL, exposure.

Definitions (``../shared/specs/risk-rules.md`` §3.2-3.3; every figure includes fees, as Topstep's limits are "calculated
on the net profit and loss", https://help.topstep.com/en/articles/9823693):

* ``balance = starting_balance + realized PnL - fees`` since the portfolio was created (the realized balance);
* ``equity = balance + unrealized PnL`` (unrealized at the position manager's marks; unmarked positions count 0 --
  see :meth:`Portfolio.unmarked_symbols`);
* ``day realized net = day realized PnL - day fees`` since the last :meth:`Portfolio.reset_day` (called by the risk
  engine's session roll at 17:00 America/Chicago); ``day net = day realized net + unrealized``.

Exposure: signed contracts by root (``ESZ5`` and ``ESH6`` both count as ES), and mini-equivalents
``sum |qty| x weight`` (also a signed version), with the TopstepX weights of the contract table (10 micros = 1 mini,
https://help.topstep.com/en/articles/9221977) unless the caller overrides weights per root.

Amounts are exact :class:`~propdesk.model.price.Money` (integer cents); mini-equivalents are exact Decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from propdesk.execution.positions import PositionManager
from propdesk.model.identifiers import AccountId, Root
from propdesk.model.positions import PositionSnapshot
from propdesk.model.price import Money

__all__ = ["Portfolio", "StrategySummary"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategySummary:
    """One strategy's attributed results in one account.

    Attributes:
        tag: the strategy tag (``manual`` for trades placed by hand).
        realized_pnl: realized PnL gross of fees, USD (FIFO within the strategy's own fills).
        fees: fees of the strategy's fills, USD.
        unrealized_pnl: open PnL of the strategy's positions at the current marks, USD (unmarked count 0).
        open_positions: snapshots of the strategy's non-flat positions, by symbol.
        fill_count: fills attributed to the strategy.
    """

    tag: str
    realized_pnl: Money
    fees: Money
    unrealized_pnl: Money
    open_positions: tuple[PositionSnapshot, ...]
    fill_count: int

    @property
    def realized_net(self) -> Money:
        """Realized PnL net of fees, USD."""
        return self.realized_pnl - self.fees

    @property
    def total_pnl(self) -> Money:
        """Realized net of fees plus unrealized, USD."""
        return self.realized_pnl - self.fees + self.unrealized_pnl


class Portfolio:
    """The account-level view of one account (see the module docstring for the definitions).

    Args:
        positions: the node's position manager (the source of fills, positions and marks).
        account_id: the account this portfolio describes.
        starting_balance: the account balance before the first fill the manager sees, USD.
        weights: mini-equivalents per contract by root, overriding the contract table's ``topstepx_mini_weight``
            (e.g. ``{"MES": Decimal(1)}`` on a platform that counts micros 1:1, risk-rules.md R5).
        day_start_ts_ns: the start of the current trading day, UTC ns (informational; see :meth:`reset_day`).
    """

    def __init__(
        self,
        positions: PositionManager,
        account_id: AccountId,
        starting_balance: Money,
        *,
        weights: Mapping[str, Decimal] | None = None,
        day_start_ts_ns: int = 0,
    ) -> None:
        self._pm = positions
        self.account_id = account_id
        self.starting_balance = starting_balance
        self._weights: dict[str, Decimal] = dict(weights or {})
        t = positions.totals(account_id)
        self._base_realized = t.realized_cents
        self._base_fees = t.fees_cents
        self._base_fills = t.fill_count
        self._base_contracts = t.contracts
        self._day_realized = t.realized_cents
        self._day_fees = t.fees_cents
        self._day_fills = t.fill_count
        self._day_contracts = t.contracts
        self.day_start_ts_ns = day_start_ts_ns
        self.sod_balance = starting_balance
        """The balance at the start of the current trading day (set by :meth:`reset_day`)."""

    # ------------------------------------------------------------------ balance and equity

    def realized_pnl(self) -> Money:
        """Realized PnL gross of fees since the portfolio was created, USD."""
        return Money(self._pm.totals(self.account_id).realized_cents - self._base_realized)

    def fees(self) -> Money:
        """Fees since the portfolio was created, USD."""
        return Money(self._pm.totals(self.account_id).fees_cents - self._base_fees)

    def realized_net(self) -> Money:
        """Realized PnL net of fees since the portfolio was created, USD."""
        t = self._pm.totals(self.account_id)
        return Money(t.realized_cents - self._base_realized - t.fees_cents + self._base_fees)

    def balance(self) -> Money:
        """Starting balance plus realized PnL net of fees, USD."""
        return self.starting_balance + self.realized_net()

    def unrealized_cents(self) -> int:
        """Open PnL of the account's positions at the current marks, cents. O(open positions); for hot paths."""
        return self._pm.unrealized_cents(self.account_id)

    def unrealized_pnl(self) -> Money:
        """Open PnL of the account's positions at the current marks, USD (unmarked positions count 0)."""
        return Money(self._pm.unrealized_cents(self.account_id))

    def equity(self) -> Money:
        """Balance plus unrealized PnL, USD. O(open positions); cheap enough for every quote."""
        t = self._pm.totals(self.account_id)
        cents = self.starting_balance.cents + t.realized_cents - self._base_realized - t.fees_cents + self._base_fees
        return Money(cents + self._pm.unrealized_cents(self.account_id))

    def unmarked_symbols(self) -> list[str]:
        """Open symbols without a usable mark: their unrealized PnL is unknown (counted 0). Fail closed on these."""
        return self._pm.unmarked_symbols(self.account_id)

    # ------------------------------------------------------------------ the trading day

    def reset_day(self, ts_ns: int) -> None:
        """Start a new trading day at ``ts_ns`` (UTC ns): day PnL, fees and counts restart from zero and
        :attr:`sod_balance` becomes the current balance. Called by the risk engine's session roll."""
        t = self._pm.totals(self.account_id)
        self._day_realized = t.realized_cents
        self._day_fees = t.fees_cents
        self._day_fills = t.fill_count
        self._day_contracts = t.contracts
        self.day_start_ts_ns = ts_ns
        self.sod_balance = self.balance()

    def day_realized_pnl(self) -> Money:
        """Realized PnL gross of fees since the day started, USD."""
        return Money(self._pm.totals(self.account_id).realized_cents - self._day_realized)

    def day_fees(self) -> Money:
        """Fees since the day started, USD."""
        return Money(self._pm.totals(self.account_id).fees_cents - self._day_fees)

    def day_realized_net(self) -> Money:
        """Realized PnL net of fees since the day started, USD (risk-rules.md §3.2 ``realized_net``)."""
        t = self._pm.totals(self.account_id)
        return Money(t.realized_cents - self._day_realized - t.fees_cents + self._day_fees)

    def day_net_pnl(self) -> Money:
        """Day realized net of fees plus unrealized, USD (risk-rules.md §3.2 ``day_net``)."""
        return Money(self.day_realized_net().cents + self._pm.unrealized_cents(self.account_id))

    def day_fill_count(self) -> int:
        """Fills since the day started (each fill row counts, risk-rules.md §3.5)."""
        return self._pm.totals(self.account_id).fill_count - self._day_fills

    def day_contracts(self) -> int:
        """Contracts traded since the day started (sum of fill quantities)."""
        return self._pm.totals(self.account_id).contracts - self._day_contracts

    # ------------------------------------------------------------------ positions and exposure

    def open_positions(self) -> list[PositionSnapshot]:
        """Snapshots of the account's open positions (with unrealized PnL at the current marks), by symbol."""
        pm = self._pm
        return [p.snapshot(pm.position_unrealized(p)) for p in pm.open_positions(self.account_id)]

    def weight(self, symbol: str) -> Decimal:
        """Mini-equivalents per contract of ``symbol`` (the override for its root, else the table's TopstepX weight).

        Raises:
            ContractError: unknown symbol.
        """
        spec = self._pm.spec_of(symbol)
        w = self._weights.get(spec.root)
        return spec.topstepx_mini_weight if w is None else w

    def exposure_by_root(self) -> dict[Root, int]:
        """Signed contracts by root over the open positions (roots that net to 0 across months are kept as 0)."""
        out: dict[Root, int] = {}
        for pos in self._pm.iter_open(self.account_id):
            root = self._pm.spec_of(pos.symbol).root
            out[root] = out.get(root, 0) + pos.signed_qty
        return dict(sorted(out.items()))

    def mini_equivalents(self) -> Decimal:
        """Gross exposure in mini-equivalents: ``sum |qty| x weight`` over the open positions (3 MNQ + 1 NQ = 1.3)."""
        return sum((abs(p.signed_qty) * self.weight(p.symbol) for p in self._pm.iter_open(self.account_id)), Decimal(0))

    def signed_mini_equivalents(self) -> Decimal:
        """Net exposure in mini-equivalents: ``sum qty x weight`` (long positive, short negative)."""
        return sum((p.signed_qty * self.weight(p.symbol) for p in self._pm.iter_open(self.account_id)), Decimal(0))

    def mini_equivalents_by_root(self) -> dict[Root, Decimal]:
        """Gross mini-equivalents by root."""
        out: dict[Root, Decimal] = {}
        for pos in self._pm.iter_open(self.account_id):
            root = self._pm.spec_of(pos.symbol).root
            out[root] = out.get(root, Decimal(0)) + abs(pos.signed_qty) * self.weight(pos.symbol)
        return dict(sorted(out.items()))

    # ------------------------------------------------------------------ attribution

    def strategy_summaries(self) -> dict[str, StrategySummary]:
        """Per-strategy realized, fees, unrealized and open positions in this account, by tag.

        Summed over strategies: fees always equal the account's; realized + unrealized equal the account's when
        marked at one common price (``mark_mode="last"``); realized alone equals the account's once every strategy
        is flat (see :mod:`propdesk.execution.positions`).
        """
        pm = self._pm
        acc: dict[str, list[int]] = {}
        opens: dict[str, list[PositionSnapshot]] = {}
        for pos in pm.strategy_positions(self.account_id):
            tag = pos.tag or ""
            row = acc.setdefault(tag, [0, 0, 0, 0])
            row[0] += pos.realized_cents
            row[1] += pos.fees_cents
            row[3] += pos.fill_count
            if pos.signed_qty:
                upnl = pm.position_unrealized(pos)
                if upnl is not None:
                    row[2] += upnl.cents
                opens.setdefault(tag, []).append(pos.snapshot(upnl))
        return {
            tag: StrategySummary(
                tag=tag,
                realized_pnl=Money(r),
                fees=Money(f),
                unrealized_pnl=Money(u),
                open_positions=tuple(opens.get(tag, ())),
                fill_count=n,
            )
            for tag, (r, f, u, n) in sorted(acc.items())
        }
