"""The HTML report of a backtest (plotly): one self-contained file.

The page holds a summary table of the metrics (:func:`propdesk.backtest.cli_support.summary_rows`) and one plotly
figure with four panels sharing the time axis (UTC):

1. **price**: candlesticks when the run has at most ``candles_max`` bars; otherwise a line through the high/low
   envelope, downsampled to at most ``max_points`` points (each bucket of bars contributes its highest high and its
   lowest low, in time order, so every extreme of the series stays visible). **Every** closed round trip's entry and
   exit is marked (entries ▲ long / ▼ short, exits ✕ green for a win, red for a loss, hover for the details), and the
   entry fills of a position still open at the end are marked ◆.
2. **equity**: mark-to-market account equity (USD) at every bar close, downsampled keeping each bucket's minimum and
   maximum (so the drawdown's trough and the peaks are exact).
3. **drawdown**: equity minus its running peak (USD, <= 0), downsampled the same way.
4. **daily PnL**: the change of equity over each CME trading day (17:00 America/Chicago boundaries, as in
   :mod:`propdesk.backtest.metrics`), one bar per day labelled with the day's date (Chicago).

With a risk preset (``--risk``) the equity panel also shows the MLL floor in force each trading day and the
profit-target balance, the HALTED stretches shaded (the routine R11 flat-time halts in grey, any other in red) and
markers with hover text at each lockout, denied order and flatten (:mod:`propdesk.risk.outcomes`); the page states the
Combine evaluation's verdict and its reasons in words (:mod:`propdesk.backtest.evaluation`) above the figure, and
tables of the trading state timeline, the lockouts, the orders denied by rule and the flattens below it.

The page ends with the trade list: one row per closed round trip (times in CT, prices in points, USD exact).

plotly.js is written into the file (``plotly_js="inline"``, the default: the file works offline) or loaded from the
plotly CDN (``plotly_js="cdn"``, a much smaller file that needs the network to display).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from propdesk.backtest.cli_support import summary_rows
from propdesk.backtest.engine import BacktestResult
from propdesk.core.errors import ConfigError
from propdesk.core.timefmt import ct_date, fmt_ct_minutes
from propdesk.model.calendar import CalendarError, default_calendar
from propdesk.risk.outcomes import DenialTally, plain_reason

PlotlyJs = Literal["inline", "cdn"]

MAX_POINTS: Final[int] = 5_000
"""Default upper bound of points per line (price, equity, drawdown)."""

CANDLES_MAX: Final[int] = 2_000
"""Default: runs with at most this many bars are drawn as candlesticks; longer runs as an envelope line."""

FIGURE_DIV_ID: Final[str] = "propdesk-backtest-figure"
"""The ``id`` of the plotly figure's ``<div>`` in the report."""

_GREEN: Final = "#1a9850"
_RED: Final = "#d73027"

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _bucket_edges(n: int, buckets: int) -> IntArray:
    edges: IntArray = np.linspace(0, n, buckets + 1).astype(np.int64)
    return edges


def minmax_indices(values: npt.ArrayLike, max_points: int = MAX_POINTS) -> IntArray:
    """Indices (sorted, unique) of at most ``max_points`` points of ``values`` that keep its shape: the first and
    last point and, in each of ``(max_points - 2) // 2`` equal buckets, the minimum and the maximum.

    With ``len(values) <= max_points`` every index is returned.

    Raises:
        ConfigError: ``max_points`` < 4.
    """
    if max_points < 4:
        raise ConfigError(f"max_points must be at least 4, not {max_points}")
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    edges = _bucket_edges(n, (max_points - 2) // 2)
    picks = [0, n - 1]
    for a, b in itertools.pairwise(edges.tolist()):
        seg = y[a:b]
        picks.append(a + int(np.argmin(seg)))
        picks.append(a + int(np.argmax(seg)))
    out: IntArray = np.unique(np.asarray(picks, dtype=np.int64))
    return out


def envelope_line(high: npt.ArrayLike, low: npt.ArrayLike, max_points: int = MAX_POINTS) -> tuple[IntArray, FloatArray]:
    """A line through the high/low envelope of bars with at most ``max_points`` points: ``(bar_index, price)``.

    The bars are cut into ``max_points // 2`` equal buckets; each contributes the bar of its highest high (at the
    high) and the bar of its lowest low (at the low), in time order (high first when one bar is both). So the
    series' highest high and lowest low are always among the points. With ``2 * len(high) <= max_points`` every bar
    contributes its high and its low.

    Raises:
        ConfigError: ``max_points`` < 2, or ``high`` and ``low`` differ in length.
    """
    if max_points < 2:
        raise ConfigError(f"max_points must be at least 2, not {max_points}")
    hi = np.asarray(high, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    if hi.shape != lo.shape:
        raise ConfigError(f"high and low differ in length ({len(hi)} vs {len(lo)})")
    n = len(hi)
    buckets = min(n, max_points // 2)
    idx: list[int] = []
    px: list[float] = []
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    edges = _bucket_edges(n, buckets)
    for a, b in itertools.pairwise(edges.tolist()):
        i_hi = a + int(np.argmax(hi[a:b]))
        i_lo = a + int(np.argmin(lo[a:b]))
        for i, p in sorted(((i_hi, float(hi[i_hi])), (i_lo, float(lo[i_lo]))), key=lambda ip: ip[0]):
            idx.append(i)
            px.append(p)
    return np.asarray(idx, dtype=np.int64), np.asarray(px, dtype=np.float64)


def _times(ts_ns: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """UTC ns as naive ``datetime64[ns]`` (plotly draws them as UTC wall-clock times)."""
    out: npt.NDArray[np.datetime64] = np.asarray(ts_ns, dtype=np.int64).astype("datetime64[ns]")
    return out


def _usd(cents: int | float) -> float:
    return float(cents) / 100.0


def _chicago_date(ts_ns: int) -> str:
    return ct_date(ts_ns).isoformat()


def _daily(result: BacktestResult) -> tuple[list[int], list[float], list[str], list[float]]:
    """Per trading day: the x of its bar (mid time of the day's bars, UTC ns), the bar's width (ms, spanning the
    day's bars), the day's Chicago date (of its last bar) and its PnL (USD)."""
    curve = result.equity
    days = np.asarray(curve.trading_day, dtype=np.int64)
    ts = np.asarray(curve.ts_ns, dtype=np.int64)
    if len(days) == 0:
        return [], [], [], []
    bar_ns = result.bars.timeframe.ns
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:] - 1, len(days) - 1]
    span = {
        int(days[s]): (int(ts[s]) - bar_ns, int(ts[e])) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    }
    xs: list[int] = []
    widths: list[float] = []
    labels: list[str] = []
    pnl: list[float] = []
    for day, money in result.metrics.daily_pnl:
        first, last = span.get(int(day), (int(day), int(day) + bar_ns))
        xs.append((first + last) // 2)
        widths.append(0.9 * (last - first) / 1e6)
        labels.append(_chicago_date(last - 1))
        pnl.append(_usd(money.cents))
    return xs, widths, labels, pnl


def build_figure(
    result: BacktestResult, *, max_points: int = MAX_POINTS, candles_max: int = CANDLES_MAX, title: str | None = None
) -> Any:
    """The report's plotly figure (a ``plotly.graph_objects.Figure``; see the module docstring for the panels).

    Traces, by ``name``: ``price`` (candlestick or envelope line), ``entry long``, ``entry short``, ``exit``,
    ``open entry`` (only with an open position), ``equity``, ``drawdown``, ``daily PnL``. The marker traces hold one
    point per round trip (entries split by direction), in trip order.

    Raises:
        ConfigError: ``max_points`` < 4.
    """
    if max_points < 4:
        raise ConfigError(f"max_points must be at least 4, not {max_points}")
    bars = result.bars
    n = len(bars)
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.035,
        row_heights=[0.46, 0.2, 0.14, 0.2],
        subplot_titles=(
            f"{result.symbol} {bars.timeframe}: price and trades",
            "equity (USD)",
            "drawdown from peak (USD)",
            "daily PnL (USD, CME trading day)",
        ),
    )

    # 1. price
    if n <= candles_max:
        fig.add_trace(
            go.Candlestick(
                x=_times(bars.ts_open_ns),
                open=bars.open,
                high=bars.high,
                low=bars.low,
                close=bars.close,
                name="price",
                increasing_line_color="#4d4d4d",
                decreasing_line_color="#999999",
                showlegend=False,
            ),
            row=1,
            col=1,
        )
    else:
        idx, px = envelope_line(bars.high, bars.low, max_points)
        fig.add_trace(
            go.Scatter(
                x=_times(bars.ts_open_ns[idx]),
                y=px,
                mode="lines",
                name="price",
                line={"color": "#4d4d4d", "width": 1},
                hovertemplate="%{x}<br>%{y}<extra>high/low</extra>",
                showlegend=False,
            ),
            row=1,
            col=1,
        )
    trips = result.trips
    size = 9 if len(trips) <= 300 else 6
    for direction, name, symbol, color in (
        (1, "entry long", "triangle-up", _GREEN),
        (-1, "entry short", "triangle-down", _RED),
    ):
        picked = [(k, t) for k, t in enumerate(trips, 1) if t.direction == direction]
        fig.add_trace(
            go.Scatter(
                x=_times([t.entry_ts_ns for _, t in picked]),
                y=[float(t.entry_price) for _, t in picked],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": size, "color": color, "line": {"width": 0.5, "color": "#222"}},
                text=[f"#{k} {name} {t.qty} @ {t.entry_price}" for k, t in picked],
                hovertemplate="%{x}<br>%{text}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=_times([t.exit_ts_ns for t in trips]),
            y=[float(t.exit_price) for t in trips],
            mode="markers",
            name="exit",
            marker={
                "symbol": "x",
                "size": size - 1,
                "color": [_GREEN if t.net_pnl.cents > 0 else _RED for t in trips],
                "line": {"width": 0.5, "color": "#222"},
            },
            text=[
                f"#{k} exit {t.qty} @ {t.exit_price}<br>net {t.net_pnl.as_decimal()} USD "
                f"(gross {t.gross_pnl.as_decimal()}, fees {t.fees.as_decimal()})"
                for k, t in enumerate(trips, 1)
            ],
            hovertemplate="%{x}<br>%{text}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if result.open_qty:
        last_exit = trips[-1].exit_ts_ns if trips else None
        sign = 1 if result.open_qty > 0 else -1
        opens = [
            f
            for f in result.fills
            if (last_exit is None or f.ts_event_ns >= last_exit) and (f.signed_qty > 0) == (sign > 0)
        ]
        fig.add_trace(
            go.Scatter(
                x=_times([f.ts_event_ns for f in opens]),
                y=[float(f.price) for f in opens],
                mode="markers",
                name="open entry",
                marker={"symbol": "diamond", "size": 10, "color": "#fd8d3c", "line": {"width": 0.5, "color": "#222"}},
                text=[
                    f"open position {result.open_qty:+d}: fill {f.signed_qty:+d} @ {f.price}<br>"
                    f"unrealized {result.unrealized.as_decimal()} USD at the last close"
                    for f in opens
                ],
                hovertemplate="%{x}<br>%{text}<extra></extra>",
            ),
            row=1,
            col=1,
        )

    # 2. equity and 3. drawdown
    eq = np.asarray(result.equity.equity_cents, dtype=np.int64)
    ts = np.asarray(result.equity.ts_ns, dtype=np.int64)
    if len(eq):
        dd = eq - np.maximum.accumulate(np.maximum(eq, result.starting_balance.cents))
        i_eq = minmax_indices(eq, max_points)
        i_dd = minmax_indices(dd, max_points)
        fig.add_trace(
            go.Scatter(
                x=_times(ts[i_eq]),
                y=eq[i_eq] / 100.0,
                mode="lines",
                name="equity",
                line={"color": "#2166ac", "width": 1.2},
                showlegend=False,
            ),
            row=2,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=_times(ts[i_dd]),
                y=dd[i_dd] / 100.0,
                mode="lines",
                name="drawdown",
                fill="tozeroy",
                line={"color": _RED, "width": 1},
                showlegend=False,
            ),
            row=3,
            col=1,
        )

    if result.evaluation is not None:
        _add_evaluation_traces(fig, result)
    if result.outcomes is not None and len(eq):
        _add_risk_traces(fig, result, ts, eq)

    # 4. daily PnL
    xs, widths, labels, pnl = _daily(result)
    fig.add_trace(
        go.Bar(
            x=_times(xs),
            y=pnl,
            name="daily PnL",
            width=widths,
            marker_color=[_GREEN if v >= 0 else _RED for v in pnl],
            customdata=labels,
            hovertemplate="%{customdata}: %{y:,.2f} USD<extra></extra>",
            showlegend=False,
        ),
        row=4,
        col=1,
    )

    fig.update_layout(
        title=title,
        template="plotly_white",
        height=1500,
        margin={"l": 70, "r": 30, "t": 60 if title else 30, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0},
        hovermode="closest",
        xaxis_rangeslider_visible=False,
    )
    fig.update_xaxes(title_text="time (UTC)", row=4, col=1)
    return fig


def _add_evaluation_traces(fig: Any, result: BacktestResult) -> None:
    """With a risk preset: the MLL floor in force each trading day (a step line, from the day's session open) and
    the profit-target balance on the equity panel (traces ``MLL floor`` and ``profit target``)."""
    ev = result.evaluation
    assert ev is not None
    cal = default_calendar()
    xs: list[int] = []
    floors: list[float | None] = []
    for day in ev.days:
        try:
            xs.append(cal.day_start_ns(day.trading_date))
        except CalendarError:
            continue
        floors.append(None if day.mll_floor is None else _usd(day.mll_floor.cents))
    if xs and len(result.equity.ts_ns):
        xs.append(int(result.equity.ts_ns[-1]))
        floors.append(floors[-1])
        fig.add_trace(
            go.Scatter(
                x=_times(xs),
                y=floors,
                mode="lines",
                name="MLL floor",
                line={"color": _RED, "width": 1.2, "dash": "dash", "shape": "hv"},
                hovertemplate="%{x}<br>MLL floor %{y:,.2f} USD<extra></extra>",
            ),
            row=2,
            col=1,
        )
        if ev.profit_target is not None:
            level = _usd(ev.start_balance.cents + ev.profit_target.cents)
            fig.add_trace(
                go.Scatter(
                    x=_times([xs[0], xs[-1]]),
                    y=[level, level],
                    mode="lines",
                    name="profit target",
                    line={"color": _GREEN, "width": 1, "dash": "dot"},
                    hovertemplate="profit target %{y:,.2f} USD<extra></extra>",
                ),
                row=2,
                col=1,
            )


def _equity_at(ts: IntArray, eq: IntArray, when: Sequence[int]) -> list[float]:
    """The equity (USD) of the last point at or before each of ``when`` (UTC ns; the first point before the curve)."""
    idx = np.clip(np.searchsorted(ts, np.asarray(when, dtype=np.int64), side="right") - 1, 0, len(ts) - 1)
    return [float(v) / 100.0 for v in eq[idx]]


def _add_risk_traces(fig: Any, result: BacktestResult, ts: IntArray, eq: IntArray) -> None:
    """The risk engine's outcomes on the equity panel: shaded HALTED stretches (``halted``: a firm rule other than
    the routine R11 flat time, and ``halted (R11 flat time)``), and markers with hover text at each ``lockout`` set,
    ``order denied`` and ``flatten`` that closed a position (``flatten (already flat)`` for the others, hidden until
    clicked in the legend)."""
    outcomes = result.outcomes
    assert outcomes is not None
    lo, hi = float(eq.min()) / 100.0, float(eq.max()) / 100.0
    pad = max((hi - lo) * 0.05, 50.0)
    lo, hi = lo - pad, hi + pad
    end_ns = int(ts[-1])
    for name, color, routine in (
        ("halted (R11 flat time)", "rgba(120,120,120,0.18)", True),
        ("halted", "rgba(215,48,39,0.16)", False),
    ):
        xs: list[int | None] = []
        ys: list[float | None] = []
        hover: list[str | None] = []
        for h in outcomes.halts():
            if (h.rule_id == "R11") != routine:
                continue
            a, b = h.start_ns, h.end_ns if h.end_ns is not None else end_ns
            until = "the end of the data" if h.end_ns is None else _ct(b)
            text = f"HALTED {_ct(a)} to {until}<br>{h.rule_id or '-'}: {html.escape(plain_reason(h.reason))}"
            xs += [a, a, b, b, a, None]
            ys += [lo, hi, hi, lo, lo, None]
            hover += [text, text, text, text, text, None]
        if not xs:
            continue
        fig.add_trace(
            go.Scatter(
                x=[None if x is None else _times([x])[0] for x in xs],
                y=ys,
                mode="lines",
                fill="toself",
                fillcolor=color,
                line={"width": 0},
                name=name,
                text=hover,
                hoveron="fills+points",
                hovertemplate="%{text}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    lockouts = outcomes.lockouts
    denials = [(t, r, rule) for rule, d in outcomes.denials.items() for t, r in _denial_points(d)]
    closing = outcomes.flattens_with_fills()
    idle = [f for f in outcomes.flattens if not f.fills]
    for name, when, texts, symbol, color, visible in (
        (
            "lockout",
            [s.start_ns for s in lockouts],
            [
                f"lockout {s.rule_id} set {_ct(s.start_ns)}"
                + (f" (set {s.count} times)" if s.renewals else "")
                + f"<br>{html.escape(plain_reason(s.reason))}"
                for s in lockouts
            ],
            "square",
            "#7b3294",
            True,
        ),
        (
            "order denied",
            [t for t, _r, _rule in denials],
            [f"order denied by {rule}<br>{html.escape(plain_reason(r))}" for _t, r, rule in denials],
            "x-thin-open",
            "#fd8d3c",
            True,
        ),
        (
            "flatten",
            [f.ts_ns for f in closing],
            [
                f"flatten {f.rule_id or ''}: "
                + ", ".join(f"{x.side} {x.qty} {x.symbol} @ {x.price} [{x.tag}]" for x in f.fills)
                + f"<br>{html.escape(plain_reason(f.reason))}"
                for f in closing
            ],
            "diamond",
            "#000000",
            True,
        ),
        (
            "flatten (already flat)",
            [f.ts_ns for f in idle],
            [f"flatten {f.rule_id or ''} (already flat)<br>{html.escape(plain_reason(f.reason))}" for f in idle],
            "diamond-open",
            "#666666",
            False,
        ),
    ):
        if not when:
            continue
        fig.add_trace(
            go.Scatter(
                x=_times(when),
                y=_equity_at(ts, eq, when),
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 9, "color": color, "line": {"width": 1, "color": color}},
                text=texts,
                hovertemplate="%{x}<br>%{text}<extra></extra>",
                visible=True if visible else "legendonly",
            ),
            row=2,
            col=1,
        )


def _denial_points(d: DenialTally) -> list[tuple[int, str]]:
    """The denial markers of one rule: its examples and its last denial (the tally keeps no more)."""
    pts = list(d.examples)
    if d.count > len(pts) and d.last_ns not in {t for t, _ in pts}:
        pts.append((d.last_ns, f"{d.count:,} orders denied by {d.rule_id} in all, the last at {_ct(d.last_ns)}"))
    return pts


_ct = fmt_ct_minutes


def _evaluation_rows(result: BacktestResult) -> list[tuple[str, str]]:
    ev = result.evaluation
    if ev is None:
        return []
    rows = [("evaluation", f"{ev.status} ({ev.preset or 'personal rules'})"), ("days traded", str(ev.days_traded))]
    if ev.failure is not None:
        rows.append(("failed on", f"{ev.failure.trading_date} {ev.failure.rule_id}: {ev.failure.reason}"))
    if ev.target_reached_on is not None:
        rows.append(("profit target reached on", ev.target_reached_on.isoformat()))
    if ev.best_day_share is not None:
        rows.append(("best day / total profit", f"{ev.best_day_share * 100:.1f} %"))
    return rows


_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 12px 0; }}
table.summary {{ border-collapse: collapse; font-size: 13px; margin-bottom: 16px; }}
table.summary th, table.summary td {{ border: 1px solid #ddd; padding: 3px 10px; }}
table.summary th {{ text-align: left; background: #f5f5f5; font-weight: 600; }}
table.summary td {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.list {{ border-collapse: collapse; font-size: 12px; margin: 4px 0 18px 0; }}
table.list th, table.list td {{ border: 1px solid #ddd; padding: 2px 8px; vertical-align: top; }}
table.list th {{ background: #f5f5f5; text-align: left; }}
table.list td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.list tr.win td.pnl {{ color: #1a9850; }}
table.list tr.loss td.pnl {{ color: #d73027; }}
h2 {{ font-size: 16px; margin: 18px 0 6px 0; }}
.verdict {{ font-size: 14px; margin: 0 0 14px 0; padding: 8px 12px; border-left: 4px solid #d73027;
  background: #fdf3f2; }}
.verdict.passed {{ border-color: #1a9850; background: #f1f9f4; }}
.verdict ul {{ margin: 4px 0 0 0; padding-left: 20px; }}
.note {{ font-size: 12px; color: #666; }}
</style>
</head>
<body>
<h1>{title}</h1>
{verdict}<table class="summary" id="propdesk-summary">
{rows}
</table>
<p class="note">Figure times are UTC; table times are CT (America/Chicago). PnL is exact (whole ticks x tick value);
net PnL counts closed round trips only. Price line: {price_note}.</p>
{figure}
{risk}
<h2>Trades ({n_trades:,} closed round trips)</h2>
<table class="list" id="propdesk-trades">
<tr><th>#</th><th>tag</th><th>side</th><th>qty</th><th>entry (CT)</th><th>entry price</th><th>exit (CT)</th>
<th>exit price</th><th>gross USD</th><th>fees USD</th><th>net USD</th></tr>
{trades}
</table>
</body>
</html>
"""


def report_html(
    result: BacktestResult,
    *,
    plotly_js: PlotlyJs = "inline",
    max_points: int = MAX_POINTS,
    candles_max: int = CANDLES_MAX,
    title: str | None = None,
) -> str:
    """The report as one HTML document (see the module docstring).

    Raises:
        ConfigError: ``plotly_js`` is neither ``inline`` nor ``cdn``, or ``max_points`` < 4.
    """
    if plotly_js not in ("inline", "cdn"):
        raise ConfigError(f"plotly_js must be 'inline' or 'cdn', not {plotly_js!r}")
    head = title or f"Backtest: {result.strategy} on {result.symbol}"
    fig = build_figure(result, max_points=max_points, candles_max=candles_max)
    figure = fig.to_html(
        full_html=False,
        include_plotlyjs=True if plotly_js == "inline" else "cdn",
        div_id=FIGURE_DIV_ID,
        config={"displaylogo": False, "responsive": True},
    )
    rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in (*summary_rows(result), *_evaluation_rows(result))
    )
    n = len(result.bars)
    price_note = (
        f"candlesticks ({n:,} bars)"
        if n <= candles_max
        else f"high/low envelope of {n:,} bars in at most {max_points:,} points; every trade is marked"
    )
    return _PAGE.format(
        title=html.escape(head),
        rows=rows,
        price_note=price_note,
        figure=figure,
        verdict=_verdict_html(result),
        risk=_risk_html(result),
        n_trades=len(result.trips),
        trades=_trades_html(result),
    )


def _list_table(table_id: str, title: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML list table (cells escaped) under an ``h2`` title."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<h2>{html.escape(title)}</h2>\n<table class="list" id="{table_id}">\n<tr>{th}</tr>\n{body}\n</table>'


def _verdict_html(result: BacktestResult) -> str:
    """The evaluation's verdict and reasons in words (empty without a risk preset)."""
    ev = result.evaluation
    if ev is None:
        return ""
    status = ev.status.replace("_", " ")
    if ev.status == "in_progress" and ev.halted is not None and ev.halted.permanent:
        status += ", cannot pass"
    items = "".join(f"<li>{html.escape(r)}</li>" for r in ev.reasons)
    cls = "verdict passed" if ev.status == "passed" else "verdict"
    preset = html.escape(ev.preset or "personal rules")
    return f'<div class="{cls}" id="propdesk-verdict"><b>evaluation ({preset}): {status}</b><ul>{items}</ul></div>\n'


def _risk_html(result: BacktestResult) -> str:
    """The risk outcome tables: trading state timeline, lockouts, orders denied by rule, flattens that closed a
    position (empty without a risk engine)."""
    o = result.outcomes
    if o is None:
        return ""
    idle = len(o.flattens) - len(o.flattens_with_fills())
    end_ns = int(result.bars.ts_close_ns[-1]) if len(result.bars) else None
    parts = [
        _list_table(
            "propdesk-risk-timeline",
            "Trading state timeline",
            ("time (CT)", "from", "to", "rule", "why"),
            [(_ct(c.ts_ns), c.old, c.new, c.rule_id or "-", plain_reason(c.reason)) for c in o.timeline],
        ),
        _list_table(
            "propdesk-risk-lockouts",
            "Lockouts",
            ("rule", "set (CT)", "lifted (CT)", "times set", "reason"),
            [
                (
                    s.rule_id,
                    _ct(s.start_ns),
                    _lifted(s.expires_at_ns, end_ns),
                    str(s.count),
                    plain_reason(s.reason),
                )
                for s in o.lockouts
            ],
        ),
        _list_table(
            "propdesk-risk-denials",
            f"Orders denied ({o.denied:,})",
            ("rule", "orders", "first (CT)", "last (CT)", "example"),
            [
                (
                    d.rule_id,
                    f"{d.count:,}",
                    _ct(d.first_ns),
                    _ct(d.last_ns),
                    plain_reason(d.examples[0][1]) if d.examples else "",
                )
                for d in sorted(o.denials.values(), key=lambda d: -d.count)
            ],
        ),
        _list_table(
            "propdesk-risk-flattens",
            f"Flattens ({len(o.flattens):,}; {idle:,} found the account flat)",
            ("time (CT)", "rule", "closed (fill, tag)", "why"),
            [
                (
                    _ct(f.ts_ns),
                    f.rule_id or "-",
                    ", ".join(f"{x.side} {x.qty} {x.symbol} @ {x.price} [{x.tag}]" for x in f.fills),
                    plain_reason(f.reason),
                )
                for f in o.flattens_with_fills()
            ],
        ),
    ]
    return "\n".join(parts)


def _lifted(expires_at_ns: int | None, end_ns: int | None) -> str:
    """When a lockout was lifted, in words: ``never (failed)``, ``in force at the end of the data``, or the time."""
    if expires_at_ns is None:
        return "never (failed)"
    if end_ns is not None and expires_at_ns > end_ns:
        return "in force at the end of the data"
    return _ct(expires_at_ns)


def _trades_html(result: BacktestResult) -> str:
    """One ``<tr class="trade ...">`` per closed round trip (``win`` / ``loss`` / ``flat`` by net PnL)."""
    rows = []
    for k, t in enumerate(result.trips, 1):
        net = t.net_pnl.cents
        cls = "win" if net > 0 else "loss" if net < 0 else "flat"
        cells = (
            f'<td class="num">{k}</td><td>{html.escape(t.tag)}</td><td>{"long" if t.direction > 0 else "short"}</td>'
            f'<td class="num">{t.qty}</td><td>{_ct(t.entry_ts_ns)}</td><td class="num">{t.entry_price}</td>'
            f'<td>{_ct(t.exit_ts_ns)}</td><td class="num">{t.exit_price}</td>'
            f'<td class="num">{t.gross_pnl.as_decimal():,}</td><td class="num">{t.fees.as_decimal():,}</td>'
            f'<td class="num pnl">{t.net_pnl.as_decimal():,}</td>'
        )
        rows.append(f'<tr class="trade {cls}">{cells}</tr>')
    return "\n".join(rows)


def write_report(
    result: BacktestResult,
    path: str | Path,
    *,
    plotly_js: PlotlyJs = "inline",
    max_points: int = MAX_POINTS,
    candles_max: int = CANDLES_MAX,
    title: str | None = None,
) -> Path:
    """Write the backtest's HTML report (:func:`report_html`) to ``path`` (parents created); returns the path.

    Raises:
        ConfigError: bad options (see :func:`report_html`) or the file cannot be written (the message names it).
    """
    p = Path(path)
    text = report_html(result, plotly_js=plotly_js, max_points=max_points, candles_max=candles_max, title=title)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report {p}: {exc.strerror or exc}") from None
    return p
