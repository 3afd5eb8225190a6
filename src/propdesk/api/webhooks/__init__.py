"""Alert webhooks (TradingView and similar), as pure code: parse, secure, resolve, judge, and turn into commands.

The flow of one ``POST /hooks/{hook_id}`` (the server that receives it is built on the ``Desk``):

1. :mod:`.security`: the hook id (128 random bits) names a :class:`~.signal.HookSettings`; the body's passphrase
   is compared in constant time; an optional HMAC signature header with a timestamp window is verified.
2. :mod:`.payloads`: the JSON body, in propdesk's own schema or the TradersPost- or PickMyTrade-style alert
   traders already use, becomes one :class:`~.payloads.Alert`.
3. :mod:`.symbols`: the alert's ticker (``ES1!``, ``CME_MINI:ESZ2025``, ``ESZ5``, ``ES``) becomes a listed contract
   through the roll calendar, remapped (``ES`` -> ``MES``) only when the quantity stays whole; the result is a
   :class:`~.signal.Signal`.
4. :mod:`.checks`: the pure checks that name an outcome before the Desk sees the signal (rate limited, duplicate,
   stale, symbol not allowed, outside session, price drift).
5. :mod:`.commands`: the Desk commands that move the position towards the signal's target.

Every signal ends with one :class:`~.signal.Outcome`. :mod:`.pipeline` runs the steps in order for one request
(:func:`~.pipeline.receive`, then :func:`~.pipeline.evaluate`).
"""
