"""``create_app``: propdesk's HTTP API as one FastAPI app on a :class:`~propdesk.node.service.DeskService`.

* REST under ``/api/v1`` (:mod:`propdesk.api.rest`), the WebSocket at ``/api/v1/ws`` (:mod:`propdesk.api.ws`), the
  OpenAPI document at ``/api/v1/openapi.json`` (the dashboard generates its TypeScript types from it; interactive
  docs at ``/api/v1/docs``).
* Every error is ``application/problem+json`` with a stable code (:mod:`propdesk.api.problems`).
* A body is bounded before it is parsed (:class:`~propdesk.api.limits.BodyGuard`: size, nesting, number length).
* Every request passes the Host and Origin checks (:class:`~propdesk.api.hosts.HostOriginGuard`: the loopback names
  and the configured bind host) and is authenticated by API key with the route's scope (:mod:`propdesk.api.auth`).

The routes call the desk directly: run the app on the event loop the desks run on
(:class:`propdesk.api.server.ApiServer`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema
from sqlalchemy.ext.asyncio import AsyncEngine

from propdesk.api.auth import Authenticator, install_auth
from propdesk.api.hosts import HostOriginGuard
from propdesk.api.limits import BodyGuard
from propdesk.api.problems import install_problem_handlers
from propdesk.api.rest import ApiContext, build_router
from propdesk.api.ws import MESSAGE_MODELS, build_ws_router
from propdesk.config import ApiSettings
from propdesk.node.service import DeskService
from propdesk.node.stream import EventStream

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
"""Where the API's routes live."""


def create_app(
    service: DeskService,
    stream: EventStream | None,
    authenticator: Authenticator,
    settings: ApiSettings | None = None,
    *,
    engine: AsyncEngine | None = None,
    allowed_hosts: tuple[str, ...] = (),
    heartbeat_s: float = 15.0,
) -> FastAPI:
    """The API app.

    Args:
        service: the accounts' desks. stream: their sequenced event stream (``None``: no WebSocket deltas, no
            ``events`` catch-up). authenticator: API keys, rate limits and WebSocket tickets.
        settings: the ``[api]`` settings (its ``host`` is an allowed ``Host`` name besides the loopback ones).
        engine: the journal's database (``events`` catch-up, parameter versions; ``None``: those answer 404).
        allowed_hosts: more names the ``Host`` header may carry (a LAN name the trader chose).
        heartbeat_s: seconds between two WebSocket heartbeats (> 0).

    Raises:
        ValueError: a ``heartbeat_s`` that is not positive.
    """
    if not heartbeat_s > 0:
        raise ValueError(f"heartbeat_s must be positive, not {heartbeat_s}")
    settings = settings or ApiSettings()
    app = FastAPI(
        title="propdesk API",
        version="1",
        description="REST and a resumable WebSocket stream on propdesk's desks (CME futures on prop-firm accounts).",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.propdesk_api = ApiContext(service=service, stream=stream, engine=engine, heartbeat_s=heartbeat_s)
    install_problem_handlers(app)
    install_auth(app, authenticator)
    app.include_router(build_router(), prefix=API_PREFIX)
    app.include_router(build_ws_router(), prefix=API_PREFIX)
    app.add_middleware(BodyGuard)
    app.add_middleware(HostOriginGuard, allowed_hosts=[settings.host, *allowed_hosts])  # outermost: first check
    _add_message_schemas(app)
    return app


def _add_message_schemas(app: FastAPI) -> None:
    """Add the WebSocket's message shapes (:data:`propdesk.api.ws.MESSAGE_MODELS`) to the OpenAPI document's
    ``components.schemas``, so the dashboard's generated types cover the socket too."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        _, defs = models_json_schema(
            [(m, "serialization") for m in MESSAGE_MODELS], ref_template="#/components/schemas/{model}"
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            schemas.setdefault(name, definition)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document
