"""Rich pieces shared by the consoles of ``propdesk run`` (:mod:`propdesk.console.replay`, :mod:`propdesk.console.live`)
and ``propdesk risk`` (:mod:`propdesk.console.risk_daemon`).

* :func:`run_under_live`: run a session under a Rich ``Live`` view redrawn a few times a second by an asyncio task on
  the session's own loop (so the state is read between events, never mid-update);
* :func:`cancel_and_wait`: cancel a helper task and wait for it to end;
* :func:`plain_writer`: the ``write(line)`` of the plain log-line modes (CI, pipes);
* :func:`summary_table`: the two-column end-of-run summary table;
* :class:`DeskReader`: the :class:`~propdesk.node.desk.Desk` queries the consoles read (a session's ``desk``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from propdesk.model.events import OrderFilled
    from propdesk.model.identifiers import ClientOrderId
    from propdesk.model.positions import PositionSnapshot
    from propdesk.node.desk import AccountSummary, OrderView, RuleStatus, StrategyView
    from propdesk.node.desk_views import PnlTotals, TradingDay
    from propdesk.risk.outcomes import RiskOutcomes

__all__ = ["DeskReader", "cancel_and_wait", "plain_writer", "run_under_live", "summary_table"]

T = TypeVar("T")


class DeskReader(Protocol):
    """The :class:`~propdesk.node.desk.Desk` queries the consoles and session summaries read (each returns the
    desk's account now; see the desk for the shapes)."""

    def accounts(self) -> list[AccountSummary]: ...
    def pnl(self) -> list[PnlTotals]: ...
    def positions(self) -> list[PositionSnapshot]: ...
    def all_positions(self) -> list[PositionSnapshot]: ...
    def working_orders(self) -> list[OrderView]: ...
    def order(self, client_order_id: ClientOrderId) -> OrderView | None: ...
    def fills(self) -> list[OrderFilled]: ...
    def risk_status(self) -> list[RuleStatus]: ...
    def trading_day(self) -> TradingDay | None: ...
    def strategies(self) -> list[StrategyView]: ...
    def risk_outcomes(self) -> RiskOutcomes | None: ...


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its ``CancelledError`` is swallowed)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_under_live(
    console: Console,
    render: Callable[[], RenderableType],
    run: Callable[[], Awaitable[T]],
    *,
    refresh_per_s: float,
    final: Callable[[T], RenderableType] | None = None,
) -> T:
    """Await ``run()`` under a Rich ``Live`` view on ``console`` showing ``render()``, redrawn ``refresh_per_s`` times a
    second; the last view (``final(result)`` if given, else ``render()``) stays on screen. Returns ``run()``'s result.

    Raises:
        Exception: whatever ``run()`` raises (the redraw task is stopped first).
    """
    period = 1.0 / refresh_per_s
    with Live(render(), console=console, auto_refresh=False, transient=False) as live:

        async def redraw() -> None:
            while True:
                await asyncio.sleep(period)
                live.update(render(), refresh=True)

        task = asyncio.create_task(redraw())
        try:
            result = await run()
        finally:
            await cancel_and_wait(task)
        live.update(render() if final is None else final(result), refresh=True)
    return result


def plain_writer(out: Console) -> Callable[[str], None]:
    """A ``write(line)`` that prints ``line`` on ``out`` as it is: no markup, no highlighting, no wrapping."""

    def write(line: str) -> None:
        out.print(line, highlight=False, markup=False, soft_wrap=True)

    return write


def summary_table(title: str, rows: Iterable[tuple[str, str | Text]]) -> Table:
    """A borderless two-column table titled ``title``: a dim label and its value on each row."""
    t = Table(title=title, show_header=False, box=None, padding=(0, 2))
    t.add_column(style="dim")
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    return t
