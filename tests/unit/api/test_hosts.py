"""Host and Origin checks (DNS rebinding, cross-site requests) answered with problem documents."""

from __future__ import annotations

import pytest

from propdesk.api.hosts import allowed_host_names, host_name
from tests.unit.api.conftest import ApiHarness


def test_host_name_strips_the_port() -> None:
    assert host_name("127.0.0.1:8000") == "127.0.0.1"
    assert host_name("[::1]:8000") == "[::1]"
    assert host_name("LocalHost") == "localhost"
    assert "[fe80::1]" in allowed_host_names(["fe80::1"])


@pytest.mark.asyncio
async def test_foreign_host_and_cross_origin_are_refused(harness: ApiHarness) -> None:
    async with harness.client() as client:
        rebinding = await client.get("/ping", headers={"Host": "evil.example"})
        assert rebinding.status_code == 400 and rebinding.json()["code"] == "HOST_NOT_ALLOWED"
        assert (await client.get("/ping", headers={"Host": "desk.lan:9000"})).status_code == 200
        cross = await client.post(
            "/orders", headers={"Origin": "https://evil.example", "Content-Type": "text/plain"}, content="x"
        )
        assert cross.status_code == 403 and cross.json()["code"] == "CROSS_ORIGIN"
        fetch = await client.get("/ping", headers={"Sec-Fetch-Site": "cross-site"})
        assert fetch.status_code == 403
        same = await client.get("/ping", headers={"Origin": "http://127.0.0.1:8000"})
        assert same.status_code == 200
