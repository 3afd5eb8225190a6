"""propdesk's own HTTP API (issue 14): REST and a resumable WebSocket on the desks, request security, alert webhooks.

* :mod:`~propdesk.api.app`: :func:`~propdesk.api.app.create_app`, the app on a ``DeskService``.
* :mod:`~propdesk.api.rest`: the ``/api/v1`` resources; :mod:`~propdesk.api.schemas`: their shapes (OpenAPI).
* :mod:`~propdesk.api.ws`: ``/api/v1/ws``; :mod:`~propdesk.api.topics`: the stream names and event messages.
* :mod:`~propdesk.api.verdicts`: a denied command's verdict as a problem code.
* :mod:`~propdesk.api.server`: :class:`~propdesk.api.server.ApiServer`, uvicorn in the desks' event loop.

* :mod:`~propdesk.api.problems`: RFC 9457 ``application/problem+json`` errors with stable codes.
* :mod:`~propdesk.api.keys`: API keys (scopes ``read``, ``trade``, ``admin``; stored hashed) and their store.
* :mod:`~propdesk.api.ratelimit`: per-key token buckets.
* :mod:`~propdesk.api.hosts`: the Host and Origin checks on every request (DNS rebinding, cross-site POST).
* :mod:`~propdesk.api.auth`: the FastAPI dependencies that authenticate a request and require a scope.
* :mod:`~propdesk.api.tickets`: single-use WebSocket tickets.
* :mod:`~propdesk.api.webhooks`: TradingView-style alerts parsed into one signal, judged, turned into commands.
"""
