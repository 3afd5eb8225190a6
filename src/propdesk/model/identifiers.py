"""Identifier value types.

They are :class:`typing.NewType` aliases of ``str``/``int``: free at run time, distinct to the type checker, so a
``Symbol`` (``ESZ5``) is never passed where a ``ContractId`` (``CON.F.US.EP.Z25``) is expected. Parsing and
validation of contract ids and symbols lives in :mod:`propdesk.model.contracts`.
"""

from __future__ import annotations

from typing import NewType

Root = NewType("Root", str)
"""A product root, e.g. ``ES``, ``MNQ``, ``6E``."""

Symbol = NewType("Symbol", str)
"""A listed contract symbol with a one-digit year, e.g. ``ESZ5``."""

ContractId = NewType("ContractId", str)
"""A broker's contract id, e.g. ProjectX ``CON.F.US.EP.Z25``."""

AccountId = NewType("AccountId", int)
"""A broker account id."""

ClientOrderId = NewType("ClientOrderId", str)
"""propdesk's own order id, unique per account; sent to ProjectX as ``customTag`` (an idempotency key)."""

BrokerOrderId = NewType("BrokerOrderId", int)
"""The broker's order id (ProjectX ``orderId``, an int64)."""
