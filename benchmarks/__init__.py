"""Benchmark scripts (plain scripts with a ``main()``) and the peer runners they compare propdesk against."""
