"""BentoML wiring for ``serving/service.py``: service options and mounting the app at ``/``.

BentoML 1.4 registers its own ``/healthz``, ``/readyz``, ``/livez`` and ``/metrics`` ahead of
mounted apps; with ``path_prefix`` they move under ``/bentoml/``. ``@bentoml.asgi_app`` would
join the same prefix onto the app's mount path, so the app is appended to ``mount_apps`` at ``/``
directly (the list ``Service.mount_asgi_app`` itself appends to).

The app is mounted as a ``DeferredApp``: BentoML's serve process imports ``serving/service.py``
once before it starts any worker, and every worker imports it again. Building the API there
(FastAPI, pandas, the schemas: ~3 s here) would run once serially before the workers even start;
deferred, only the workers build it, in parallel, when BentoML runs the mount's lifespan.

BentoML's ``TimeoutMiddleware`` (1.4) schedules a ``traffic.timeout`` timer for every request and
never cancels it: each request leaves five tracked objects (timer, context, future, bound method,
tuple) alive for the whole timeout. At thousands of requests per second they fill the collector's
older generations, and a generation-1 collection walking them stalled every in-flight request of
the worker for 380–490 ms. ``release_request_timers`` gives the middleware the same deadline with
a timer that is released when the request ends.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

BENTO_PREFIX = "/bentoml"
WORKERS_ENV = "LOYALTY_SERVE_WORKERS"
TIMEOUT_S = 150  # > the at-risk timeout in serving.yaml
APP_TARGET = "loyalty_ml.serving.asgi:app"


def service_options() -> dict[str, Any]:
    workers = int(os.environ.get(WORKERS_ENV, "2"))
    return {
        "name": "loyalty_ml",
        "path_prefix": BENTO_PREFIX,
        "workers": workers,
        "traffic": {"timeout": TIMEOUT_S},
        "logging": {"access": {"enabled": False}},
        "metrics": {"enabled": False},
        "tracing": {"sample_rate": 0.0},
    }


class DeferredApp(Starlette):
    """An ASGI app that imports ``target`` (``module:attribute``) when its lifespan starts, then
    runs that app's lifespan and hands it every request.

    A ``Starlette`` so BentoML runs its lifespan (it does so for mounted Starlette apps only)
    and matches request paths against ``routes`` (before the lifespan: none, so 404).
    """

    def __init__(self, target: str = APP_TARGET) -> None:
        self.target = target
        self.app: Any = None
        super().__init__(lifespan=self._lifespan)

    @property
    def routes(self) -> list[Any]:
        """The app's routes once loaded: BentoML's mount matches paths against them."""
        return self.app.routes if self.app is not None else []

    def load(self) -> Any:
        if self.app is None:
            module, _, attr = self.target.partition(":")
            self.app = getattr(importlib.import_module(module), attr or "app")
        return self.app

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        app = self.load()
        async with app.router.lifespan_context(app):
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # a server that sends lifespan events to this app itself
            await super().__call__(scope, receive, send)
            return
        await self.load()(scope, receive, send)


def mount_at_root(service: Any, app: Any, name: str) -> None:
    service.mount_apps.append((app, "/", name))


async def _deadline_until_response_starts(
    self: Any, scope: Scope, receive: Receive, send: Send
) -> None:
    """BentoML's timeout semantics (504 when no response has started within ``self.timeout``
    seconds; a started response runs to its end) with a timer released when the request ends."""
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    deadline = asyncio.timeout(self.timeout)

    async def send_and_disarm(message: Any) -> None:
        if deadline.when() is not None:  # the first message: the response has started
            deadline.reschedule(None)
        await send(message)

    try:
        async with deadline:
            await self.app(scope, receive, send_and_disarm)
    except TimeoutError:
        if not deadline.expired():
            raise  # the app's own timeout, not ours
        message = f"Not able to process the request in {self.timeout} seconds"
        await JSONResponse({"error": message}, status_code=504)(scope, receive, send)


def release_request_timers() -> None:
    """Patch BentoML's ``TimeoutMiddleware`` (see the module docstring); idempotent."""
    from bentoml._internal.server.http import traffic

    traffic.TimeoutMiddleware.__call__ = _deadline_until_response_starts  # type: ignore[method-assign]
