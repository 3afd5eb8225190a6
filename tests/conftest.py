"""Shared test fixtures.

``shared_data(relpath)`` resolves a file under ``../shared/data`` (beside the checkout). The data is referenced in
place, never copied into the repository. When a file is missing the test fails under ``CI=true`` (so CI cannot pass
without the data it claims to test) and is skipped otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def resolve_shared(relpath: str) -> Path:
    """Return the path of ``relpath`` under ``../shared/data``; fail (CI) or skip (local) when it is missing."""
    path = SHARED_DATA / relpath
    if not path.exists():
        msg = f"shared data file missing: {path} (expected ../shared/data beside the checkout)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture
def shared_data() -> Callable[[str], Path]:
    """Fixture form of :func:`resolve_shared`."""
    return resolve_shared


ES_1MIN = "es_1min_topstepx_esz5/ES_1min_20250831_20251114.csv"
NQ_1MIN = "nq_1min_firstratedata_sample/NQ_1min_sample.csv"
NQ_5MIN = "nq_1min_firstratedata_sample/NQ_5min_sample.csv"
ESH4_MBO = "databento_glbx_nautilus/esh4-glbx-mdp3-20231225.mbo.dbn.zst"
ESH4_MBP10_1S = "databento_glbx_nautilus/ESH4_20231225_mbp10_1s_from_mbo.csv.gz"


@pytest.fixture(autouse=True)
def _journal_in_a_temp_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands journal by default (``propdesk run``): point the default journal at a temporary SQLite file so no test
    writes to the user's data directory or to a database named in the caller's environment."""
    path = tmp_path_factory.getbasetemp() / "journal.sqlite3"
    monkeypatch.setenv("PROPDESK_DATABASE_URL", f"sqlite:///{path}")
