"""Execution: the order manager, the position manager and the portfolio (positions, PnL, exposure)."""
