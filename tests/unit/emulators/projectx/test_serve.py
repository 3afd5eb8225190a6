"""``propdesk gateway``'s start banner (the --api-base URL a client takes, credentials, admin token, never the JWT
key) and uvicorn's logging with hub tokens redacted."""

from __future__ import annotations

import logging
import re

from propdesk.brokers.projectx.config import ProjectXSettings
from propdesk.emulators.projectx.serve import RedactTokens, base_url, log_config, redact, start_banner
from tests.unit.emulators.projectx.conftest import ADMIN_TOKEN, USER, Api, gateway_client, make_app, make_config


def _option(banner: str, name: str) -> str:
    m = re.search(rf"{name} (\S+)", banner)
    assert m is not None, name
    return m.group(1)


def test_banner_urls_are_what_propdesk_run_accepts_and_the_gateway_serves() -> None:
    cfg = make_config()
    banner = start_banner(cfg)
    settings = ProjectXSettings(
        api_base=_option(banner, "--api-base"),
        user_hub_url=_option(banner, "--user-hub"),
        market_hub_url=_option(banner, "--market-hub"),
    )
    assert settings.api_base == "http://127.0.0.1:8900"
    with gateway_client(make_app()) as client:  # the broker's client posts to {api_base}/api/<endpoint>
        assert client.get(f"{settings.api_base}/api/Status/ping").json() == "pong"
        assert client.get(_option(banner, "OpenAPI")).status_code == 200
        token = Api(client).token
        for hub in (settings.user_hub_url, settings.market_hub_url):
            assert client.post(f"{hub}/negotiate?access_token={token}").status_code == 200


def test_banner_prints_the_login_and_admin_token_but_not_the_jwt_key() -> None:
    cfg = make_config(jwt_secret="the-signing-key-must-stay-hidden")
    banner = start_banner(cfg)
    assert USER["userName"] in banner
    assert USER["apiKey"] in banner
    assert f"Authorization: Bearer {ADMIN_TOKEN}" in banner
    assert "PROPDESK_PROJECTX_USERNAME=propdesk" in banner
    assert cfg.jwt_secret not in banner


def test_an_ipv6_bind_gets_a_bracketed_base_url() -> None:
    assert base_url(make_config(bind="[::1]:8901")) == "http://[::1]:8901"


def test_hub_tokens_are_redacted_from_log_lines() -> None:
    line = '127.0.0.1:5000 - "WebSocket /hubs/user?access_token=eyJ.abc.def&id=42" [accepted]'
    assert redact(line) == '127.0.0.1:5000 - "WebSocket /hubs/user?access_token=***&id=42" [accepted]'
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:5000", "POST", "/hubs/user/negotiate?access_token=eyJ.abc.def", "1.1", 200)
    assert RedactTokens().filter(record) is True
    assert "eyJ" not in record.getMessage()
    assert record.args[2] == "/hubs/user/negotiate?access_token=***"
    cfg = log_config()
    assert all("redact_tokens" in h["filters"] for h in cfg["handlers"].values())
