"""The risk rules R1-R16 and personal rules, each a small plugin (see :mod:`propdesk.risk.rules.base`)."""
