"""The HTTP API: a lean FastAPI app that parses, calls one ``ServingBackend`` method, formats.

Per request, in order: the guard (API key and scope, from headers only — the body is not read
for a 401/403), the body-size limit (413), pydantic validation (422 with field-level messages),
the handler. ``/recommend`` never fails: a backend error or timeout answers 200 with
``fallback: "degraded"`` and cached popular items. Responses are serialised once with pydantic
(``model_dump_json``) and returned as bytes; ``response_model`` only documents them.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_ml.serving.backend import ServingBackend, ServingError
from loyalty_ml.serving.config import AuthConfig, ServingConfig, load_serving_config
from loyalty_ml.serving.exposures import ExposureLog
from loyalty_ml.serving.keys import KeyRing, load_keyring
from loyalty_ml.serving.metrics import ServingMetrics
from loyalty_ml.serving.schemas import (
    AtRiskRequest,
    AtRiskResponse,
    BenefitsRequest,
    BenefitsResponse,
    CancelResponse,
    ChurnScoreRequest,
    ChurnScoreResponse,
    ErrorResponse,
    Readiness,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    ReloadResponse,
)

log = logging.getLogger(__name__)
BACKEND_ENV = "LOYALTY_SERVING_BACKEND"
JSON = "application/json"
T = TypeVar("T")


def _json(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON)


def _error(
    status: int, code: str, message: str, detail: list[dict[str, Any]] | None = None
) -> Response:
    body = ErrorResponse(error=code, message=message, detail=detail)
    return Response(body.model_dump_json(exclude_none=True), status_code=status, media_type=JSON)


class FieldError(Exception):
    """A request that passed the schema but not a configured (tighter) limit: 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# -- the guard: authentication, scopes, metrics ----------------------------------------------
class Guard:
    """ASGI middleware: key and scope from headers before anything reads the body; timings."""

    def __init__(self, app: ASGIApp, *, auth: AuthConfig, state: ServingState) -> None:
        self.app = app
        self.state = state
        self.header = auth.header.encode()
        self.routes = sorted(auth.routes.items(), key=lambda kv: -len(kv[0]))
        self.public = tuple(auth.public)

    def required_scope(self, path: str) -> tuple[str, str | None]:
        """``(metrics label, scope)``; ``scope`` None for public or unknown paths."""
        for prefix, scope in self.routes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix, scope
        if path in self.public:
            return path, None
        return "other", None

    def api_key(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == self.header:
                return value.decode("latin-1")
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return value[7:].decode("latin-1").strip()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        label, required = self.required_scope(scope["path"])
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if required is not None:
                keyring = self.state.keyring
                scopes = keyring.scopes(self.api_key(scope)) if keyring is not None else None
                if scopes is None:
                    response = _error(401, "unauthorized", "missing or unknown API key")
                    response.headers["www-authenticate"] = 'ApiKey header="x-api-key"'
                    await response(scope, receive, send_wrapper)
                    return
                if required not in scopes:
                    response = _error(403, "forbidden", f"this key lacks the {required!r} scope")
                    await response(scope, receive, send_wrapper)
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            self.state.metrics.observe(
                scope["method"], label, status, time.perf_counter() - started
            )


# -- the lean hot path ------------------------------------------------------------------------
SLOW_PATH_HEADER = b"x-loyalty-slow-path"  # forces FastAPI's path (benchmarks, tests)
Handler = Callable[[Any], Awaitable[BaseModel]]


class FastPath:
    """ASGI layer for the hot POST endpoints: body → ``model_validate_json`` → handler → bytes.

    ``routes``: path → (request model, handler). Errors the handlers raise are answered like the
    app's exception handlers do; anything else unusual is replayed into ``app`` untouched."""

    def __init__(
        self, app: ASGIApp, routes: dict[str, tuple[type[BaseModel], Handler]], max_body: int
    ) -> None:
        self.app = app
        self.routes = routes
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        length, json_body = -1, True
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"content-type":  # FastAPI parses JSON when absent or */json
                json_body = value.split(b";")[0].strip().lower() == b"application/json"
            elif name == SLOW_PATH_HEADER:
                json_body = False
        if length < 0 or length > self.max_body or not json_body:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        model, handler = route
        try:
            request = model.model_validate_json(body)
            result = await handler(request)
        except (ValidationError, FieldError, StarletteHTTPException):
            await self.app(scope, _replay(body), send)  # FastAPI answers the error itself
            return
        except ServingError as exc:
            response = _error(exc.status_code, exc.code, exc.message)
            await response(scope, receive, send)
            return
        except Exception as exc:
            log.error("unhandled %s in a handler", type(exc).__name__)
            await _error(500, "internal_error", "internal error")(scope, receive, send)
            return
        payload = result.model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


# -- state shared by the handlers ------------------------------------------------------------
class PopularCache:
    """The degraded fallback: the last popular list the backend gave, persisted across restarts."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.items: list[RecommendedItem] = []

    def load_file(self) -> None:
        if self.path is None or not self.path.exists() or self.items:
            return
        with suppress(OSError, ValueError):
            raw = json.loads(self.path.read_text())
            self.items = [RecommendedItem.model_validate(i) for i in raw]

    async def refresh(self, backend: ServingBackend, n: int) -> None:
        try:
            items = await backend.popular(n)
        except Exception:
            log.warning("popular items unavailable; keeping the cached fallback list")
            self.load_file()
            return
        if not items:
            self.load_file()
            return
        self.items = list(items)
        if self.path is not None:
            with suppress(OSError):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps([i.model_dump() for i in self.items]))
                tmp.replace(self.path)

    def top(self, n: int, exclude: set[str]) -> list[RecommendedItem]:
        out = []
        for item in self.items:
            if item.product_id not in exclude:
                out.append(item)
                if len(out) == n:
                    break
        return out


class ServingState:
    def __init__(self, config: ServingConfig, metrics: ServingMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.backend: ServingBackend | None = None
        self.keyring: KeyRing | None = None
        self.popular = PopularCache(None)
        self.exposures: ExposureLog | None = None


def resolve_backend(config: ServingConfig) -> ServingBackend:
    """``$LOYALTY_SERVING_BACKEND`` (``module:factory``) or the champion backend."""
    target = os.environ.get(BACKEND_ENV)
    if target:
        module_name, _, attr = target.partition(":")
        factory = getattr(importlib.import_module(module_name), attr or "make_backend")
        return factory(config)
    from loyalty_ml.serving.champion import ChampionBackend

    return ChampionBackend(config)


async def _bounded(awaitable: Awaitable[T], timeout_ms: int, what: str) -> T:
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            return await awaitable
    except TimeoutError as exc:
        from loyalty_ml.serving.backend import NotReady

        raise NotReady(f"{what} took longer than {timeout_ms} ms", code="timeout") from exc


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "the body is not decodable JSON"},
    401: {"model": ErrorResponse, "description": "missing or unknown API key"},
    403: {"model": ErrorResponse, "description": "the key lacks this endpoint's scope"},
    413: {"description": "request body too large"},
    422: {"model": ErrorResponse, "description": "invalid request (field-level messages)"},
    503: {"model": ErrorResponse, "description": "a model or store is not ready, or a timeout"},
}


def create_app(
    backend: ServingBackend | None = None,
    config: ServingConfig | None = None,
    keyring: KeyRing | None = None,
    backend_factory: Callable[[ServingConfig], ServingBackend] | None = None,
) -> FastAPI:
    """The API. Without ``backend``, one is resolved at start-up (never at import)."""
    cfg = config or load_serving_config()
    state = ServingState(cfg, ServingMetrics())
    limits, timeouts = cfg.http, cfg.timeouts_ms
    recommend_timeout_s = timeouts.recommend / 1000

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from loyalty_ml.settings import get_settings

        state.keyring = keyring if keyring is not None else load_keyring(cfg.auth)
        state.backend = backend or (backend_factory or resolve_backend)(cfg)
        state.popular = PopularCache(get_settings().path("serving", "popular.json"))
        state.exposures = ExposureLog.from_config(cfg)
        await state.backend.start()
        await state.popular.refresh(state.backend, cfg.fallback.popular_items)
        refresher = asyncio.create_task(_refresh_popular())
        if state.exposures is not None:
            state.exposures.start()
        if cfg.runtime.gc_threshold is not None:
            gc.set_threshold(*cfg.runtime.gc_threshold)
        if cfg.runtime.gc_freeze:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            refresher.cancel()
            with suppress(asyncio.CancelledError):
                await refresher
            if state.exposures is not None:
                await state.exposures.stop()
            await state.backend.stop()

    async def _refresh_popular() -> None:
        while True:
            await asyncio.sleep(cfg.fallback.refresh_s)
            assert state.backend is not None
            await state.popular.refresh(state.backend, cfg.fallback.popular_items)

    app = FastAPI(
        title="loyalty-ml",
        version="1",
        summary="Churn risk, benefits and recommendations with the loyalty rules applied.",
        lifespan=lifespan,
        max_body_size=limits.max_body_bytes,
        # FastAPI's native OpenTelemetry: off. Inside BentoML a global tracer provider exists and
        # per-request spans are the allocation churn the field notes tie to GC stalls.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.serving = state

    def be() -> ServingBackend:
        if state.backend is None:  # pragma: no cover - lifespan sets it
            from loyalty_ml.serving.backend import NotReady

            raise NotReady("the service is starting")
        return state.backend

    # -- errors --------------------------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        detail = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            detail.append(
                {
                    "field": ".".join(loc) or "body",
                    "message": err.get("msg", ""),
                    "type": err.get("type", ""),
                }
            )
        message = "; ".join(f"{d['field']}: {d['message']}" for d in detail[:5])
        return _error(422, "invalid_request", message, detail)

    @app.exception_handler(FieldError)
    async def _field(_: Request, exc: FieldError) -> Response:
        return _error(
            422,
            "invalid_request",
            f"{exc.field}: {exc.message}",
            [{"field": exc.field, "message": exc.message, "type": "limit"}],
        )

    @app.exception_handler(ServingError)
    async def _serving(_: Request, exc: ServingError) -> Response:
        return _error(exc.status_code, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        response = _error(exc.status_code, f"http_{exc.status_code}", str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.error("unhandled %s in a handler", type(exc).__name__)
        return _error(500, "internal_error", "internal error")

    # -- endpoints -----------------------------------------------------------------------
    @app.post(
        "/recommend",
        response_model=RecommendResponse,
        responses=ERROR_RESPONSES,
        tags=["storefront"],
        summary="Products to show a member, with the points each would earn (never fails).",
    )
    async def recommend(body: RecommendRequest) -> Response:
        return _json(await recommend_impl(body))

    async def recommend_impl(body: RecommendRequest) -> RecommendResponse:
        if body.n > limits.max_recommendations:
            raise FieldError("n", f"must be at most {limits.max_recommendations}")
        if body.cart is not None and len(body.cart) > limits.max_cart_items:
            raise FieldError("cart", f"at most {limits.max_cart_items} items")
        try:
            async with asyncio.timeout(recommend_timeout_s):  # no extra task, unlike wait_for
                result = await be().recommend(body)
        except Exception as exc:
            state.metrics.degraded(type(exc).__name__)
            exclude = set(body.cart or ())
            if body.product_id:
                exclude.add(body.product_id)
            result = RecommendResponse(
                member_id=body.member_id,
                context=body.context,
                items=state.popular.top(body.n, exclude),
                fallback="degraded",
                model_version=None,
            )
        if state.exposures is not None:
            tagged = state.exposures.tag("recommend", body.member_id, "recommend")
            if tagged is not None:
                result.experiment, result.variant = tagged
        return result

    @app.post(
        "/churn_score",
        response_model=ChurnScoreResponse,
        responses=ERROR_RESPONSES,
        tags=["campaigns"],
        summary="Churn probability, risk band, value segment and reasons for 1–1000 members.",
    )
    async def churn_score(body: ChurnScoreRequest) -> Response:
        return _json(await churn_impl(body))

    async def churn_impl(body: ChurnScoreRequest) -> ChurnScoreResponse:
        if len(body.member_ids) > limits.max_batch_member_ids:
            raise FieldError("member_ids", f"at most {limits.max_batch_member_ids} ids")
        return await _bounded(
            be().churn_score(list(dict.fromkeys(body.member_ids))),
            timeouts.churn_score,
            "churn scoring",
        )

    @app.post(
        "/benefits",
        response_model=BenefitsResponse,
        responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse}},
        tags=["campaigns"],
        summary="Benefits ranked by expected net value for one member (`none` included).",
    )
    async def benefits(body: BenefitsRequest) -> Response:
        result = await _bounded(
            be().benefits(body.member_id, body.budget), timeouts.benefits, "benefit matching"
        )
        if state.exposures is not None:
            tagged = state.exposures.tag("benefits", body.member_id, "benefits")
            if tagged is not None:
                result.experiment, result.variant = tagged
        return _json(result)

    @app.post(
        "/campaigns/at_risk",
        response_model=AtRiskResponse,
        responses={**ERROR_RESPONSES, 409: {"model": ErrorResponse}},
        tags=["campaigns"],
        summary="The at-risk list for a campaign, recorded in the contact log (idempotent per id).",
    )
    async def at_risk(body: AtRiskRequest) -> Response:
        if body.limit > limits.max_campaign_limit:
            raise FieldError("limit", f"must be at most {limits.max_campaign_limit}")
        result = await _bounded(be().at_risk(body), timeouts.at_risk, "the at-risk list")
        return _json(result)

    @app.delete(
        "/campaigns/{campaign_id}",
        response_model=CancelResponse,
        responses={**ERROR_RESPONSES, 404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
        tags=["campaigns"],
        summary="Cancel a campaign before it is sent, releasing its contacts.",
    )
    async def cancel_campaign(campaign_id: str) -> Response:
        if not campaign_id or len(campaign_id) > 128:
            raise FieldError("campaign_id", "1–128 characters")
        return _json(await be().cancel_campaign(campaign_id))

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers.")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    @app.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness}},
        tags=["operations"],
        summary="Readiness of models, online store and contact log, with reasons.",
    )
    async def readyz() -> Response:
        try:
            ready = await _bounded(be().readiness(), 5000, "the readiness check")
        except ServingError as exc:
            return _error(503, exc.code, exc.message)
        return _json(ready, 200 if ready.ready else 503)

    @app.post(
        "/admin/reload",
        response_model=ReloadResponse,
        status_code=202,
        responses=ERROR_RESPONSES,
        tags=["admin"],
        summary="Load new champions in the background and swap them in atomically.",
    )
    async def reload() -> Response:
        return _json(await be().reload(), 202)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics.",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, routes=app.routes, summary=app.summary
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "ApiKey": {"type": "apiKey", "in": "header", "name": cfg.auth.header},
            "Bearer": {"type": "http", "scheme": "bearer"},
        }
        guard = Guard(app, auth=cfg.auth, state=state)
        for path, ops in schema.get("paths", {}).items():
            _, scope = guard.required_scope(path)
            if scope is None:
                continue
            for op in ops.values():
                op["security"] = [{"ApiKey": []}, {"Bearer": []}]
                op["description"] = (op.get("description", "") + f"\n\nScope: `{scope}`.").strip()
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Outermost first: the guard (auth before the body is read, metrics), then the hot path.
    if cfg.runtime.fast_path:
        app.add_middleware(
            FastPath,
            routes={
                "/recommend": (RecommendRequest, recommend_impl),
                "/churn_score": (ChurnScoreRequest, churn_impl),
            },
            max_body=limits.max_body_bytes,
        )
    app.add_middleware(Guard, auth=cfg.auth, state=state)
    return app
