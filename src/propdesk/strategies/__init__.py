"""Strategies: the :class:`~propdesk.strategies.base.Strategy` base class and the bundled strategies."""
