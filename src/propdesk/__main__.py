"""``python -m propdesk`` runs the CLI."""

from propdesk.cli import main

main()
