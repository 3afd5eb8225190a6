"""The risk daemon (``propdesk risk``): a strategy-less trading node with the risk engine, guarding a broker
account against every trade, including trades placed by hand at the broker; its live status and the manual-trade
script used with the simulated broker.

It sits beside ``node.py`` (it wires a node), not inside ``risk/``, which may import only ``core``, ``model`` and
``execution`` (ARCHITECTURE.md).
"""
