"""The risk daemon (``propdesk risk``): a strategy-less trading node with the risk engine, guarding a broker
account against every trade, including trades placed by hand at the broker, and the manual-trade script used with
the simulated broker. Its live status view is :mod:`propdesk.console.risk_daemon`.

It is a session (it wires a node), not part of ``risk/``, which may import only ``core``, ``model`` and
``execution`` (ARCHITECTURE.md).
"""
