"""The ``propdesk`` command line: the Typer app (:mod:`propdesk.cli.app`) and its option parsing
(:mod:`propdesk.cli.options`). ``app`` is the console script's entry point (``propdesk = "propdesk.cli:app"``);
``main`` runs it for ``python -m propdesk``.
"""

from propdesk.cli.app import app, main

__all__ = ["app", "main"]
