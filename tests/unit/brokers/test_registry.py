"""The broker registry: names, lazy entries, settings validation and the factories of sim and projectx."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from propdesk.brokers import registry
from propdesk.brokers.base import Broker
from propdesk.brokers.projectx.broker import ProjectXBroker
from propdesk.brokers.projectx.config import ProjectXSettings
from propdesk.brokers.registry import BrokerEntry
from propdesk.brokers.sim.broker import SimBroker
from propdesk.brokers.sim.config import SimConfig
from propdesk.core.clock import Clock, SimClock
from propdesk.core.errors import ConfigError
from propdesk.model.identifiers import AccountId
from propdesk.model.price import Money
from tests.stubs.broker import StubBroker


class _StubSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: int = 0


def _stub_factory(settings: _StubSettings, *, account_id: AccountId, clock: Clock, **deps: Any) -> StubBroker:
    return StubBroker(account_id=account_id, ts_ns=clock.timestamp_ns())


@pytest.fixture
def stub_entry() -> Iterator[BrokerEntry]:
    entry = BrokerEntry("stub", _StubSettings, _stub_factory, "a test double")
    registry.register(entry)
    yield entry
    registry._REGISTRY.pop("stub")


def test_builtin_names_and_unknown_name_is_one_line() -> None:
    assert registry.names()[:2] == ("sim", "projectx")
    assert registry.get("projectx").live and not registry.get("sim").live
    with pytest.raises(ConfigError) as exc:
        registry.get("ib")
    assert str(exc.value) == "unknown broker 'ib'; known brokers: sim, projectx"


def test_sim_is_created_with_its_settings_and_deps() -> None:
    clock = SimClock(1_000)
    broker = registry.create(
        "sim",
        {"commission_per_side_usd": "0.50"},
        account_id=AccountId(7),
        clock=clock,
        starting_balance=Money.of(25_000),
    )
    assert isinstance(broker, SimBroker) and isinstance(broker, Broker)
    assert broker.account_id == 7 and broker.name == "sim"
    assert broker.config.commission_per_side_usd == Decimal("0.50")
    assert broker.account.balance == Money.of(25_000)
    cfg = SimConfig(slippage_ticks=2)
    assert registry.create("sim", cfg, account_id=AccountId(7), clock=clock).config is cfg  # type: ignore[attr-defined]


def test_projectx_is_created_from_its_settings_model() -> None:
    entry = registry.get("projectx")
    assert entry.settings_type() is ProjectXSettings
    settings = ProjectXSettings(username="u", api_key="k", api_base="http://127.0.0.1:1")  # type: ignore[arg-type]
    broker = entry.create(settings, account_id=AccountId(42), clock=SimClock(0))
    assert isinstance(broker, ProjectXBroker) and broker.account_id == 42 and broker.settings is settings


def test_settings_of_the_wrong_model_or_invalid_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="broker 'sim' takes SimConfig settings, not ProjectXSettings"):
        registry.create("sim", ProjectXSettings(), account_id=AccountId(1), clock=SimClock(0))
    with pytest.raises(ConfigError, match=r"^broker 'sim': slippage_ticks: "):
        registry.get("sim").settings({"slippage_ticks": -1})
    with pytest.raises(ConfigError, match=r"^broker 'sim': no_such_field: "):
        registry.get("sim").settings({"no_such_field": 1})


def test_a_new_broker_is_one_entry(stub_entry: BrokerEntry) -> None:
    assert "stub" in registry.names()
    broker = registry.create("stub", {"latency_ms": 5}, account_id=AccountId(3), clock=SimClock(99))
    assert isinstance(broker, StubBroker) and broker.account_id == 3
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(stub_entry)
    with pytest.raises(ConfigError, match="must be lower case"):
        registry.register(BrokerEntry("Bad Name", _StubSettings, _stub_factory))


def test_a_bad_path_is_a_config_error_naming_the_broker() -> None:
    entry = BrokerEntry("ghost", "propdesk.no_such_module:Settings", "propdesk.brokers.sim.broker:create_broker")
    with pytest.raises(ConfigError, match=r"broker 'ghost': settings model 'propdesk\.no_such_module:Settings'"):
        entry.settings_type()
    entry = BrokerEntry("ghost", SimConfig, "propdesk.brokers.sim.config:SimConfig.nothing")
    with pytest.raises(ConfigError, match="broker 'ghost': factory"):
        entry.factory_fn()


def test_listing_and_validating_names_imports_no_broker() -> None:
    code = (
        "import sys; from propdesk.brokers import registry; registry.get('projectx'); registry.names(); "
        "print(sorted(m for m in sys.modules if m.startswith('propdesk.brokers.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['propdesk.brokers.registry']"
