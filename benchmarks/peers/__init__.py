"""Peer backtesters run on the same bars as propdesk: backtrader and NautilusTrader (the ``bench`` extra).

* :mod:`benchmarks.peers.common`: :class:`PeerTrade` and :class:`PeerResult`, the shapes every runner returns.
* :mod:`benchmarks.peers.backtrader_sma`: :func:`run_backtrader_sma` (backtrader 1.9.78.123, next-open fills).
* :mod:`benchmarks.peers.nautilus_sma`: :func:`run_nautilus_sma` (NautilusTrader 1.221, fills on the signal bar).

Importing this package imports neither peer; each runner imports its library on first call and raises
``RuntimeError`` naming the extra to install when it is missing.
"""

from __future__ import annotations

from benchmarks.peers.common import PeerResult, PeerTrade, net_pnl_usd

__all__ = ["PeerResult", "PeerTrade", "net_pnl_usd"]
