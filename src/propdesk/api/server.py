"""``ApiServer``: uvicorn serving the API app inside the running event loop, beside the desks.

The app's routes call the desks directly, so the server must run on the loop the desks run on: :meth:`ApiServer.start`
starts a :class:`uvicorn.Server` as a task of the current loop (no thread, no signal handlers of its own: the
session owns SIGINT/SIGTERM) and returns once it listens; :meth:`ApiServer.stop` closes it (open WebSockets are
closed, requests in flight finish). Binds ``[api] host``/``port`` (127.0.0.1:8000 by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import uvicorn
from fastapi import FastAPI

from propdesk.config import ApiSettings

__all__ = ["ApiServer"]

log = logging.getLogger("propdesk.api.server")

_STARTUP_POLL_S: Final = 0.01


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the session handles the process's signals
        return


class ApiServer:
    """The API app on uvicorn in the current event loop.

    Args:
        app: the app (:func:`propdesk.api.app.create_app`). settings: ``[api]`` host and port (port ``0``: any free
            port, see :attr:`port`). log_level: uvicorn's log level.
    """

    def __init__(
        self, app: FastAPI, settings: ApiSettings | None = None, *, port: int | None = None, log_level: str = "warning"
    ) -> None:
        settings = settings or ApiSettings()
        self.host = settings.host
        self._port = settings.port if port is None else port
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self._port,
            log_level=log_level,
            lifespan="off",
            access_log=False,
            server_header=False,
            ws_max_size=1 << 20,
            h11_max_incomplete_event_size=64 * 1024,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The TCP port listened on (the one the system chose when configured as ``0``, once started)."""
        for server in getattr(self._server, "servers", ()):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._task is not None and not self._task.done() and self._server.started

    async def start(self) -> None:
        """Start serving and return once the socket listens.

        Raises:
            RuntimeError: already started, or the server stopped before listening (the port is taken, the host
                cannot be bound: uvicorn logs why).
        """
        if self._task is not None:
            raise RuntimeError("the API server was already started")
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="propdesk-api-server")
        while not self._server.started:
            if self._task.done():
                self._task = None
                raise RuntimeError(f"the API server could not listen on {self.host}:{self._port}")
            await asyncio.sleep(_STARTUP_POLL_S)
        log.info("propdesk API listening on %s", self.url)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn exits on a startup failure (a taken port): never out of the loop
            log.error("the propdesk API could not start on %s:%s", self.host, self._port)

    async def stop(self) -> None:
        """Stop serving (idempotent): stop accepting, close the connections, wait for the server's task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await task
