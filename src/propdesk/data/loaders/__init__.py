"""Market-data loaders: CSV bars (any clock), FirstRateData, trade prints, Databento DBN, and bar-file presets.

Every loader validates the whole input and raises :class:`propdesk.core.errors.DataError` naming the file and the
1-based data row (header = row 0) and column of the first problem; nothing is ever returned half-loaded.
Importing this package does not import ``databento`` (a 1.5 s import); the DBN loaders import it on first use.
"""

from __future__ import annotations

from propdesk.data.loaders.csv_bars import load_bars_csv, parse_clock_offset
from propdesk.data.loaders.dbn import (
    F_LAST,
    InstrumentDefinition,
    MboArrays,
    Mbp1Data,
    Mbp10Arrays,
    dbn_schema,
    iter_depth_updates,
    load_dbn,
    load_dbn_bars,
    load_dbn_definitions,
    load_dbn_mbp1,
    load_dbn_mbp10,
    load_dbn_trades,
    load_mbo,
)
from propdesk.data.loaders.firstrate import load_firstrate_csv
from propdesk.data.loaders.presets import PRESETS, BarPreset, describe_load, find_preset, load_bars, resolve_preset
from propdesk.data.loaders.trades_csv import TradesCsv, load_trades_csv

__all__ = [
    "F_LAST",
    "PRESETS",
    "BarPreset",
    "InstrumentDefinition",
    "MboArrays",
    "Mbp1Data",
    "Mbp10Arrays",
    "TradesCsv",
    "dbn_schema",
    "describe_load",
    "find_preset",
    "iter_depth_updates",
    "load_bars",
    "load_bars_csv",
    "load_dbn",
    "load_dbn_bars",
    "load_dbn_definitions",
    "load_dbn_mbp1",
    "load_dbn_mbp10",
    "load_dbn_trades",
    "load_firstrate_csv",
    "load_mbo",
    "load_trades_csv",
    "parse_clock_offset",
    "resolve_preset",
]
