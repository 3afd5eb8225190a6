"""``propdesk strategies list|show|new`` and ``backtest --strategy path/to/file.py:Class`` (in-process, with Typer's
runner; the generated skeleton's test in a pytest subprocess)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from propdesk.cli import app
from propdesk.strategies.registry import STRATEGIES
from tests.conftest import ES_1MIN, resolve_shared

runner = CliRunner()

MY_SMA = '''
from __future__ import annotations

from typing import ClassVar

from propdesk.strategies.base import StrategyConfig
from propdesk.strategies.sma_cross import SmaCross, SmaCrossConfig


class MySmaConfig(SmaCrossConfig):
    """Parameters of MySma: those of sma_cross."""


class MySma(SmaCross):
    """sma_cross under another name, loaded from a file."""

    name: ClassVar[str] = "my_sma"
    config_cls: ClassVar[type[StrategyConfig]] = MySmaConfig
'''


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_json_shows_every_bundled_strategy_with_its_schema() -> None:
    code, out, err = invoke("strategies", "list", "--json")
    assert code == 0, err
    entries = {e["spec"]: e for e in json.loads(out)}
    assert set(STRATEGIES) <= set(entries)
    sma = entries["sma_cross"]
    assert (sma["name"], sma["source"], sma["class"]) == (
        "sma_cross",
        "bundled",
        "propdesk.strategies.sma_cross:SmaCross",
    )
    assert sma["description"].startswith("Long-only SMA crossover on the close")
    params = {p["name"]: p for p in sma["parameters"]}
    assert list(params) == ["symbol", "qty", "tag", "timeframe", "fast", "slow"]
    assert params["fast"] == {
        "name": "fast",
        "type": "integer >= 1",
        "default": 10,
        "description": "bars in the fast SMA of the close",
        "live": False,
        "required": False,
    }
    assert params["qty"]["live"] is True and params["qty"]["description"] == "contracts per entry"
    assert sma["schema"]["properties"]["qty"]["live"] is True
    assert sma["schema"]["additionalProperties"] is False
    mr = {p["name"]: p for p in entries["mean_reversion"]["parameters"]}
    assert mr["target"]["type"] == "vwap | ticks" and mr["target"]["live"] is True
    assert mr["rsi_overbought"]["type"] == "number >= 0, <= 100"
    orr = {p["name"]: p for p in entries["overnight_range"]["parameters"]}
    assert (orr["cutoff"]["type"], orr["cutoff"]["default"]) == ("string (time)", "15:00:00")


def test_list_text_has_a_table_per_strategy() -> None:
    code, out, err = invoke("strategies", "list")
    assert code == 0, err
    assert "sma_cross  [bundled: propdesk.strategies.sma_cross:SmaCross]" in out
    lines = out.splitlines()
    fast = next(line for line in lines if line.split()[:1] == ["fast"])
    assert fast.split()[:5] == ["fast", "integer", ">=", "1", "10"]
    assert fast.split()[5] == "-" and fast.endswith("bars in the fast SMA of the close")
    stop = next(line for line in lines if line.split()[:1] == ["stop_loss_ticks"])
    assert " live " in stop and stop.endswith("stop-loss from the fill, ticks")
    assert "path/to/file.py:ClassName" in out


def test_show_a_file_strategy(tmp_path: Path) -> None:
    path = tmp_path / "my_sma.py"
    path.write_text(MY_SMA, encoding="utf-8")
    code, out, err = invoke("strategies", "show", f"{path}:MySma", "--json")
    assert code == 0, err
    entry = json.loads(out)
    assert (entry["spec"], entry["name"], entry["source"], entry["origin"]) == (
        f"{path}:MySma",
        "my_sma",
        "path",
        str(path),
    )
    assert entry["schema"]["title"] == "MySmaConfig"
    assert set(entry["schema"]["properties"]) == {"symbol", "qty", "tag", "timeframe", "fast", "slow"}
    code, out, err = invoke("strategies", "show", f"{path}:MySma")
    assert code == 0, err
    assert out.startswith(f"{path}:MySma  [path: {path}]  name my_sma\n")
    schema_text = out.split("JSON Schema:\n", 1)[1]
    assert json.loads(schema_text)["properties"]["qty"]["live"] is True


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nope", "error: unknown strategy 'nope'; known strategies: mean_reversion, overnight_range, sma_cross"),
        ("missing.py:X", "error: strategy 'missing.py:X': file not found: missing.py"),
        ("pd_cli_absent:X", "error: strategy 'pd_cli_absent:X': module not found: pd_cli_absent"),
        ("json:JSONDecoder", "error: strategy 'json:JSONDecoder': JSONDecoder is not a subclass of propdesk"),
    ],
)
def test_show_errors_are_one_line_exit_2(spec: str, expected: str) -> None:
    code, out, err = invoke("strategies", "show", spec)
    assert code == 2 and out == ""
    assert err.startswith(expected) and err.count("\n") == 1
    assert "Traceback" not in err


def test_new_writes_a_skeleton_whose_test_passes(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    code, out, err = invoke("strategies", "new", "my_breakout", "--dir", str(target))
    assert code == 0, err
    strategy, test = target / "my_breakout.py", target / "test_my_breakout.py"
    assert f"wrote {strategy} and {test}" in out
    text = strategy.read_text(encoding="utf-8")
    for api in (
        "class MyBreakout(Strategy):",
        "class MyBreakoutConfig(StrategyConfig):",
        'name: ClassVar[str] = "my_breakout"',
        "def on_start(self) -> None:",
        "self.subscribe_bars(",
        "def on_bar(self, bar: Bar) -> None:",
        "def on_position_changed(self, change: StrategyPositionChange) -> None:",
        "change.cause.outside",
        'json_schema_extra={"live": True}',
        '[project.entry-points."propdesk.strategies"]',
    ):
        assert api in text
    # the generated test runs on its own (its directory is not a package and not on sys.path)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
    # the new strategy is listed by show with its parameters
    code, out, err = invoke("strategies", "show", f"{strategy}:MyBreakout", "--json")
    assert code == 0, err
    params = {p["name"]: p for p in json.loads(out)["parameters"]}
    assert params["stop_loss_ticks"]["live"] is True and params["lookback"]["live"] is False


def test_new_refuses_to_overwrite_and_writes_nothing_half(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text("# mine\n", encoding="utf-8")
    code, out, err = invoke("strategies", "new", "mine", "--dir", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {tmp_path / 'test_mine.py'} exists; not overwriting it")
    assert not (tmp_path / "mine.py").exists()
    assert (tmp_path / "test_mine.py").read_text(encoding="utf-8") == "# mine\n"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Bad-Name", "error: strategy name 'Bad-Name': use up to 40 lower-case letters"),
        ("class", "error: strategy name 'class': use up to 40 lower-case letters"),
        ("sma_cross", "error: strategy name 'sma_cross' is a bundled strategy's name"),
    ],
)
def test_new_rejects_bad_names(tmp_path: Path, name: str, expected: str) -> None:
    code, _, err = invoke("strategies", "new", name, "--dir", str(tmp_path))
    assert code == 2 and err.startswith(expected)
    assert list(tmp_path.iterdir()) == []


def trades_without_tag(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row.pop("tag", None)
    return rows


def test_backtest_with_a_file_strategy_trades_as_the_bundled_class(tmp_path: Path) -> None:
    data = resolve_shared(ES_1MIN)
    path = tmp_path / "my_sma.py"
    path.write_text(MY_SMA, encoding="utf-8")
    results = {}
    for label, spec in (("bundled", "sma_cross"), ("file", f"{path}:MySma")):
        trades = tmp_path / f"{label}.csv"
        code, out, err = invoke(
            "backtest", "--data", str(data), "--strategy", spec, "--param", "fast=5", "--param", "slow=20",
            "--start", "2025-10-06", "--end", "2025-10-11", "--json", "--trades-csv", str(trades),
        )  # fmt: skip
        assert code == 0, err
        results[label] = (json.loads(out), trades_without_tag(trades))
    (bundled, bundled_trades), (mine, my_trades) = results["bundled"], results["file"]
    assert mine["strategy"] == "my_sma" and bundled["strategy"] == "sma_cross"
    assert bundled["trades"] > 50
    assert my_trades == bundled_trades
    for key in ("bars", "fills", "trades", "net_pnl_usd", "gross_pnl_usd", "open_qty"):
        assert mine[key] == bundled[key], key


def test_backtest_with_an_unknown_param_of_a_file_strategy_lists_the_valid_keys(tmp_path: Path) -> None:
    path = tmp_path / "my_sma.py"
    path.write_text(MY_SMA, encoding="utf-8")
    code, out, err = invoke("backtest", "--data", "unused.csv", "--strategy", f"{path}:MySma", "--param", "fats=3")
    assert code == 2 and out == ""
    assert "unknown parameter 'fats' (valid: fast, qty, slow, symbol, tag, timeframe)" in err


def test_list_warns_about_a_broken_installed_strategy_and_shows_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "pd_cli_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pd_cli_broken\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[propdesk.strategies]\nghost = pd_cli_ghost:Ghost\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = invoke("strategies", "list", "--json")
    assert code == 0
    assert [e["spec"] for e in json.loads(out)] == list(STRATEGIES)
    assert err == (
        "warning: strategy 'ghost': entry point ghost = 'pd_cli_ghost:Ghost' of pd_cli_broken: module not found "
        "(pd_cli_ghost)\n"
    )
    code, _, err = invoke("strategies", "show", "ghost")
    assert code == 2 and err.startswith("error: strategy 'ghost': entry point ghost = ")
