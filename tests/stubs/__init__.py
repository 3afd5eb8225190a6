"""Reusable in-memory stubs for tests (no mocks): ``tests.stubs.broker.StubBroker`` implements the Broker protocol."""
