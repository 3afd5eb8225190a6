"""Load Databento DBN files (``.dbn`` / ``.dbn.zst``, DBN v1-v3) through the ``databento`` package.

Schemas and what they load into (field meanings: https://databento.com/docs/schemas-and-data-formats):

* ``trades`` -> :class:`TradeSeries` (:func:`load_dbn_trades`). Aggressor from the record's side: ``B`` buyer,
  ``A`` seller, ``N`` none.
* ``mbp-1`` / ``tbbo`` -> :class:`Mbp1Data`: a :class:`QuoteTick` per record (the top of book *after* the event)
  and the trade records as a :class:`TradeSeries` (:func:`load_dbn_mbp1`).
* ``mbp-10`` -> :class:`Mbp10Arrays`, ten levels per side per record (:func:`load_dbn_mbp10`).
* ``mbo`` -> :class:`MboArrays`, columnar numpy arrays for fast order-book replay (:func:`load_mbo`), and
  :func:`iter_depth_updates` for :class:`DepthUpdate` objects.
* ``ohlcv-1s`` / ``-1m`` / ``-1h`` / ``-1d`` -> :class:`BarSeries` (:func:`load_dbn_bars`). Databento stamps an OHLCV
  bar with its OPEN time (``ts_event``), so ``ts_open_ns = ts_event`` and ``ts_close_ns = ts_event + interval``
  (24 h for ``-1d``, whose bars Databento aligns to UTC midnight).
* ``definition`` -> :class:`InstrumentDefinition` per instrument (:func:`load_dbn_definitions`).

Prices: DBN stores int64 fixed-point prices with scale 1e-9 (``price_raw``); float prices are ``raw / 1e9``, and
Databento's "undefined price" (``INT64_MAX``) becomes NaN. Symbols come from the file's symbology mappings
(``instrument_id`` -> raw symbol, e.g. ``ESH4``).

Every function raises :class:`DataError` for a missing, unreadable, truncated (``databento`` warns "truncated or
contains an incomplete record"; we refuse the file) or wrong-schema file; nothing is returned half-loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from propdesk.core.errors import DataError
from propdesk.model.data import BarSeries, DepthUpdate, QuoteTick, Timeframe, TradeSeries
from propdesk.model.enums import AggressorSide, BookAction, BookSide

PRICE_SCALE: Final[float] = 1e9
UNDEF_PRICE: Final[int] = np.iinfo(np.int64).max
F_LAST: Final[int] = 128
"""Databento flag bit: last record of an event for its instrument (https://databento.com/docs/standards-and-conventions)."""

ACTION_ADD: Final[int] = ord("A")
ACTION_MODIFY: Final[int] = ord("M")
ACTION_CANCEL: Final[int] = ord("C")
ACTION_CLEAR: Final[int] = ord("R")
ACTION_TRADE: Final[int] = ord("T")
ACTION_FILL: Final[int] = ord("F")
SIDE_BID: Final[int] = ord("B")
SIDE_ASK: Final[int] = ord("A")
SIDE_NONE: Final[int] = ord("N")

_OHLCV_TF: Final[dict[str, Timeframe]] = {
    "ohlcv-1s": Timeframe(1, "s"),
    "ohlcv-1m": Timeframe(1, "m"),
    "ohlcv-1h": Timeframe(1, "h"),
    "ohlcv-1d": Timeframe(1, "d"),
}
_BOOK_ACTION: Final[dict[int, BookAction]] = {
    ACTION_ADD: BookAction.ADD,
    ACTION_MODIFY: BookAction.UPDATE,
    ACTION_CANCEL: BookAction.DELETE,
    ACTION_CLEAR: BookAction.CLEAR,
}
_BOOK_SIDE: Final[dict[int, BookSide | None]] = {SIDE_BID: BookSide.BID, SIDE_ASK: BookSide.ASK, SIDE_NONE: None}


@dataclass(frozen=True)
class DbnFile:
    """A decoded DBN file: its schema (``"mbo"``, ``"ohlcv-1m"``, ...), DBN version, records and symbol map."""

    path: Path
    schema: str
    version: int
    records: npt.NDArray[Any]
    symbols: dict[int, str]

    def symbol_of(self, instrument_id: int) -> str:
        """The raw symbol of ``instrument_id`` (``str(instrument_id)`` when the file has no mapping for it)."""
        return self.symbols.get(instrument_id, str(instrument_id))


def read_dbn(path: str | Path, schemas: tuple[str, ...] | None = None) -> DbnFile:
    """Decode a DBN file into a numpy record array (no conversion), checking its schema.

    Raises:
        DataError: missing/unreadable/truncated file, or a schema not in ``schemas``.
    """
    import databento as db  # noqa: PLC0415 - lazy: importing databento takes ~1.5 s and only DBN loading needs it

    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=p)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store = db.DBNStore.from_file(p)
            records = store.to_ndarray()
            schema = str(store.schema)
            version = int(store.metadata.version)
            mappings = store.mappings
    except Exception as exc:  # databento raises BentoError, ValueError, OSError, RuntimeError from its decoder
        raise DataError(f"cannot decode DBN file: {type(exc).__name__}: {exc}", path=p) from None
    for w in caught:
        text = str(w.message)
        if "truncated" in text or "incomplete" in text:
            raise DataError(f"DBN file is truncated ({text}); refusing partial data", path=p)
    if schemas is not None and schema not in schemas:
        raise DataError(f"DBN schema is {schema!r}, expected one of {', '.join(schemas)}", path=p)
    symbols: dict[int, str] = {}
    for raw_symbol, intervals in mappings.items():
        for iv in intervals:
            try:
                symbols[int(iv["symbol"])] = str(raw_symbol)
            except (KeyError, TypeError, ValueError):
                continue
    return DbnFile(p, schema, version, np.asarray(records), symbols)


def dbn_schema(path: str | Path) -> str:
    """The schema named in a DBN file's metadata (``"mbo"``, ``"ohlcv-1m"``, ...) without decoding its records.

    Raises:
        DataError: missing or unreadable file.
    """
    import databento as db  # noqa: PLC0415 - lazy, see read_dbn

    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", path=p)
    try:
        return str(db.DBNStore.from_file(p).schema)
    except Exception as exc:  # databento raises BentoError, ValueError, OSError from its decoder
        raise DataError(f"cannot decode DBN file: {type(exc).__name__}: {exc}", path=p) from None


def _px(raw: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    r = raw.astype(np.int64)
    out = r.astype(np.float64) / PRICE_SCALE
    out[r == UNDEF_PRICE] = np.nan
    return out


def _one_instrument(f: DbnFile, symbol: str | None) -> tuple[npt.NDArray[Any], str]:
    """Records of one instrument: the one named ``symbol`` (raw symbol or instrument id), or the only one."""
    ids = np.unique(f.records["instrument_id"]) if len(f.records) else np.array([], dtype=np.uint32)
    if symbol is None:
        if len(ids) > 1:
            names = ", ".join(sorted(f.symbol_of(int(i)) for i in ids))
            raise DataError(f"file holds several instruments ({names}); choose one with --symbol", path=f.path)
        if len(ids) == 0:
            return f.records, next(iter(f.symbols.values()), "")
        return f.records, f.symbol_of(int(ids[0]))
    wanted = [int(i) for i in ids if f.symbol_of(int(i)) == symbol or str(int(i)) == symbol]
    if not wanted:
        names = ", ".join(sorted(f.symbol_of(int(i)) for i in ids))
        raise DataError(f"symbol {symbol!r} not in file (has {names})", path=f.path)
    return f.records[np.isin(f.records["instrument_id"], wanted)], f.symbol_of(wanted[0])


def _trade_series(rec: npt.NDArray[Any], symbol: str, path: Path) -> TradeSeries:
    rec = rec[np.argsort(rec["ts_event"].astype(np.int64), kind="stable")]
    side = rec["side"].view(np.uint8)
    aggressor = np.where(
        side == SIDE_BID, int(AggressorSide.BUYER), np.where(side == SIDE_ASK, int(AggressorSide.SELLER), 0)
    ).astype(np.int8)
    price = _px(rec["price"])
    if bool(np.isnan(price).any()):
        raise DataError(f"trade record {int(np.argmax(np.isnan(price)))} has an undefined price", path=path)
    return TradeSeries(
        symbol, rec["ts_event"].astype(np.int64), price, rec["size"].astype(np.int64), aggressor, source=str(path)
    )


def load_dbn_trades(path: str | Path, *, symbol: str | None = None) -> TradeSeries:
    """Trade prints (action ``T``) from a ``trades``, ``mbp-1``, ``tbbo`` or ``mbo`` file as a :class:`TradeSeries`.

    Records are ordered by ``ts_event`` (stable: equal times keep file order; DBN files are ordered by receive time).
    ``symbol`` picks one instrument (raw symbol or instrument id) when the file holds several.

    Raises:
        DataError: see :func:`read_dbn`; several instruments and no ``symbol``; an undefined trade price.
    """
    f = read_dbn(path, ("trades", "mbp-1", "tbbo", "mbo"))
    rec, sym = _one_instrument(f, symbol)
    rec = rec[rec["action"].view(np.uint8) == ACTION_TRADE]
    return _trade_series(rec, sym, f.path)


@dataclass(frozen=True)
class Mbp1Data:
    """Top of book and trades from an ``mbp-1``/``tbbo`` file.

    ``quotes``: one :class:`QuoteTick` per record, the best bid/ask (points; NaN when a side is empty) and sizes
    (contracts) after the record's event, in file order. ``trades``: the trade records (see
    :func:`load_dbn_trades`).
    """

    symbol: str
    quotes: tuple[QuoteTick, ...]
    trades: TradeSeries


def load_dbn_mbp1(path: str | Path, *, symbol: str | None = None) -> Mbp1Data:
    """Load an ``mbp-1`` or ``tbbo`` file into :class:`Mbp1Data`.

    Raises:
        DataError: see :func:`read_dbn`; several instruments and no ``symbol``.
    """
    f = read_dbn(path, ("mbp-1", "tbbo"))
    rec, sym = _one_instrument(f, symbol)
    bid, ask = _px(rec["bid_px_00"]), _px(rec["ask_px_00"])
    quotes = tuple(
        QuoteTick(sym, b, a, bs, asz, te, tr)
        for b, a, bs, asz, te, tr in zip(
            bid.tolist(),
            ask.tolist(),
            rec["bid_sz_00"].astype(np.int64).tolist(),
            rec["ask_sz_00"].astype(np.int64).tolist(),
            rec["ts_event"].astype(np.int64).tolist(),
            rec["ts_recv"].astype(np.int64).tolist(),
            strict=True,
        )
    )
    trades = _trade_series(rec[rec["action"].view(np.uint8) == ACTION_TRADE], sym, f.path)
    return Mbp1Data(sym, quotes, trades)


@dataclass(frozen=True)
class Mbp10Arrays:
    """Ten-level book records (``mbp-10``), columnar; row ``i`` is the book after record ``i`` (file order).

    ``ts_event_ns``/``ts_recv_ns`` int64 UTC ns; ``action``/``side`` uint8 ASCII codes of the record's own event
    (``A``/``C``/``M``/``R``/``T``/``F``; ``B``/``A``/``N``), ``price`` float64 points and ``size`` int64 of that
    event; ``depth`` the level it touched; ``flags`` uint8. Book: ``bid_px``/``ask_px`` float64 points shape (n, 10)
    (NaN = empty level), ``bid_sz``/``ask_sz``/``bid_ct``/``ask_ct`` int64 contracts/orders shape (n, 10); level 0 is
    the best price.
    """

    symbol: str
    ts_event_ns: npt.NDArray[np.int64]
    ts_recv_ns: npt.NDArray[np.int64]
    action: npt.NDArray[np.uint8]
    side: npt.NDArray[np.uint8]
    price: npt.NDArray[np.float64]
    size: npt.NDArray[np.int64]
    depth: npt.NDArray[np.uint8]
    flags: npt.NDArray[np.uint8]
    bid_px: npt.NDArray[np.float64]
    ask_px: npt.NDArray[np.float64]
    bid_sz: npt.NDArray[np.int64]
    ask_sz: npt.NDArray[np.int64]
    bid_ct: npt.NDArray[np.int64]
    ask_ct: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.ts_event_ns)


def load_dbn_mbp10(path: str | Path, *, symbol: str | None = None) -> Mbp10Arrays:
    """Load an ``mbp-10`` file into :class:`Mbp10Arrays`.

    Raises:
        DataError: see :func:`read_dbn`; several instruments and no ``symbol``.
    """
    f = read_dbn(path, ("mbp-10",))
    rec, sym = _one_instrument(f, symbol)

    def levels(fmt: str) -> npt.NDArray[Any]:
        return np.stack([rec[fmt.format(i)] for i in range(10)], axis=1) if len(rec) else np.zeros((0, 10))

    return Mbp10Arrays(
        symbol=sym,
        ts_event_ns=rec["ts_event"].astype(np.int64),
        ts_recv_ns=rec["ts_recv"].astype(np.int64),
        action=rec["action"].view(np.uint8).copy(),
        side=rec["side"].view(np.uint8).copy(),
        price=_px(rec["price"]),
        size=rec["size"].astype(np.int64),
        depth=rec["depth"].astype(np.uint8),
        flags=rec["flags"].astype(np.uint8),
        bid_px=_px(levels("bid_px_{:02d}")),
        ask_px=_px(levels("ask_px_{:02d}")),
        bid_sz=levels("bid_sz_{:02d}").astype(np.int64),
        ask_sz=levels("ask_sz_{:02d}").astype(np.int64),
        bid_ct=levels("bid_ct_{:02d}").astype(np.int64),
        ask_ct=levels("ask_ct_{:02d}").astype(np.int64),
    )


@dataclass(frozen=True)
class MboArrays:
    """Market-by-order events, columnar, in file order (the order to apply them to a book).

    Arrays (length n): ``ts_event_ns``/``ts_recv_ns`` int64 UTC ns; ``action`` uint8 ASCII (``A`` add, ``M`` modify,
    ``C`` cancel, ``R`` clear book, ``T`` trade, ``F`` fill; compare with ``ACTION_*``); ``side`` uint8 ASCII (``B``
    bid, ``A`` ask, ``N`` none; ``SIDE_*``); ``price_raw`` int64 fixed-point 1e-9 (``UNDEF_PRICE`` when undefined,
    e.g. on ``R``); ``price`` float64 points (NaN when undefined); ``size`` int64 contracts; ``order_id`` uint64;
    ``flags`` uint8 (``flags & F_LAST`` set on the last record of an event: act on the book only then);
    ``sequence`` int64 venue sequence; ``instrument_id`` uint32. ``symbols`` maps instrument ids to raw symbols.

    Replaying A/M/C/R and ignoring T/F gives the CME book (fills are followed by C/M; see shared/data/README.md).
    """

    ts_event_ns: npt.NDArray[np.int64]
    ts_recv_ns: npt.NDArray[np.int64]
    action: npt.NDArray[np.uint8]
    side: npt.NDArray[np.uint8]
    price_raw: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    size: npt.NDArray[np.int64]
    order_id: npt.NDArray[np.uint64]
    flags: npt.NDArray[np.uint8]
    sequence: npt.NDArray[np.int64]
    instrument_id: npt.NDArray[np.uint32]
    symbols: dict[int, str]

    def __len__(self) -> int:
        return len(self.ts_event_ns)

    @property
    def is_last(self) -> npt.NDArray[np.bool_]:
        """Per record: the F_LAST flag (``flags & 128``)."""
        return np.asarray((self.flags & F_LAST) != 0, dtype=np.bool_)


def load_mbo(path: str | Path) -> MboArrays:
    """Load an ``mbo`` file into :class:`MboArrays` (every instrument in it; filter on ``instrument_id``).

    Raises:
        DataError: see :func:`read_dbn`.
    """
    f = read_dbn(path, ("mbo",))
    rec = f.records
    price_raw = rec["price"].astype(np.int64)
    return MboArrays(
        ts_event_ns=rec["ts_event"].astype(np.int64),
        ts_recv_ns=rec["ts_recv"].astype(np.int64),
        action=rec["action"].view(np.uint8).copy(),
        side=rec["side"].view(np.uint8).copy(),
        price_raw=price_raw,
        price=_px(price_raw),
        size=rec["size"].astype(np.int64),
        order_id=rec["order_id"].astype(np.uint64),
        flags=rec["flags"].astype(np.uint8),
        sequence=rec["sequence"].astype(np.int64),
        instrument_id=rec["instrument_id"].astype(np.uint32),
        symbols=dict(f.symbols),
    )


def iter_depth_updates(mbo: MboArrays, *, include_trades: bool = False) -> Iterator[DepthUpdate | tuple[str, int]]:
    """Yield :class:`DepthUpdate` (L3: ``order_id`` set) for every A/M/C/R record, in order.

    ``is_last`` carries F_LAST. T and F records change no book and are skipped, unless ``include_trades`` is True:
    then they are yielded as ``("T" | "F", index)`` so a caller can look them up in the arrays.
    """
    sym_of = mbo.symbols
    for i, (a, s, px, sz, oid, fl, seq, te, tr, iid) in enumerate(
        zip(
            mbo.action.tolist(),
            mbo.side.tolist(),
            mbo.price.tolist(),
            mbo.size.tolist(),
            mbo.order_id.tolist(),
            mbo.flags.tolist(),
            mbo.sequence.tolist(),
            mbo.ts_event_ns.tolist(),
            mbo.ts_recv_ns.tolist(),
            mbo.instrument_id.tolist(),
            strict=True,
        )
    ):
        action = _BOOK_ACTION.get(a)
        if action is None:
            if include_trades and a in (ACTION_TRADE, ACTION_FILL):
                yield (chr(a), i)
            continue
        yield DepthUpdate(
            symbol=sym_of.get(iid, str(iid)),
            action=action,
            side=_BOOK_SIDE.get(s),
            price=px,
            size=sz,
            ts_event_ns=te,
            order_id=oid,
            sequence=seq,
            is_last=bool(fl & F_LAST),
            ts_recv_ns=tr,
        )


def load_dbn_bars(path: str | Path, *, symbol: str | None = None) -> BarSeries:
    """Load an ``ohlcv-1s|1m|1h|1d`` file into a :class:`BarSeries` (ts_event = bar open; see the module docstring).

    Raises:
        DataError: see :func:`read_dbn`; several instruments and no ``symbol``; bars out of order or inconsistent.
    """
    f = read_dbn(path, tuple(_OHLCV_TF))
    rec, sym = _one_instrument(f, symbol)
    tf = _OHLCV_TF[f.schema]
    ts = rec["ts_event"].astype(np.int64)
    return BarSeries(
        sym,
        tf,
        ts,
        ts + tf.ns,
        _px(rec["open"]),
        _px(rec["high"]),
        _px(rec["low"]),
        _px(rec["close"]),
        rec["volume"].astype(np.int64),
        source=str(f.path),
    )


@dataclass(frozen=True)
class InstrumentDefinition:
    """One instrument definition record (the last one per instrument in the file).

    ``min_price_increment`` is the tick size in points; ``unit_of_measure_qty`` the contract multiplier in USD per
    point (ES 50); ``tick_value_usd`` = tick size x multiplier (ES 12.5). ``expiration_ns``/``activation_ns`` UTC ns.
    ``contract_multiplier`` is None when Databento leaves it undefined (INT32_MAX), as it does for CME futures.
    """

    raw_symbol: str
    instrument_id: int
    min_price_increment: float
    unit_of_measure_qty: float
    tick_value_usd: float
    contract_multiplier: int | None
    expiration_ns: int
    activation_ns: int
    currency: str
    exchange: str
    asset: str
    security_type: str
    instrument_class: str


def _text(v: Any) -> str:
    return v.decode("ascii", "replace").rstrip("\x00") if isinstance(v, bytes) else str(v)


def load_dbn_definitions(path: str | Path) -> dict[str, InstrumentDefinition]:
    """Load a ``definition`` file: raw symbol -> :class:`InstrumentDefinition` (later records replace earlier ones).

    Raises:
        DataError: see :func:`read_dbn`; an undefined tick size.
    """
    f = read_dbn(path, ("definition",))
    out: dict[str, InstrumentDefinition] = {}
    int32_max = np.iinfo(np.int32).max
    for r in f.records:
        tick_raw = int(r["min_price_increment"])
        if tick_raw in (UNDEF_PRICE, 0):
            raise DataError(f"definition of {_text(r['raw_symbol'])} has no tick size", path=f.path)
        tick = tick_raw / PRICE_SCALE
        mult = int(r["unit_of_measure_qty"]) / PRICE_SCALE
        cm = int(r["contract_multiplier"])
        sym = _text(r["raw_symbol"])
        out[sym] = InstrumentDefinition(
            raw_symbol=sym,
            instrument_id=int(r["instrument_id"]),
            min_price_increment=tick,
            unit_of_measure_qty=mult,
            tick_value_usd=round(tick * mult, 9),
            contract_multiplier=None if cm == int32_max else cm,
            expiration_ns=int(r["expiration"]),
            activation_ns=int(r["activation"]),
            currency=_text(r["currency"]),
            exchange=_text(r["exchange"]),
            asset=_text(r["asset"]),
            security_type=_text(r["security_type"]),
            instrument_class=_text(r["instrument_class"]),
        )
    return out


DbnData = BarSeries | TradeSeries | Mbp1Data | Mbp10Arrays | MboArrays | dict[str, InstrumentDefinition]


def load_dbn(path: str | Path, *, symbol: str | None = None) -> DbnData:
    """Load any supported DBN file by its schema (see the module docstring for the mapping).

    Raises:
        DataError: an unsupported schema (e.g. ``statistics``), or anything the specific loader raises.
    """
    schema = dbn_schema(path)
    if schema in _OHLCV_TF:
        return load_dbn_bars(path, symbol=symbol)
    if schema == "trades":
        return load_dbn_trades(path, symbol=symbol)
    if schema in ("mbp-1", "tbbo"):
        return load_dbn_mbp1(path, symbol=symbol)
    if schema == "mbp-10":
        return load_dbn_mbp10(path, symbol=symbol)
    if schema == "mbo":
        return load_mbo(path)
    if schema == "definition":
        return load_dbn_definitions(path)
    raise DataError(f"DBN schema {schema!r} is not supported", path=path)
