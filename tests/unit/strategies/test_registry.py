"""The strategy registry: every spec form (bundled, installed, module:Class, file.py:Class), its one-line errors,
building from string parameters, and the live-changeable marks of the parameter schema."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from propdesk.core.errors import ConfigError
from propdesk.strategies.base import Strategy, StrategyConfig, config_schema, live_fields
from propdesk.strategies.mean_reversion import MeanReversion
from propdesk.strategies.overnight_range import OvernightRange
from propdesk.strategies.registry import (
    ENTRY_POINT_GROUP,
    STRATEGIES,
    available_strategies,
    build_strategy,
    get_strategy,
    resolve_strategy,
    resolve_strategy_info,
)
from propdesk.strategies.sma_cross import SmaCross, SmaCrossConfig
from propdesk.strategies.trend_following import TrendFollowing


def test_bundled_strategies_are_registered_under_their_names() -> None:
    expected = {
        "sma_cross": SmaCross,
        "overnight_range": OvernightRange,
        "mean_reversion": MeanReversion,
        "trend_following": TrendFollowing,
    }
    assert expected == STRATEGIES
    for name, cls in STRATEGIES.items():
        assert get_strategy(name) is cls
        assert cls.name == name
        assert issubclass(cls.config_cls, StrategyConfig)
        assert cls.config_cls is not StrategyConfig  # each has its own documented parameters
        assert cls.__doc__ and cls.config_cls.__doc__


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_strategy("sma_crossover")
    msg = str(err.value)
    assert "sma_crossover" in msg
    for name in STRATEGIES:
        assert name in msg


def test_build_strategy_coerces_and_validates() -> None:
    strat = build_strategy("sma_cross", {"fast": "5", "slow": "15", "tag": "ref"})
    assert isinstance(strat, SmaCross)
    assert isinstance(strat.config, SmaCrossConfig)
    assert (strat.config.fast, strat.config.slow, strat.tag) == (5, 15, "ref")
    with pytest.raises(ConfigError, match="slow"):
        build_strategy("sma_cross", {"slow": "ten"})
    with pytest.raises(ConfigError, match="nope"):
        build_strategy("nope", {})


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_builds_with_defaults(name: str) -> None:
    strat = build_strategy(name, {})
    assert isinstance(strat, Strategy)
    assert strat.tag == name


# --- specs: module:Class, file.py:Class, installed entry points -----------------------------------------------

STRATEGY_SOURCE = '''
from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from propdesk.model.data import Bar
from propdesk.strategies.base import Strategy, StrategyConfig


class CounterConfig(StrategyConfig):
    """Parameters of Counter."""

    every: int = Field(default=3, ge=1, description="act every N bars", json_schema_extra={"live": True})
    period: int = Field(default=5, ge=1, description="bars in a window")


class Counter(Strategy):
    """Counts bars (a test strategy)."""

    name: ClassVar[str] = "counter"
    config_cls: ClassVar[type[StrategyConfig]] = CounterConfig

    def on_bar(self, bar: Bar) -> None:
        pass


class NoName(Strategy):
    config_cls: ClassVar[type[StrategyConfig]] = CounterConfig


class NoConfig(Strategy):
    name: ClassVar[str] = "no_config"


class BadConfig(Strategy):
    name: ClassVar[str] = "bad_config"
    config_cls = dict


class NotAStrategy:
    pass


def helper() -> int:
    return 1
'''


def write_module(directory: Path, name: str, source: str = STRATEGY_SOURCE) -> Path:
    path = directory / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    return path


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path; the modules imported from it are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(("pd_test_", "propdesk_user_strategy_")):
            del sys.modules[name]


def test_module_spec_resolves_and_builds(module_dir: Path) -> None:
    write_module(module_dir, "pd_test_mod_a")
    info = resolve_strategy_info("pd_test_mod_a:Counter")
    assert info.cls.__name__ == "Counter" and info.cls.__module__ == "pd_test_mod_a"
    assert (info.spec, info.source, info.origin) == ("pd_test_mod_a:Counter", "module", "pd_test_mod_a:Counter")
    assert info.description == "Counts bars (a test strategy)."
    strat = build_strategy("pd_test_mod_a:Counter", {"every": "7", "qty": "2"})
    assert strat.name == "counter" and strat.tag == "counter"
    assert (strat.config.every, strat.config.qty) == (7, 2)  # type: ignore[attr-defined]
    assert get_strategy("pd_test_mod_a:Counter") is info.cls


def test_file_spec_resolves_builds_and_loads_once(tmp_path: Path) -> None:
    path = write_module(tmp_path, "my-strats")  # not an importable name: loaded by path under a unique module name
    spec = f"{path}:Counter"
    info = resolve_strategy_info(spec)
    assert (info.source, info.origin) == ("path", str(path))
    assert info.cls.__module__.startswith("propdesk_user_strategy_") and info.cls.__module__.endswith("my_strats")
    assert sys.modules[info.cls.__module__].__file__ == str(path.resolve())
    assert resolve_strategy(spec) is info.cls  # the same file gives the same class
    strat = build_strategy(spec, {"every": "4"})
    assert type(strat) is info.cls and strat.config.every == 4  # type: ignore[attr-defined]
    # two files with the same name in different directories are two modules
    other = tmp_path / "sub"
    other.mkdir()
    assert resolve_strategy(f"{write_module(other, 'my-strats')}:Counter") is not info.cls


def test_relative_file_spec_is_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "strats").mkdir()
    write_module(tmp_path / "strats", "rel")
    monkeypatch.chdir(tmp_path)
    assert resolve_strategy("strats/rel.py:Counter").__name__ == "Counter"


def test_unknown_param_of_a_file_strategy_lists_the_valid_keys(tmp_path: Path) -> None:
    spec = f"{write_module(tmp_path, 'keys')}:Counter"
    with pytest.raises(ConfigError) as err:
        build_strategy(spec, {"evry": "3"})
    msg = str(err.value)
    assert "counter" in msg and "'evry'" in msg
    assert "valid: every, period, qty, symbol, tag, timeframe" in msg


def make_distribution(root: Path, dist: str, entry_points: dict[str, str]) -> None:
    """A fake installed distribution: ``root/<dist>-1.0.dist-info`` with METADATA and entry_points.txt."""
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8")
    lines = "\n".join(f"{name} = {value}" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n", encoding="utf-8")


def test_installed_entry_point_resolves_and_is_listed(module_dir: Path) -> None:
    write_module(module_dir, "pd_test_plugin")
    make_distribution(module_dir, "pd_test_dist", {"counter": "pd_test_plugin:Counter", "sma_cross": "x:Y"})
    info = resolve_strategy_info("counter")
    assert (info.spec, info.source) == ("counter", "installed")
    assert info.cls.__module__ == "pd_test_plugin" and info.cls.__name__ == "Counter"
    assert info.origin == "pd_test_dist (pd_test_plugin:Counter)"
    assert build_strategy("counter", {"every": "2"}).config.every == 2  # type: ignore[attr-defined]
    listed = {i.spec: i for i in available_strategies()}
    assert listed["counter"].source == "installed"
    assert listed["sma_cross"].source == "bundled" and listed["sma_cross"].cls is SmaCross  # bundled names win
    assert [i.spec for i in available_strategies()][:4] == list(STRATEGIES)
    with pytest.raises(ConfigError) as err:
        get_strategy("countr")
    assert "counter" in str(err.value) and "sma_cross" in str(err.value)  # the known names include installed ones


def test_broken_entry_points_are_one_line_errors(module_dir: Path) -> None:
    write_module(module_dir, "pd_test_plugin_b")
    make_distribution(
        module_dir,
        "pd_test_broken",
        {"gone": "pd_test_nowhere:Counter", "missing": "pd_test_plugin_b:Nope", "helper": "pd_test_plugin_b:helper"},
    )
    cases = {
        "gone": "entry point gone = 'pd_test_nowhere:Counter' of pd_test_broken: module not found (pd_test_nowhere)",
        "missing": "entry point missing = 'pd_test_plugin_b:Nope' of pd_test_broken: no such class",
        "helper": "helper is not a class but a function",
    }
    for name, expected in cases.items():
        with pytest.raises(ConfigError) as err:
            resolve_strategy(name)
        assert str(err.value).startswith(f"strategy {name!r}: ")
        assert expected in str(err.value)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "strategy '': empty spec"),
        (":Counter", "strategy ':Counter': expected module.path:ClassName or path/to/file.py:ClassName"),
        ("pd_test_errs:", "strategy 'pd_test_errs:': expected module.path:ClassName"),
        ("pd_test_absent_mod:Counter", "strategy 'pd_test_absent_mod:Counter': module not found: pd_test_absent_mod"),
        ("pd_test_errs.sub:Counter", "strategy 'pd_test_errs.sub:Counter': module not found: pd_test_errs.sub"),
        ("pd_test_errs:Nope", "strategy 'pd_test_errs:Nope': no class Nope in module pd_test_errs (its strategies: "),
        ("pd_test_errs:helper", "strategy 'pd_test_errs:helper': helper is not a class but a function"),
        (
            "pd_test_errs:NotAStrategy",
            "strategy 'pd_test_errs:NotAStrategy': NotAStrategy is not a subclass of propdesk.strategies.base.Strategy",
        ),
        ("pd_test_errs:Strategy", "strategy 'pd_test_errs:Strategy': Strategy is the base class itself"),
        ("pd_test_errs:NoName", "strategy 'pd_test_errs:NoName': NoName sets no name"),
        ("pd_test_errs:NoConfig", "strategy 'pd_test_errs:NoConfig': NoConfig sets no config_cls"),
        (
            "pd_test_errs:BadConfig",
            "strategy 'pd_test_errs:BadConfig': BadConfig.config_cls is dict, not a StrategyConfig subclass",
        ),
        ("pd_test_dep:X", "strategy 'pd_test_dep:X': importing module pd_test_dep failed: ModuleNotFoundError: No "),
        ("pd_test_boom:X", "strategy 'pd_test_boom:X': importing module pd_test_boom failed: ZeroDivisionError: "),
        ("nowhere.py:Counter", "strategy 'nowhere.py:Counter': file not found: nowhere.py"),
        ("{d}:Counter", "is a directory, not a file: "),
        ("{d}/errs.txt:Counter", "is not a Python file (*.py)"),
        ("{d}/pd_test_errs.py:Nope", "no class Nope in {d}/pd_test_errs.py (its strategies: BadConfig, Counter, "),
        ("{d}/pd_test_syntax.py:X", "{d}/pd_test_syntax.py, line 2: syntax error: "),
        ("{d}/pd_test_boom.py:X", "loading {d}/pd_test_boom.py failed: ZeroDivisionError: division by zero"),
        ("{d}/pd_test_empty.py:X", "no class X in {d}/pd_test_empty.py (it defines no Strategy subclass)"),
    ],
)
def test_every_resolution_error_is_one_clear_line(module_dir: Path, spec: str, expected: str) -> None:
    write_module(module_dir, "pd_test_errs")
    (module_dir / "errs.txt").write_text("", encoding="utf-8")
    write_module(module_dir, "pd_test_dep", "import pd_test_not_installed_anywhere\n")
    write_module(module_dir, "pd_test_boom", "x = 1 / 0\n")
    write_module(module_dir, "pd_test_syntax", "x = 1\ndef (:\n")
    write_module(module_dir, "pd_test_empty", "x = 1\n")
    spec = spec.replace("{d}", str(module_dir))
    with pytest.raises(ConfigError) as err:
        resolve_strategy(spec)
    msg = str(err.value)
    assert expected.replace("{d}", str(module_dir)) in msg
    assert f"{spec!r}" in msg
    assert "\n" not in msg and "Traceback" not in msg
    assert not [m for m in sys.modules if m.startswith("propdesk_user_strategy_") and "pd_test_boom" in m]


# --- live-changeable parameters ------------------------------------------------------------------------------

LIVE = {
    "sma_cross": {"qty"},
    "overnight_range": {"qty", "stop_loss_ticks", "take_profit_ticks", "buffer_ticks", "max_trades_per_day"},
    "mean_reversion": {
        "qty",
        "rsi_overbought",
        "rsi_oversold",
        "atr_stop_mult",
        "target",
        "take_profit_ticks",
        "min_target_ticks",
    },
    "trend_following": {"qty", "atr_mult", "allow_short"},
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_bundled_live_fields_and_schema(name: str) -> None:
    config_cls = STRATEGIES[name].config_cls
    assert live_fields(config_cls) == LIVE[name]
    schema = config_schema(config_cls)
    props = schema["properties"]
    assert set(props) == set(config_cls.model_fields)
    assert {k for k, p in props.items() if p["live"] is True} == LIVE[name]
    assert all(p["live"] is False for k, p in props.items() if k not in LIVE[name])
    assert all(p.get("description") for p in props.values())  # every parameter says what it is
    for period in ("fast", "slow", "bb_period", "rsi_period", "atr_period", "donchian_period", "timeframe"):
        assert period not in live_fields(config_cls)  # a new period needs a warm-up


def test_schema_of_a_file_strategy_shows_its_marks(tmp_path: Path) -> None:
    cls = resolve_strategy(f"{write_module(tmp_path, 'marks')}:Counter")
    props = config_schema(cls.config_cls)["properties"]
    assert props["every"] == {
        "default": 3,
        "description": "act every N bars",
        "live": True,
        "minimum": 1,
        "title": "Every",
        "type": "integer",
    }
    assert props["period"]["live"] is False
    assert props["qty"]["live"] is True  # inherited from StrategyConfig
