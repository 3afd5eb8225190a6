"""Shared test helpers (one copy each): servers on loopback ports, ..."""
