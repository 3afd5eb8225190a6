"""Core: the message bus, clocks and timers, and the error hierarchy. Imports nothing else of propdesk."""
