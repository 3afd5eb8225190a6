"""The desk benchmark (benchmarks/bench_desk.py) runs end to end with tiny sizes and prints both figures (its
timings are not checked: they are the benchmark's to report)."""

from __future__ import annotations

import pytest

from benchmarks.bench_desk import main


def test_the_desk_benchmark_runs_and_prints_both_figures(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--runs", "1", "--fills", "3", "--commands", "5", "--no-pg"])
    out = capsys.readouterr().out
    assert "fill -> subscriber latency, us: median [range] over 1 runs" in out and "SQLite file (fsync)" in out
    assert "Desk.execute" in out and "desk / order manager:" in out
