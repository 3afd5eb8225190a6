"""Export the journal's fills and closed round trips ("trades") to CSV, of every run or of one (``run_id``).

``fills.csv``: one row per journaled fill, oldest first: ``account_id, trade_id, client_order_id, ts_event_ns,
time_utc, symbol, side, qty, price, fee_usd, tag, reconciled, run_id, venue_session`` (the run that journaled it and
the venue session its trade id is unique in: :mod:`propdesk.storage.models`).

``trades.csv``: one row per closed round trip (flat to flat, per account, venue session, strategy tag and contract; a
reversal closes one and opens the next), built from the journaled fills by the caller's ``trips_of`` (normally
:func:`propdesk.execution.round_trips.round_trips`; exact PnL: whole ticks x tick value): ``account_id, venue_session,
symbol, tag, direction, qty, entry_ts_ns, entry_time_utc, exit_ts_ns, exit_time_utc, entry_price, exit_price,
gross_pnl_usd, fees_usd, net_pnl_usd, fills``. The venue session keeps runs on a simulated exchange apart (each is its
own account history) while a broker account's fills form one history across the runs that journaled them. Round trips
still open at the end of the range are not listed.

Prices and money are exact decimal strings; times are UTC ns plus an ISO 8601 UTC rendering.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.errors import ConfigError
from propdesk.core.timefmt import ns_to_datetime
from propdesk.model.events import OrderFilled
from propdesk.model.price import Money, Price
from propdesk.storage.repositories import JournaledFill, Repository

__all__ = [
    "FILL_COLUMNS",
    "TRADE_COLUMNS",
    "ExportResult",
    "RoundTripLike",
    "TripsOf",
    "export_csv",
    "write_fills_csv",
    "write_trades_csv",
]

FILL_COLUMNS = (
    "account_id",
    "trade_id",
    "client_order_id",
    "ts_event_ns",
    "time_utc",
    "symbol",
    "side",
    "qty",
    "price",
    "fee_usd",
    "tag",
    "reconciled",
    "run_id",
    "venue_session",
)
TRADE_COLUMNS = (
    "account_id",
    "venue_session",
    "symbol",
    "tag",
    "direction",
    "qty",
    "entry_ts_ns",
    "entry_time_utc",
    "exit_ts_ns",
    "exit_time_utc",
    "entry_price",
    "exit_price",
    "gross_pnl_usd",
    "fees_usd",
    "net_pnl_usd",
    "fills",
)


class RoundTripLike(Protocol):
    """What ``trades.csv`` reads of one closed round trip (:class:`propdesk.execution.round_trips.RoundTrip` has it).

    ``direction``: +1 long, -1 short; ``qty``: contracts; times UTC ns; prices exact; money USD (exact cents).
    """

    @property
    def symbol(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def direction(self) -> int: ...
    @property
    def qty(self) -> int: ...
    @property
    def entry_ts_ns(self) -> int: ...
    @property
    def exit_ts_ns(self) -> int: ...
    @property
    def entry_price(self) -> Price: ...
    @property
    def exit_price(self) -> Price: ...
    @property
    def gross_pnl(self) -> Money: ...
    @property
    def fees(self) -> Money: ...
    @property
    def net_pnl(self) -> Money: ...
    @property
    def fills(self) -> int: ...


TripsOf = Callable[[list[OrderFilled]], Iterable[RoundTripLike]]
"""Builds the closed round trips of one account's fills (in order), e.g.
``lambda fills: round_trips(fills, spec_for_symbol)`` (:mod:`propdesk.execution.round_trips`)."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_csv` wrote: the two files and their row counts, and the run exported (``None``: all)."""

    fills_path: Path
    trades_path: Path
    fills: int
    trades: int
    run_id: str | None = None


def _iso(ts_ns: int) -> str:
    return ns_to_datetime(ts_ns).isoformat()


def _journaled(fills: Iterable[OrderFilled | JournaledFill]) -> Iterable[JournaledFill]:
    for f in fills:
        yield f if isinstance(f, JournaledFill) else JournaledFill(f, None, "")


def write_fills_csv(fills: Iterable[OrderFilled | JournaledFill], path: Path) -> int:
    """Write ``fills`` to ``path`` (see the module docstring; a bare :class:`OrderFilled` has no run and the empty
    venue session); returns the row count."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(FILL_COLUMNS)
        for j in _journaled(fills):
            f = j.fill
            w.writerow(
                [
                    int(f.account_id),
                    f.trade_id,
                    f.client_order_id,
                    f.ts_event_ns,
                    _iso(f.ts_event_ns),
                    f.symbol,
                    f.side.name,
                    f.qty,
                    str(f.price),
                    str(f.fee.as_decimal()),
                    f.tag,
                    f.reconciled,
                    j.run_id or "",
                    j.venue_session,
                ]
            )
            n += 1
    return n


def write_trades_csv(fills: list[OrderFilled] | list[JournaledFill], path: Path, trips_of: TripsOf) -> int:
    """Build the closed round trips of ``fills`` (per account and venue session) and write them to ``path``; returns
    the row count.

    Raises:
        ContractError: a fill's symbol is not a known contract (raised by ``trips_of``: tick size and value are
            needed).
    """
    histories: dict[tuple[int, str], list[OrderFilled]] = {}
    for j in _journaled(fills):
        histories.setdefault((int(j.fill.account_id), j.venue_session), []).append(j.fill)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TRADE_COLUMNS)
        for account_id, venue_session in sorted(histories):
            for t in trips_of(histories[account_id, venue_session]):
                w.writerow(
                    [
                        account_id,
                        venue_session,
                        t.symbol,
                        t.tag,
                        "LONG" if t.direction > 0 else "SHORT",
                        t.qty,
                        t.entry_ts_ns,
                        _iso(t.entry_ts_ns),
                        t.exit_ts_ns,
                        _iso(t.exit_ts_ns),
                        str(t.entry_price),
                        str(t.exit_price),
                        str(t.gross_pnl.as_decimal()),
                        str(t.fees.as_decimal()),
                        str(t.net_pnl.as_decimal()),
                        t.fills,
                    ]
                )
                n += 1
    return n


async def export_csv(
    engine: AsyncEngine,
    out_dir: Path,
    *,
    account_id: int | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    run_id: str | None = None,
    trips_of: TripsOf,
) -> ExportResult:
    """Write ``fills.csv`` and ``trades.csv`` of the journal into ``out_dir`` (created if missing): every fill, or
    those of one account, of one run (``run_id``: an id or a unique prefix of one, as ``propdesk db info`` lists
    them) and within ``[since_ns, until_ns)``; ``trips_of`` builds the round trips (see :data:`TripsOf`).

    Raises:
        ConfigError: ``out_dir`` cannot be created or written, or ``run_id`` names no run (or several).
        ContractError: a journaled symbol is unknown (trades need its tick size and value).
    """
    repo = Repository(engine)
    run = None if run_id is None else await repo.resolve_run(run_id)
    fills = await repo.journaled_fills(account_id, since_ns=since_ns, until_ns=until_ns, run_id=run)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fills_path = out_dir / "fills.csv"
        trades_path = out_dir / "trades.csv"
        n_fills = write_fills_csv(fills, fills_path)
        n_trades = write_trades_csv(fills, trades_path, trips_of)
    except OSError as exc:
        raise ConfigError(f"cannot write the export to {out_dir}: {exc}") from None
    return ExportResult(fills_path, trades_path, n_fills, n_trades, run)
