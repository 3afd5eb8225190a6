"""Rich pieces shared by the consoles of ``propdesk run`` (:mod:`propdesk.console.replay`, :mod:`propdesk.console.live`)
and ``propdesk risk`` (:mod:`propdesk.console.risk_daemon`).

* :func:`run_under_live`: run a session under a Rich ``Live`` view redrawn a few times a second by an asyncio task on
  the session's own loop (so the state is read between events, never mid-update);
* :func:`cancel_and_wait`: cancel a helper task and wait for it to end;
* :func:`plain_writer`: the ``write(line)`` of the plain log-line modes (CI, pipes);
* :func:`summary_table`: the two-column end-of-run summary table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["cancel_and_wait", "plain_writer", "run_under_live", "summary_table"]

T = TypeVar("T")


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
