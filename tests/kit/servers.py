"""An ASGI app (the ProjectX gateway emulator, propdesk's API) served by uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_app(app: Any, port: int, *, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1:port`` (uvicorn, websockets-sansio) in a daemon thread; yield ``host:port`` once
    it accepts connections, stop it afterwards. Use with ``yield from`` in a fixture or with
    ``contextlib.contextmanager``. Fails the test when the server has not started within ``start_timeout_s``."""
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + start_timeout_s
    while not srv.started:
        assert time.monotonic() < deadline, f"server on 127.0.0.1:{port} did not start"
        time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)
