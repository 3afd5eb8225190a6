"""Backtests: the runner, closed round trips, performance metrics, reports and the prop-firm evaluation."""
