"""Tests of the risk rules R1-R16 (propdesk.risk.rules)."""
