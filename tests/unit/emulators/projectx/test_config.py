"""GatewayConfig rules (loopback bind, unique ids) and the token service and rate limiter."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from propdesk.core.errors import ConfigError
from propdesk.emulators.projectx.auth import TokenService, TokenState
from propdesk.emulators.projectx.config import AccountConfig, GatewayConfig, load_gateway_config
from propdesk.emulators.projectx.ratelimit import SlidingWindowLimiter


@pytest.mark.parametrize("bind", ["0.0.0.0:8900", "192.168.1.5:8900", "example.com:80", "127.0.0.1"])
def test_non_loopback_or_malformed_bind_is_refused(bind: str) -> None:
    with pytest.raises(ValidationError):
        GatewayConfig(bind=bind)


def test_loopback_binds_and_config_file(tmp_path: Path) -> None:
    assert GatewayConfig(bind="[::1]:9000").port == 9000
    assert GatewayConfig(bind="localhost:1").host == "localhost"
    f = tmp_path / "gw.toml"
    f.write_text(
        'bind = "127.0.0.1:9100"\ntoken_ttl_s = 600\n[[accounts]]\nid = 5\nname = "A"\nbracket_mode = "auto_oco"\n'
    )
    cfg = load_gateway_config(f)
    assert (cfg.port, cfg.token_ttl_s, cfg.accounts[0].bracket_mode) == (9100, 600, "auto_oco")
    f.write_text('bind = "10.0.0.1:9100"\n')
    with pytest.raises(ConfigError):
        load_gateway_config(f)
    with pytest.raises(ConfigError):
        GatewayConfig().with_updates(bind="8.8.8.8:1")
    with pytest.raises(ValidationError):
        GatewayConfig(accounts=[AccountConfig(id=1, name="a"), AccountConfig(id=1, name="b")])
    with pytest.raises(ValidationError):
        GatewayConfig(market_keepalive_s=30)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_tokens_expire_renew_within_grace_and_revoke() -> None:
    clock = Clock()
    svc = TokenService("k" * 32, ttl_s=600, grace_s=60, user_name="u", api_key="key", now=clock)
    code, token = svc.login("u", "key")
    assert code == 0 and token is not None
    assert jwt.decode(token, "k" * 32, algorithms=["HS256"], options={"verify_exp": False})["exp"] == int(clock.t) + 600
    assert svc.login("u", "nope") == (3, None)
    assert svc.login("x", "key") == (1, None)
    clock.t += 601
    assert svc.check(token).state is TokenState.EXPIRED
    code, renewed = svc.validate(token)
    assert code == 0 and renewed is not None and svc.is_valid(renewed)
    clock.t += 100
    assert svc.validate(token) == (3, None)
    assert svc.revoke(renewed)
    assert svc.check(renewed).state is TokenState.REVOKED
    assert svc.validate("garbage") == (1, None)


def test_sliding_window_limiter_counts_only_allowed_requests() -> None:
    clock = Clock()
    lim = SlidingWindowLimiter(2, 30, now=clock)
    assert lim.hit("a") is None
    clock.t += 10
    assert lim.hit("a") is None
    assert lim.hit("a") == 20
    assert lim.hit("b") is None
    clock.t += 20.5
    assert lim.hit("a") is None
    assert lim.hit("a") == 10


def test_deeply_nested_json_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"accounts": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError) as exc:
        load_gateway_config(path)
    assert str(exc.value) == f"gateway configuration {path}: invalid JSON (nested too deeply to parse)"


def test_non_utf8_gateway_config_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_bytes(b"speed = '\xff'\n")
    with pytest.raises(ConfigError) as exc:
        load_gateway_config(path)
    assert str(exc.value) == f"gateway configuration {path}: is not UTF-8 text (byte 0xff at offset 9)"


def test_invalid_value_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("speed = 'fast'\n")
    with pytest.raises(ConfigError) as exc:
        load_gateway_config(path)
    reason = "speed: Input should be a valid number, unable to parse string as a number"
    assert str(exc.value) == f"gateway configuration {path}: invalid: {reason}"
