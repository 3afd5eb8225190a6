"""Export the journal's fills and closed round trips ("trades") to CSV.

``fills.csv``: one row per journaled fill, oldest first: ``account_id, trade_id, client_order_id, ts_event_ns,
time_utc, symbol, side, qty, price, fee_usd, tag, reconciled``.

``trades.csv``: one row per closed round trip (flat to flat, per account, strategy tag and contract; a reversal
closes one and opens the next), built from the journaled fills by
:func:`propdesk.backtest.trades.round_trips` (exact PnL: whole ticks x tick value): ``account_id, symbol, tag,
direction, qty, entry_ts_ns, entry_time_utc, exit_ts_ns, exit_time_utc, entry_price, exit_price, gross_pnl_usd,
fees_usd, net_pnl_usd, fills``. Round trips still open at the end of the range are not listed.

Prices and money are exact decimal strings; times are UTC ns plus an ISO 8601 UTC rendering.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.core.errors import ConfigError
from propdesk.model.events import OrderFilled
from propdesk.storage.repositories import Repository

__all__ = ["FILL_COLUMNS", "TRADE_COLUMNS", "ExportResult", "export_csv", "write_fills_csv", "write_trades_csv"]

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
)
TRADE_COLUMNS = (
    "account_id",
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


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_csv` wrote: the two files and their row counts."""

    fills_path: Path
    trades_path: Path
    fills: int
    trades: int


def _iso(ts_ns: int) -> str:
    return (
        datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC)
        .replace(microsecond=(ts_ns // 1000) % 1_000_000)
        .isoformat()
    )


def write_fills_csv(fills: Iterable[OrderFilled], path: Path) -> int:
    """Write ``fills`` to ``path`` (see the module docstring); returns the row count."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(FILL_COLUMNS)
        for f in fills:
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
                ]
            )
            n += 1
    return n


def write_trades_csv(fills: list[OrderFilled], path: Path) -> int:
    """Build the closed round trips of ``fills`` (per account) and write them to ``path``; returns the row count.

    Raises:
        ContractError: a fill's symbol is not a known contract (its tick size and value are needed).
    """
    from propdesk.backtest.trades import round_trips  # noqa: PLC0415 - the export is the only user here
    from propdesk.execution.positions import spec_for_symbol  # noqa: PLC0415

    by_account: dict[int, list[OrderFilled]] = {}
    for f in fills:
        by_account.setdefault(int(f.account_id), []).append(f)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TRADE_COLUMNS)
        for account_id in sorted(by_account):
            for t in round_trips(by_account[account_id], spec_for_symbol):
                w.writerow(
                    [
                        account_id,
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
) -> ExportResult:
    """Write ``fills.csv`` and ``trades.csv`` of the journal into ``out_dir`` (created if missing).

    Raises:
        ConfigError: ``out_dir`` cannot be created or written.
        ContractError: a journaled symbol is unknown (trades need its tick size and value).
    """
    fills = await Repository(engine).fills(account_id, since_ns=since_ns, until_ns=until_ns)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fills_path = out_dir / "fills.csv"
        trades_path = out_dir / "trades.csv"
        n_fills = write_fills_csv(fills, fills_path)
        n_trades = write_trades_csv(fills, trades_path)
    except OSError as exc:
        raise ConfigError(f"cannot write the export to {out_dir}: {exc}") from None
    return ExportResult(fills_path, trades_path, n_fills, n_trades)
