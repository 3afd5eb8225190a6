"""Problem documents (RFC 9457): the model, the exception, and FastAPI's own errors answered as problems."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from propdesk.api.problems import PROBLEM_MEDIA_TYPE, ApiProblem, Problem, ProblemCode, install_problem_handlers


def test_every_code_has_a_status_and_type() -> None:
    for code in ProblemCode:
        assert 400 <= code.status < 600
        assert code.type_uri == f"urn:propdesk:problem:{code.value.lower()}"
    required = {"RISK_DENIED", "TRADING_STATE_HALTED", "IDEMPOTENCY_CONFLICT", "VERSION_CONFLICT"}
    assert required | {"BROKER_UNAVAILABLE", "VALIDATION_FAILED"} <= {c.value for c in ProblemCode}


def test_problem_of_fills_the_standard_members() -> None:
    p = Problem.of(ProblemCode.RISK_DENIED, "daily loss limit", rule_id="R2", headroom_usd="125.50")
    assert (p.status, p.title, p.code, p.rule_id, p.headroom_usd) == (409, "Conflict", "RISK_DENIED", "R2", "125.50")


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/deny")
    async def deny() -> None:
        raise ApiProblem(Problem.of(ProblemCode.RISK_DENIED, "R5 would exceed 5 contracts", rule_id="R5"))

    @app.post("/big")
    async def big() -> None:
        raise HTTPException(status_code=413, detail="body over 16384 bytes")

    @app.get("/items/{n}")
    async def item(n: int) -> dict[str, int]:
        return {"n": n}

    return app


@pytest.mark.asyncio
async def test_handlers_answer_problem_json() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        denied = await client.post("/deny")
        assert denied.status_code == 409
        assert denied.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        body = denied.json()
        assert body["code"] == "RISK_DENIED" and body["rule_id"] == "R5" and body["instance"] == "/deny"
        assert "headroom_usd" not in body  # None members are left out

        bad = await client.get("/items/not-a-number")
        assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION_FAILED"
        assert bad.json()["errors"][0]["loc"] == "path.n"

        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
        wrong_method = await client.delete("/deny")
        assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "METHOD_NOT_ALLOWED"
        big = await client.post("/big")
        assert big.status_code == 413 and big.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        body = big.json()
        assert (body["type"], body["status"], body["detail"]) == ("about:blank", 413, "body over 16384 bytes")
