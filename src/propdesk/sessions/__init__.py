"""What each command runs: the paced replay behind ``propdesk run --replay`` (:mod:`propdesk.sessions.replay`),
live trading behind ``propdesk run --broker projectx`` (:mod:`propdesk.sessions.live`), the risk daemon behind
``propdesk risk`` (:mod:`propdesk.sessions.risk_daemon`) and the scaffolding they share
(:mod:`propdesk.sessions.common`).

Imports ``node`` and the packages below it (ARCHITECTURE.md).
"""
