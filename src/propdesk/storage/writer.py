"""The journal's writer subprocess: batches in through a pipe, rows out to the database, acknowledgements back.

The core's thread only captures records and, at each cut, serializes the batch (:mod:`propdesk.storage.wire`). All
the rest - rebuilding the records, building rows (JSON, idempotency hashes), SQLAlchemy Core ``executemany`` and
the commit - runs in a separate process (``python -m propdesk.storage.writer_child``), on another core and
outside the core's GIL. Protocol (:class:`WriterProcess` is the parent's end):

* parent -> child: the bytes of one batch (``wire.dumps``), or ``b""`` to finish (write what is queued, exit).
* child -> parent: ``("ready", pid, head)`` once connected (``head``: the largest event sequence number stored, 0 for
  none: the journal numbers its records from there); ``("ack", last_seq, records, rows)`` after each commit (all
  batches up to ``last_seq`` are durable; the child merges every batch waiting in the pipe into one transaction);
  ``("fail", last_seq, error)`` after a failed attempt (the child keeps the batch and retries with backoff, so
  order is kept and nothing is dropped); ``("fatal", error)`` when it cannot start.

A send never blocks the core: the caller writes the batch itself into the pipe (enlarged to :data:`PIPE_BYTES`,
non-blocking) while nothing waits for the sender thread, which does the blocking writes of whatever does not fit (the
write releases the GIL), in order. The parent reads acknowledgements without blocking (``poll``), from the event loop
(``add_reader`` on :attr:`WriterProcess.fileno`) or from a synchronous driver. End of file on the acknowledgement pipe
means the child died; the journal then reports HALT, starts a new writer and sends every unacknowledged batch again
(writes are idempotent: a batch committed just before the death is not written twice).

SQLite: the child opens the file itself (WAL, ``synchronous=FULL``: :func:`propdesk.storage.db.create_sync_engine_for`).
PostgreSQL: the child connects with psycopg. The URL, password included, reaches the child through the spawn pipe,
never a command line.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import operator
import os
import pickle
import re
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from multiprocessing.connection import Connection
from queue import SimpleQueue
from typing import Any, Final

from sqlalchemy import Connection as SaConnection
from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select

from propdesk.core.backoff import Backoff
from propdesk.storage import rows as rw
from propdesk.storage import wire
from propdesk.storage.db import create_sync_engine_for, describe_error
from propdesk.storage.repositories import (
    _ACCOUNT_KEEP,
    ORDER_KEEP,
    TABLES,
    _insert,
    insert_ignore,
    table_rank,
    upsert,
)

__all__ = [
    "STOP",
    "WRITER_NICE",
    "WriterDiedError",
    "WriterProcess",
    "child_main",
    "max_event_seq_sync",
    "write_rows_sync",
    "writer_main",
]

log = logging.getLogger("propdesk.storage.writer")

STOP: Final = b""
"""The message that asks the child to write what it has and exit."""

_MERGE_MAX_BATCHES: Final = 64
"""At most this many batches waiting in the pipe are merged into one transaction."""

WRITER_NICE: Final = 10
"""How much the writer process lowers its scheduling priority (POSIX ``nice``). When the scheduler puts the writer on
the core's CPU (2-vCPU machines do, often), the core's thread keeps most of it; on a machine with an idle core the
writer loses nothing, and a writer starved by other load shows as back-pressure, never as a slower core. Measured
on 2 vCPUs (``sma_cross`` backtest, paired runs): a busy process beside the backtest raised its median replay loop
from 232 ms to 262 ms at nice 0 and not at all at nice 5; with the journal on, the writer's own share of the
slowdown fell from about 11% (nice 0) to 2.5% (nice 5) and 0.5% (nice 10)."""


PIPE_BYTES: Final = 1 << 20
"""The batch pipe's capacity asked of Linux (``F_SETPIPE_SZ``; the default 1 MiB ``pipe-max-size``): a cut's batch
(~100 KB on the ``sma_cross`` backtest) then fits whole, so the core's thread writes it at once itself."""

_F_SETPIPE_SZ: Final = 1031
_HEADER: Final = struct.Struct("!i")
"""The length prefix of a message on a ``multiprocessing.connection.Connection`` (what the child reads with)."""


def _direct_fd(fd: int) -> int | None:
    """Enlarge the pipe behind ``fd`` to :data:`PIPE_BYTES` if the system lets it, and open a second, non-blocking
    description of its write end (``/proc/self/fd``: Linux) for the caller's own writes; ``None`` where that cannot
    be done: then every send goes through the sender thread."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only

        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (ImportError, OSError):
        return None


class WriterDiedError(RuntimeError):
    """The writer subprocess ended without being asked to (or could not start)."""


# --------------------------------------------------------------------------------------------- the write itself


_FAST_TABLES: Final = frozenset({"order_events", "fills", "position_snapshots", "orders", "accounts", "events"})
"""Tables whose rows hold only ints, strings, booleans and NULLs: written by the driver's own ``executemany``."""

_RUN_TABLES: Final = frozenset({"strategy_runs", "backtest_results"})
"""A run's rows: on SQLite they take the driver's path too, their statements compiled when the writer starts (the
end of a backtest waits for the commit of its result, and a first compile there cost ~2 ms). Not on PostgreSQL: a
result's float may be infinite (a profit factor without losses), which its JSON recordset cannot carry."""

_SQL_CACHE: dict[tuple[str, str, str, tuple[str, ...]], tuple[str, tuple[str, ...] | None, bool]] = {}


def _statement(conn: SaConnection, name: str, kind: str, keys: tuple[str, ...]) -> Any:
    tbl = TABLES[name]
    dialect = conn.dialect.name
    if kind == "ignore":
        return insert_ignore(dialect, tbl)
    if kind == "orders":
        return upsert(dialect, tbl, ("account_id", "client_order_id"), "ts_last_ns", keep=ORDER_KEEP)
    if kind == "runs":
        return upsert(dialect, tbl, ("id",))
    if kind == "instances":
        return upsert(dialect, tbl, ("name",))
    stmt = _insert(dialect, tbl)  # account reports: refresh every detail but the first sighting
    cols = {c.name: stmt.excluded[c.name] for c in tbl.columns if c.name not in _ACCOUNT_KEEP and not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=["account_id"], set_=cols)


_BIND: Final = re.compile(r"%\((\w+)\)s")
_JSON_ROWS: Final = json.JSONEncoder(separators=(",", ":")).encode


def _pg_recordset(name: str, sql: str) -> tuple[str, tuple[str, ...]]:
    """Rewrite a compiled one-row ``INSERT INTO t (cols) VALUES (%(a)s, ...) ON CONFLICT ... [RETURNING ...]``
    (``pyformat``) as ``INSERT INTO t (cols) SELECT cols FROM json_populate_recordset(NULL::t, %s::json) ON
    CONFLICT ...``: the whole batch travels as one JSON array of row objects (encoded by the C JSON encoder; PostgreSQL
    converts each field to its column's type), so it is one short statement and one round trip. psycopg without its
    C extension would otherwise parse or escape every value in Python (a multi-row ``VALUES`` or text arrays cost
    more than the insert). Returns the SQL and the column names; the ``RETURNING`` clause (unread) is dropped."""
    start = sql.index(" VALUES (")
    end = sql.index(" ON CONFLICT", start)
    names = tuple(_BIND.findall(sql[start:end]))
    tail = sql[end:]
    returning = tail.find(" RETURNING ")
    if returning >= 0:
        tail = tail[:returning]
    cols = ", ".join(names)
    return f"{sql[:start]} SELECT {cols} FROM json_populate_recordset(NULL::{name}, %s::json){tail}", names


def _executemany(conn: SaConnection, name: str, kind: str, rows: list[rw.Row]) -> None:
    """``executemany`` of one statement over ``rows`` (all with the same keys). The hot tables skip SQLAlchemy's
    per-row parameter processing: the statement is compiled once for the dialect and its keys; SQLite's driver gets
    plain tuples (``qmark``, one prepared statement), PostgreSQL gets one ``INSERT ... SELECT ... FROM
    json_populate_recordset(...)`` (:func:`_pg_recordset`: one round trip for the table's rows, not one a row)."""
    if not rows:
        return
    keys = tuple(rows[0])
    if name not in _FAST_TABLES and (name not in _RUN_TABLES or conn.dialect.name != "sqlite"):
        conn.execute(_statement(conn, name, kind, keys), rows)
        return
    sql, positions, recordset = _compiled(conn, name, kind, keys)
    if recordset:
        conn.exec_driver_sql(sql, (_JSON_ROWS(rows),))
        return
    if positions is not None:
        get = operator.itemgetter(*positions)
        params: list[Any] = [get(r) for r in rows] if len(positions) > 1 else [(get(r),) for r in rows]
    else:
        params = rows
    conn.exec_driver_sql(sql, params)


def _compiled(
    conn: SaConnection, name: str, kind: str, keys: tuple[str, ...]
) -> tuple[str, tuple[str, ...] | None, bool]:
    """The driver-level SQL of one statement for ``keys`` (cached per dialect, table, kind and keys): the SQL, the
    order of the row's keys in its parameters (``None``: by name), and whether it is a PostgreSQL JSON recordset."""
    dialect = conn.dialect.name
    cache_key = (dialect, name, kind, keys)
    cached = _SQL_CACHE.get(cache_key)
    if cached is None:
        compiled = _statement(conn, name, kind, keys).compile(dialect=conn.dialect, column_keys=list(keys))
        positions = compiled.positiontup
        if positions is None and dialect == "postgresql":
            sql, names = _pg_recordset(name, compiled.string)
            cached = _SQL_CACHE[cache_key] = (sql, names, True)
        else:
            cached = _SQL_CACHE[cache_key] = (compiled.string, None if positions is None else tuple(positions), False)
    return cached


def _warm_run_statements(conn: SaConnection) -> None:
    """Compile the run tables' statements (SQLite: :data:`_RUN_TABLES`) before the writer reports ready."""
    if conn.dialect.name != "sqlite":
        return
    run = rw.strategy_run_row(run_id="", kind="", strategy="", symbol="", started_ns=0)
    _compiled(conn, "strategy_runs", "runs", tuple(run))
    _compiled(conn, "backtest_results", "ignore", tuple(rw.backtest_result_row("", {})))


def write_rows_sync(conn: SaConnection, dialect: str, rows: Iterable[tuple[str, rw.Row]]) -> int:
    """Write ``(table, row)`` pairs inside the open transaction ``conn``: insert-or-ignore, an upsert that keeps
    the newest state for ``orders``, a refresh for ``accounts`` reports, an upsert by id for ``strategy_runs`` (by
    name for ``strategy_instances``) -
    the same rules as :meth:`propdesk.storage.repositories.Repository.write`, on a synchronous connection. Returns
    the rows given.

    Raises:
        KeyError: an unknown table. sqlalchemy errors: the database refused the batch.
    """
    groups: dict[str, list[rw.Row]] = {}
    n = 0
    for table, row in rows:
        groups.setdefault(table, []).append(row)
        n += 1
    for name in sorted(groups, key=table_rank):
        batch = groups[name]
        if name == "strategy_runs":
            runs = {r["id"]: r for r in batch}  # the newest row of each run (start, then end)
            _executemany(conn, name, "runs", list(runs.values()))
        elif name == "strategy_instances":
            newest = {r["name"]: r for r in batch}  # an instance's latest state (desired state, version)
            _executemany(conn, name, "instances", list(newest.values()))
        elif name == "orders":
            last: dict[tuple[int, str], rw.Row] = {}
            for r in batch:  # one statement may not update the same row twice (PostgreSQL)
                key = (r["account_id"], r["client_order_id"])
                cur = last.get(key)
                if cur is None or cur["ts_last_ns"] <= r["ts_last_ns"]:
                    last[key] = r
            _executemany(conn, name, "orders", list(last.values()))
        elif name == "accounts":
            _executemany(conn, name, "ignore", [r for r in batch if not r["name"] and r["balance_cents"] is None])
            reports = {r["account_id"]: r for r in batch if r["name"] or r["balance_cents"] is not None}
            _executemany(conn, name, "report", list(reports.values()))
        else:
            _executemany(conn, name, "ignore", batch)
    return n


# --------------------------------------------------------------------------------------------- the child


def max_event_seq_sync(engine: Engine) -> int:
    """The largest ``events.seq`` stored (0 when there is none)."""
    with engine.connect() as conn:
        return int(conn.execute(sa_select(func.max(TABLES["events"].c.seq))).scalar() or 0)


def _send(conn: Connection, msg: tuple[Any, ...]) -> None:
    conn.send_bytes(pickle.dumps(msg))


def _migrate(engine: Engine) -> None:
    """Bring the schema to head (Alembic), then mark the runs whose process is gone aborted
    (:func:`propdesk.storage.runs.sweep_runs`: a killed run is found at the next start, a backtest's too)."""
    from propdesk.storage.migrate import _upgrade, alembic_config, migration_lock  # noqa: PLC0415 - alembic only when asked
    from propdesk.storage.runs import sweep_runs  # noqa: PLC0415

    with migration_lock(engine.url), engine.begin() as conn:
        _upgrade(conn, alembic_config(), "head")
    with engine.begin() as conn:
        sweep_runs(conn)


def writer_main(  # noqa: PLR0917
    inbox: Connection,
    outbox: Connection,
    url: str,
    retry_delay_s: float,
    max_retry_delay_s: float,
    migrate: bool = False,
) -> None:
    """The child's main loop (see the module docstring). Runs until it reads :data:`STOP` or the parent's end of
    the pipe closes. With ``migrate`` the database is first brought to the newest schema revision (Alembic) and the
    runs whose process is gone are marked aborted, before ``ready`` is reported (a failure there is reported as
    ``fatal``)."""
    logging.basicConfig(level=logging.WARNING, format="propdesk journal writer: %(levelname)s %(message)s")
    engine: Engine | None = None
    try:
        engine = create_sync_engine_for(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            _warm_run_statements(conn)
        if migrate:
            try:
                _migrate(engine)
            except Exception as exc:
                msg = f"migrating the database failed: {describe_error(exc, engine.url)}"
                _send(outbox, ("fatal", msg))
                return
    except Exception as exc:
        _send(outbox, ("fatal", describe_error(exc, None if engine is None else engine.url)))
        return
    dialect = engine.dialect.name
    url_obj = engine.url
    # The start-up heap (SQLAlchemy, Alembic, the models: ~10^5 objects) never becomes garbage; moved out of the
    # collector's sight, a full collection no longer scans it (one took ~40 ms in the middle of a batch, holding the
    # node's backlog up). The rows of a batch are acyclic and freed by reference counting.
    gc.collect()
    gc.freeze()
    retry = Backoff(retry_delay_s, 2.0, max_retry_delay_s)
    try:
        head = max_event_seq_sync(engine)
    except Exception as exc:
        _send(outbox, ("fatal", f"reading the event sequence failed: {describe_error(exc, url_obj)}"))
        engine.dispose()
        return
    _send(outbox, ("ready", os.getpid(), head))
    stopping = False
    writing: SaConnection | None = None  # one connection for the writer's life: no pool check-out and reset a batch
    try:
        while not stopping:
            try:
                data = inbox.recv_bytes()
            except EOFError:
                break
            if data == STOP:
                break
            pending = [data]
            while len(pending) < _MERGE_MAX_BATCHES and inbox.poll():  # merge what is already waiting
                try:
                    data = inbox.recv_bytes()
                except EOFError:
                    stopping = True
                    break
                if data == STOP:
                    stopping = True
                    break
                pending.append(data)
            batches = [wire.loads(b) for b in pending]
            last_seq = batches[-1][0]
            n_records = sum(len(b[1]) for b in batches)
            rows: list[tuple[str, rw.Row]] = []
            for seq, items, orders, scope in batches:
                rows.extend(wire.rows_of(items, orders, scope=scope, last_seq=seq))
            waits = retry.delays()
            while True:
                try:
                    if writing is None:
                        writing = engine.connect()
                    with writing.begin():
                        write_rows_sync(writing, dialect, rows)
                    break
                except Exception as exc:
                    _drop_connection(writing)
                    writing = None
                    _send(outbox, ("fail", last_seq, describe_error(exc, url_obj)))
                    time.sleep(next(waits))
            _send(outbox, ("ack", last_seq, n_records, len(rows)))
    finally:
        if writing is not None:
            with contextlib.suppress(Exception):
                writing.close()
        engine.dispose()


def _drop_connection(conn: SaConnection | None) -> None:
    """Close ``conn`` (after a failed transaction: a new one is opened for the retry, so a connection the server
    dropped is not used again)."""
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.invalidate()
            conn.close()


# --------------------------------------------------------------------------------------------- the parent's end


class WriterProcess:
    """The parent's handle on one writer subprocess (see the module docstring).

    The child is ``python -m propdesk.storage.writer_child`` started with :mod:`subprocess` (not ``multiprocessing``,
    which would import the parent's ``__main__`` again in the child); it talks over two pipes passed by descriptor
    and logs to the parent's stderr.

    Args:
        url: the database URL with its password (any driver: the child uses the synchronous one). It is the first
            message on the pipe, never on a command line.
        retry_delay_s / max_retry_delay_s: the child's backoff after a failed transaction (seconds).
        migrate: the child upgrades the schema (Alembic) and marks the runs whose process is gone aborted
            (:func:`propdesk.storage.runs.sweep_runs`) before it reports ready.

    Attributes:
        fileno: the acknowledgement pipe's descriptor (readable when :meth:`read` has something, or at the end).
    """

    def __init__(
        self, url: str, *, retry_delay_s: float = 0.2, max_retry_delay_s: float = 5.0, migrate: bool = False
    ) -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "propdesk.storage.writer_child", str(in_r), str(out_w)],
                pass_fds=(in_r, out_w),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            os.close(in_r)
            os.close(out_w)
        self._send_conn = Connection(in_w, readable=False)
        self._direct = _direct_fd(in_w)
        self._queued = 0  # messages handed to the sender thread and not yet written (under _queued_lock)
        self._queued_lock = threading.Lock()
        self.send_error: str | None = None
        self._ack_conn = Connection(out_r, writable=False)
        # one poll object for the acknowledgement pipe: Connection.poll() builds a selector on every call (~0.1 ms)
        self._ack_poll = select.poll()
        self._ack_poll.register(out_r, select.POLLIN)
        self.fileno = out_r
        self._queue: SimpleQueue[tuple[bytes, bool] | None] = SimpleQueue()  # (data, already framed)
        self.send(pickle.dumps((url, retry_delay_s, max_retry_delay_s, migrate)))
        self._sender = threading.Thread(target=self._send_loop, name="propdesk-journal-sender", daemon=True)
        self._sender.start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid

    @property
    def exitcode(self) -> int | None:
        """The child's exit code (``None`` while it runs)."""
        return self._proc.poll()

    def _send_loop(self) -> None:
        conn = self._send_conn
        fd = conn.fileno()
        while True:
            item = self._queue.get()
            if item is None:
                return
            data, framed = item
            try:
                if framed:  # the rest of a message the caller began writing itself
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                else:
                    conn.send_bytes(data)
            except OSError as exc:  # the child died: the acknowledgement pipe reports it too
                self.send_error = f"{type(exc).__name__}: {exc}"
                return
            finally:
                with self._queued_lock:
                    self._queued -= 1

    def send(self, data: bytes) -> None:
        """Send ``data`` (a batch's bytes, or :data:`STOP`) to the child; never blocks. While nothing waits for the
        sender thread, the caller writes the message itself, non-blocking, into the enlarged pipe (one syscall, and
        no hand-over of the GIL to the sender thread and back, which cost the core's thread more than the write);
        what does not fit (a writer that lags) is left to the sender thread, in order."""
        fd = self._direct
        if fd is not None and not self._queued and self.send_error is None and len(data) < 0x7FFFFFFF:
            header = _HEADER.pack(len(data))
            try:
                n = os.writev(fd, (header, data))
            except BlockingIOError:
                n = 0
            except OSError as exc:  # the child died (the acknowledgement pipe reports it too)
                self.send_error = f"{type(exc).__name__}: {exc}"
                return
            if n == len(data) + 4:
                return
            if n:
                self._enqueue((header + data)[n:], framed=True)
                return
        self._enqueue(data, framed=False)

    def _enqueue(self, data: bytes, *, framed: bool) -> None:
        with self._queued_lock:
            self._queued += 1
        self._queue.put((data, framed))

    def read(self) -> list[tuple[Any, ...]]:
        """Every message the child has sent so far, without blocking.

        Raises:
            WriterDiedError: the child is gone (end of file on its pipe).
        """
        out: list[tuple[Any, ...]] = []
        conn = self._ack_conn
        ready = self._ack_poll.poll
        try:
            while ready(0):  # readable, or the end of the pipe (POLLHUP): recv_bytes then raises EOFError
                out.append(pickle.loads(conn.recv_bytes()))
        except (EOFError, OSError) as exc:
            if out:
                return out  # deliver what arrived; the next read reports the end
            code = self._wait(0.5)
            raise WriterDiedError(f"the journal writer process died (exit code {code}; {type(exc).__name__})") from None
        return out

    def _wait(self, timeout_s: float) -> int | None:
        try:
            return self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def wait_readable(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until :meth:`read` has something (or the child is gone)."""
        return self._ack_conn.poll(timeout_s)

    def stop(self, timeout_s: float = 10.0, *, wait: bool = True) -> None:
        """Ask the child to finish (after what was sent) and wait for it; kill it after ``timeout_s``.

        With ``wait=False`` (everything sent was acknowledged, so nothing is left to write) the call returns at once:
        the child's own shutdown (closing the database, interpreter exit: 0.1-0.5 s) runs in the background, and a
        daemon thread reaps it (killing it after ``timeout_s``).
        """
        self.send(STOP)
        self._queue.put(None)
        if not wait:
            threading.Thread(target=self._reap, args=(timeout_s,), name="propdesk-journal-reaper", daemon=True).start()
            return
        self._sender.join(timeout_s)
        if self._wait(timeout_s) is None:
            self.kill()
        self.close()

    def _reap(self, timeout_s: float) -> None:
        self._sender.join(timeout_s)
        if self._wait(timeout_s) is None:
            self.kill()
        self.close()

    def kill(self) -> None:
        """End the child at once (tests, and a writer that no longer answers)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._wait(2.0)

    def close(self) -> None:
        """Release the pipes and the sender thread (the child must be gone or going)."""
        self._queue.put(None)
        for conn in (self._send_conn, self._ack_conn):
            with contextlib.suppress(OSError):
                conn.close()
        fd, self._direct = self._direct, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def child_main(argv: list[str]) -> int:
    """The writer subprocess: ``argv[1]`` / ``argv[2]`` are the descriptors of its inbox and outbox pipes; the first
    message is ``(url, retry_delay_s, max_retry_delay_s, migrate)``. Returns the exit code (1: no start message;
    after a normal end the process exits at once with 0)."""
    inbox = Connection(int(argv[1]), writable=False)
    outbox = Connection(int(argv[2]), readable=False)
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(WRITER_NICE)
    try:
        url, retry, max_retry, migrate = pickle.loads(inbox.recv_bytes())
    except EOFError:
        return 1
    writer_main(inbox, outbox, url, retry, max_retry, migrate)
    # Everything is committed and the engine disposed: skip the interpreter's slow teardown (module and object
    # finalization, ~0.1-0.3 s) that nothing here needs.
    logging.shutdown()
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(0)
