"""Historical bars through ``History/retrieveBars``: the :class:`BarSource` protocol and its ProjectX implementation.

Source: ``../shared/specs/projectx-gateway-api.md`` section 3.4. ``limit`` is at most 20,000 and the server keeps the
*most recent* bars of ``[startTime, endTime]`` (newest first), so a long range is paged backwards: each page ends just
before the oldest bar of the previous one. Bars are deduplicated by start time, sorted, and cut to
``[start_ns, end_ns)``. ``t`` is taken as the bar's start (spec 10.10 lists it as unverified); a bar closes one
timeframe later (nominal 24 h for ``d``). Units: ``s`` -> 1 Second, ``m`` -> 2 Minute, ``h`` -> 3 Hour, ``d`` -> 4 Day.
The journal's bar cache wraps a :class:`BarSource`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import numpy as np

from propdesk.brokers.projectx.mapping import bar_unit
from propdesk.brokers.projectx.models import BarRow, RetrieveBarsRequest, format_ts
from propdesk.brokers.projectx.rest import ProjectXRest
from propdesk.model.data import BarSeries, Timeframe

logger = logging.getLogger(__name__)

MAX_PAGES = 50
"""Safety stop for paging (50 x 20,000 bars)."""


class BarSource(Protocol):
    """Anything that returns historical bars of a symbol over ``[start_ns, end_ns)`` (UTC ns)."""

    async def request_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """Bars of ``symbol`` whose start lies in ``[start_ns, end_ns)``, oldest first."""
        ...


ContractIdOf = Callable[[str], Awaitable[str]]
"""Resolves a symbol (``ESZ5``) to its ProjectX contract id through the API."""


class ProjectXBarSource:
    """:class:`BarSource` over ``History/retrieveBars`` (history rate budget, 30 / 30 s).

    Args:
        rest: the REST client.
        contract_id_of: symbol -> contract id.
        page_limit: ``limit`` per request (<= 20,000).
        live: the ``live`` flag of the request.
    """

    def __init__(
        self, rest: ProjectXRest, contract_id_of: ContractIdOf, *, page_limit: int = 20_000, live: bool = False
    ) -> None:
        self._rest = rest
        self._contract_id_of = contract_id_of
        self._limit = page_limit
        self._live = live
        self.requests = 0

    async def request_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> BarSeries:
        """See the module docstring.

        Raises:
            ApiError: ``ContractNotFoundError`` / ``InvalidRequestError`` from the server; ContractError for an
                unknown symbol.
        """
        contract_id = await self._contract_id_of(symbol)
        unit, number = bar_unit(timeframe)
        rows: dict[int, BarRow] = {}
        page_end = end_ns
        for _ in range(MAX_PAGES):
            if page_end < start_ns:
                break
            req = RetrieveBarsRequest(
                contract_id=contract_id,
                live=self._live,
                start_time=format_ts(start_ns),
                end_time=format_ts(page_end),
                unit=unit,
                unit_number=number,
                limit=self._limit,
                include_partial_bar=False,
            )
            self.requests += 1
            page = await self._rest.retrieve_bars(req)
            for b in page:
                rows[b.t] = b
            if len(page) < self._limit or not page:
                break
            oldest = min(b.t for b in page)
            if oldest <= start_ns:
                break
            page_end = oldest - 1000  # one microsecond before the oldest bar (the wire has microsecond precision)
        else:
            logger.warning("bars of %s %s: stopped after %s pages", symbol, timeframe, MAX_PAGES)
        ts = sorted(t for t in rows if start_ns <= t < end_ns)
        sel = [rows[t] for t in ts]
        t_open = np.array(ts, dtype=np.int64)
        return BarSeries(
            symbol,
            timeframe,
            t_open,
            t_open + timeframe.ns,
            np.array([float(b.o) for b in sel], dtype=np.float64),
            np.array([float(b.h) for b in sel], dtype=np.float64),
            np.array([float(b.l) for b in sel], dtype=np.float64),
            np.array([float(b.c) for b in sel], dtype=np.float64),
            np.array([b.v for b in sel], dtype=np.int64),
            source=f"projectx:{contract_id}",
        )
