"""propdesk's own HTTP API (issue 14): request security and alert webhooks; the REST and WebSocket server on the
``Desk`` builds on these.

* :mod:`~propdesk.api.problems`: RFC 9457 ``application/problem+json`` errors with stable codes.
* :mod:`~propdesk.api.keys`: API keys (scopes ``read``, ``trade``, ``admin``; stored hashed) and their store.
* :mod:`~propdesk.api.ratelimit`: per-key token buckets.
* :mod:`~propdesk.api.hosts`: the Host and Origin checks on every request (DNS rebinding, cross-site POST).
* :mod:`~propdesk.api.auth`: the FastAPI dependencies that authenticate a request and require a scope.
* :mod:`~propdesk.api.tickets`: single-use WebSocket tickets.
* :mod:`~propdesk.api.webhooks`: TradingView-style alerts parsed into one signal, judged, turned into commands.
"""
