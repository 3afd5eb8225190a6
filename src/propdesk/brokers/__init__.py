"""Brokers: the translation layer between propdesk's model and a venue (the simulated exchange, ProjectX)."""
