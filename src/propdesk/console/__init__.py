"""The Rich views of the sessions: the replay dashboard (:mod:`propdesk.console.replay`), the live dashboard
(:mod:`propdesk.console.live`), the risk daemon's status (:mod:`propdesk.console.risk_daemon`), the risk outcome
tables and panel (:mod:`propdesk.console.risk`) and the pieces they share (:mod:`propdesk.console.display`).

Imports ``node``, ``sessions`` and the packages below them (ARCHITECTURE.md).
"""
