"""HTTP serving overhead: RPS and latency of /recommend and /churn_score at concurrency 8.

The server runs the real app (``loyalty serve``, BentoML or uvicorn engine) with a trivial
backend (fixed answers), so the numbers are the serving stack's ceiling, not the models'. The
load generator is a minimal keep-alive HTTP/1.1 client on raw asyncio sockets (one connection per
concurrent caller; every request timed, no coordinated-omission corrections). Localhost only,
bounded by ``--duration`` (default 15 s per case); both processes run under ``nice``.

    python -m benchmarks serving --duration=60 --engines=bentoml,uvicorn   (``=``: the runner
    passes only dash-arguments through)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, markdown_table, percentiles, save

REPO = Path(__file__).resolve().parents[1]
KEY = "bench-storefront-key-0123456789"
CP_KEY = "bench-campaigns-key-0123456789"


# -- the trivial backend the server loads (LOYALTY_SERVING_BACKEND) -----------------------------
def make_backend(config: Any) -> Any:
    from loyalty_ml.serving.schemas import (
        ChurnScore,
        ChurnScoreResponse,
        ComponentStatus,
        Readiness,
        Reason,
        RecommendedItem,
        RecommendResponse,
        ReloadResponse,
    )

    items = [
        RecommendedItem(product_id=f"p{i}", score=1.0 - i / 10, reason="popular", points_to_earn=10)
        for i in range(100)
    ]

    class Trivial:
        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def recommend(self, request: Any) -> Any:
            return RecommendResponse(
                member_id=request.member_id,
                context=request.context,
                items=items[: request.n],
                fallback=None,
                model_version="bench/1",
            )

        async def popular(self, n: int) -> Any:
            return items[:n]

        async def churn_score(self, member_ids: list[str]) -> Any:
            return ChurnScoreResponse(
                scores=[
                    ChurnScore(
                        member_id=m,
                        churn_probability=0.42,
                        risk_band="medium",
                        value_segment="mid",
                        reasons=[Reason(code="recency_decline", weight=0.3)],
                    )
                    for m in member_ids
                ],
                unknown=[],
                model_version="bench/1",
            )

        async def readiness(self) -> Any:
            return Readiness(ready=True, components={"bench": ComponentStatus(ready=True)})

        async def reload(self) -> Any:
            return ReloadResponse(status="started", generation=1)

    return Trivial()


# -- server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(engine: str, workers: int, home: Path) -> tuple[subprocess.Popen, int, float]:
    port = _free_port()
    env = {
        **os.environ,
        "LOYALTY_HOME": str(home),
        "LOYALTY_SERVING_BACKEND": "benchmarks.bench_serving:make_backend",
        "LOYALTY_API_KEYS": json.dumps({"storefront": KEY, "campaigns": CP_KEY}),
        "PYTHONPATH": str(REPO),
    }
    loyalty = str(Path(sys.executable).with_name("loyalty"))
    cmd = ["nice", "-n", "5", loyalty, "serve", "--port", str(port), "--workers", str(workers)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "--engine", engine],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = started + 120
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b" 200 " in s.recv(64):
                    return proc, port, time.perf_counter() - started
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{engine} server exited with {proc.returncode}")
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"{engine} server not ready in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# -- load generator -------------------------------------------------------------------------
def _request(path: str, body: dict[str, Any], key: str) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _caller(port: int, raw: bytes, until: float, lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            t = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append((time.perf_counter() - t) * 1000)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(port: int, raw: bytes, concurrency: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[int] = []
    warm_until = time.perf_counter() + min(2.0, seconds / 5)
    await asyncio.gather(*[_caller(port, raw, warm_until, [], []) for _ in range(concurrency)])
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*[_caller(port, raw, until, lat, errors) for _ in range(concurrency)])
    elapsed = time.perf_counter() - start
    pct = percentiles(lat, (50, 99))
    import numpy as np

    p999 = float(np.percentile(np.asarray(lat), 99.9)) if lat else float("nan")
    return {
        "requests": len(lat),
        "rps": len(lat) / elapsed,
        "p50_ms": pct["p50"],
        "p99_ms": pct["p99"],
        "p99.9_ms": p999,
        "max_ms": max(lat) if lat else float("nan"),
        "over_100ms": sum(1 for x in lat if x > 100),
        "errors": len(errors),
    }


def inprocess_cost(n: int = 3000) -> list[dict[str, Any]]:
    """CPU per request through the ASGI app itself (no network, no client): the app's share."""
    from loyalty_ml.serving.app import create_app
    from loyalty_ml.serving.config import ServingConfig
    from loyalty_ml.serving.keys import KeyRing

    cfg = ServingConfig()
    keyring = KeyRing.from_mapping({"storefront": KEY, "campaigns": CP_KEY}, cfg.auth.key_scopes)
    app = create_app(backend=make_backend(cfg), config=cfg, keyring=keyring)

    async def run() -> list[dict[str, Any]]:
        rows = []
        async with app.router.lifespan_context(app):
            for case, (path, body, key) in CASES.items():
                raw = json.dumps(body).encode()
                scope = {
                    "type": "http",
                    "asgi": {"version": "3.0"},
                    "http_version": "1.1",
                    "method": "POST",
                    "scheme": "http",
                    "path": path,
                    "raw_path": path.encode(),
                    "query_string": b"",
                    "root_path": "",
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(raw)).encode()),
                        (b"x-api-key", key.encode()),
                    ],
                    "client": ("127.0.0.1", 1),
                    "server": ("127.0.0.1", 80),
                }

                async def one(scope: dict[str, Any] = scope, raw: bytes = raw) -> None:
                    sent = False

                    async def receive() -> dict[str, Any]:
                        nonlocal sent
                        if sent:
                            return {"type": "http.disconnect"}
                        sent = True
                        return {"type": "http.request", "body": raw, "more_body": False}

                    async def send(message: dict[str, Any]) -> None:
                        return None

                    await app(dict(scope), receive, send)

                for _ in range(200):
                    await one()
                started, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    await one()
                per = (time.perf_counter() - started) / n
                cpu_per = (time.process_time() - cpu) / n
                rows.append(
                    {
                        "endpoint": case,
                        "wall_us_per_request": per * 1e6,
                        # CPU time is what contention inflates least: the app's own cost
                        "cpu_us_per_request": cpu_per * 1e6,
                        "rps_per_core_ceiling": 1 / cpu_per,
                    }
                )
        return rows

    return asyncio.run(run())


CASES = {
    "recommend": ("/recommend", {"member_id": "m1", "n": 10}, KEY),
    "churn_score_1": ("/churn_score", {"member_ids": ["m1"]}, CP_KEY),
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_serving")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--engines", default="bentoml,uvicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inprocess-only", action="store_true")
    args = parser.parse_args(argv)
    os.nice(5)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LOYALTY_HOME"] = tmp
        inproc = inprocess_cost()
    print(markdown_table(inproc))
    if args.inprocess_only:
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            proc, port, ready_s = start_server(engine, args.workers, Path(tmp))
            try:
                for case, (path, body, key) in CASES.items():
                    result = asyncio.run(
                        _load(port, _request(path, body, key), args.concurrency, args.duration)
                    )
                    row = {
                        "engine": engine,
                        "workers": args.workers,
                        "endpoint": case,
                        "start_to_ready_s": ready_s,
                        **result,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                stop_server(proc)
    load = os.getloadavg()
    print(markdown_table(rows))
    print(f"load average during run: {load[0]:.1f} (2 cores shared; other engineers' jobs)")
    save(
        "serving",
        {
            "rows": rows,
            "inprocess": inproc,
            "args": vars(args),
            "loadavg": load,
            "machine": machine(),
        },
    )
