"""BentoML's TimeoutMiddleware after ``release_request_timers``: same deadline, no timer kept."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from bentoml._internal.server.http.traffic import TimeoutMiddleware

from loyalty_ml.serving.bento import release_request_timers

release_request_timers()


async def _call(app: Any, timeout: float) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await TimeoutMiddleware(app, timeout=timeout)({"type": "http", "path": "/x"}, receive, send)
    return sent


def _responder(delay_before: float = 0.0, delay_inside: float = 0.0) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(delay_before)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(delay_inside)
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_fast_requests_leave_no_timers_behind() -> None:
    async def many() -> int:
        middleware = TimeoutMiddleware(_responder(), timeout=150)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(_: Any) -> None:
            return None

        gc.collect()
        before = len(gc.get_objects())
        for _ in range(2000):
            await middleware({"type": "http", "path": "/x"}, receive, send)
        gc.collect()
        # BentoML's own middleware leaves 5 tracked objects per request for `timeout` seconds
        return len(gc.get_objects()) - before

    assert asyncio.run(many()) < 200


def test_no_response_within_the_timeout_answers_504() -> None:
    sent = asyncio.run(_call(_responder(delay_before=1.0), timeout=0.05))
    assert sent[0]["status"] == 504
    assert b"0.05 seconds" in sent[1]["body"]


def test_a_started_response_runs_to_its_end() -> None:
    sent = asyncio.run(_call(_responder(delay_inside=0.2), timeout=0.05))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"


def test_the_apps_own_timeout_is_not_turned_into_504() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise TimeoutError("the app's own")

    with pytest.raises(TimeoutError, match="the app's own"):
        asyncio.run(_call(app, timeout=5))


def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def noop(*_: Any) -> Any:
        return None

    asyncio.run(TimeoutMiddleware(app, timeout=1)({"type": "lifespan"}, noop, noop))
    assert seen == ["lifespan"]
