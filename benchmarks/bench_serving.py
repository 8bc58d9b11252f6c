"""Serving: RPS and latency of the real endpoints, start-up, degraded mode, at-risk lists, soak.

Self-contained (``make bench`` on a fresh machine): without ``--home`` it builds a small pipeline
(simulated 5,000-member shop, champions with 0 Optuna trials) into a temporary ``LOYALTY_HOME``
(a few minutes); ``--home DIR`` reuses one that ``loyalty demo``/``loyalty pipeline`` produced.

Cases (each prints a JSON line, then a table; all results go to ``bench-results/serving.json``):

- ``inprocess``: CPU per request through the ASGI app itself with the real backend — the backend
  call alone, the lean hot path and FastAPI's own path — no server, no client.
- ``http``: ``loyalty serve`` (engines ``uvicorn`` and ``bentoml``, 2 workers) with the real
  champions; ``/recommend`` and ``/churn_score`` (1 member), concurrency 8, member ids rotating
  over the whole population. The load generator is a lean non-blocking socket client (``selectors``,
  one keep-alive connection per concurrent caller, no pipelining, every request timed, no
  coordinated-omission correction); its own CPU time per request is reported, since it shares
  the two cores with the server.
- ``degraded``: the same with the online store unreachable (a Redis client pointed at a port
  nothing listens on: every feature read is refused, as when Redis is stopped).
- ``at_risk``: a 10k list from a 1M-member batch snapshot (the pipeline's members tiled to 1M
  with new ids), in process, contact log in a temporary SQLite file.
- ``soak`` (``--soak``): mixed traffic for ``--soak-minutes`` (default 10); unexpected statuses
  and worker RSS growth.

    python -m benchmarks serving                # all, 60 s per HTTP case, 10 min soak (~25 min)
    python -m benchmarks serving --quick        # 10 s per case, uvicorn only, 200k at-risk, 1 min soak
    python -m benchmarks serving --soak --soak-minutes=10      # the soak alone
    python -m benchmarks serving --only=http,degraded --home=.loyalty   # after `make demo`
    (``=``: the runner passes only dash-arguments through)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import machine, markdown_table, save

REPO = Path(__file__).resolve().parents[1]
KEYS = {
    "storefront": "bench-storefront-key-0123456789",
    "campaigns": "bench-campaigns-key-0123456789",
    "admin": "bench-admin-key-0123456789",
}
DEGRADED_ENV = "LOYALTY_BENCH_DEAD_REDIS_PORT"

BUILD = """
import sys
from loyalty_ml.simulate import generate, load_config
from loyalty_ml.contract.validate import load_valid_dataset
from loyalty_ml.pipeline import run_pipeline
data = sys.argv[1]
generate(load_config(members=int(sys.argv[2]), seed=42), data)
result = run_pipeline(load_valid_dataset(data, name="bench"), data, trials=0)
for s in result.stages:
    print(s.stage, s.status, s.detail[:200], flush=True)
sys.exit(0 if result.ok else 1)
"""


# -- the pipeline the real backend serves -------------------------------------------------------
def ensure_pipeline(home: Path | None, scratch: Path, members: int) -> Path:
    """A LOYALTY_HOME with champions and a pipeline manifest: ``home`` or a fresh small one."""
    if home is not None:
        if not (home / "pipeline.json").exists():
            raise SystemExit(f"{home}/pipeline.json missing: run `loyalty demo` there first")
        return home
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    print(f"building a {members:,}-member pipeline into {home} (trials 0) ...", flush=True)
    started = time.perf_counter()
    env = {**os.environ, "LOYALTY_HOME": str(home), "LOYALTY_PROFILE": "local"}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_DESTINATION_CHECK", "false")
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(scratch / "data"), str(members)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit("pipeline build failed:\n" + done.stdout[-2000:] + done.stderr[-2000:])
    print(f"pipeline built in {time.perf_counter() - started:.0f} s", flush=True)
    return home


def member_ids(home: Path, limit: int = 50_000) -> list[str]:
    import pandas as pd

    manifest = json.loads((home / "pipeline.json").read_text())
    ids = pd.read_parquet(Path(manifest["data_dir"]) / "members.parquet", columns=["member_id"])
    out = ids["member_id"].astype(str).tolist()[:limit]
    random.Random(7).shuffle(out)
    return out


# -- server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def degraded_backend(config: Any) -> Any:
    """The real backend whose online store is a Redis client on a port nobody listens on."""
    from loyalty_ml.features.online import redis_client
    from loyalty_ml.serving.champion import ChampionBackend

    port = int(os.environ[DEGRADED_ENV])

    class DeadRedisReader:
        feature_names: tuple[str, ...] = ()
        join_key = "member_id"

        def __init__(self) -> None:
            # as the service builds it for a Redis store (adapters.open_online_store)
            self.client = redis_client("127.0.0.1", port, (50, 50))

        def get(self, ids: list[str]) -> dict[str, list[Any]]:
            self.client.execute_command("HMGET", f"member:{ids[0]}", "tier")
            raise AssertionError("unreachable: nothing listens there")

    class Degraded(ChampionBackend):
        def _load(self, generation: int) -> Any:
            from dataclasses import replace

            from loyalty_ml.serving.adapters import OnlineFeatures

            state = super()._load(generation)
            return replace(state, online=OnlineFeatures(DeadRedisReader()), churn_online=False)

    return Degraded(config)


def start_server(
    engine: str,
    workers: int,
    home: Path,
    extra_env: dict[str, str] | None = None,
    accept_unready: bool = False,
) -> tuple[subprocess.Popen, int, float]:
    """Start ``loyalty serve``; seconds until /readyz answers 200 (any answer if
    ``accept_unready``: a degraded server is not ready on purpose)."""
    port = _free_port()
    env = {
        **os.environ,
        "LOYALTY_HOME": str(home),
        "LOYALTY_PROFILE": "local",
        "LOYALTY_API_KEYS": json.dumps(KEYS),
        "PYTHONPATH": str(REPO),
        **(extra_env or {}),
    }
    if not env.get("LOYALTY_SERVING_BACKEND"):
        env.pop("LOYALTY_SERVING_BACKEND", None)
    loyalty = str(Path(sys.executable).with_name("loyalty"))
    cmd = [loyalty, "serve", "--port", str(port), "--workers", str(workers), "--engine", engine]
    log = open(home / f"bench-server-{engine}.log", "w")  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    deadline = started + 180
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                head = s.recv(64)
                if b" 200 " in head or (accept_unready and b" 503 " in head):
                    return proc, port, time.perf_counter() - started
        except OSError:
            pass
        if proc.poll() is not None:
            tail = (home / f"bench-server-{engine}.log").read_text()[-3000:]
            raise RuntimeError(f"{engine} server exited with {proc.returncode}:\n{tail}")
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"{engine} server not ready in 180 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _server_procs(proc: subprocess.Popen) -> list[Path]:
    """``/proc/<pid>`` of the server and every process under it (BentoML's workers start their
    own sessions, so the process group would miss them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ProcessLookupError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        found.append(Path(f"/proc/{pid}"))
        todo.extend(children.get(pid, []))
    return found


def server_cpu_s(proc: subprocess.Popen) -> float:
    """CPU seconds (user + system) used so far by the server's processes, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in _server_procs(proc):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ProcessLookupError, ValueError, IndexError):
            continue
    return total / ticks


def server_rss_mb(proc: subprocess.Popen) -> float:
    """RSS of the server's processes (parent and workers), from /proc."""
    total = 0
    for entry in _server_procs(proc):
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ProcessLookupError, ValueError):
            continue
    return total / 1024


# -- lean load generator --------------------------------------------------------------------
def request_bytes(
    path: str, body: dict[str, Any] | None, key: str | None, method: str = "POST"
) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if key:
        head += f"x-api-key: {key}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + "\r\n").encode() + payload


def drive(
    port: int,
    requests: list[tuple[bytes, int]],
    concurrency: int,
    seconds: float,
    on_tick: Any = None,
) -> dict[str, Any]:
    """Closed-loop load: ``concurrency`` keep-alive connections, one request in flight on each.

    ``requests``: ``(raw request, expected status)``, used round-robin from a random offset per
    connection. Returns latencies (ms, every request) and unexpected statuses."""
    sel = selectors.DefaultSelector()
    lat = array("d")
    unexpected: Counter[int] = Counter()
    unexpected_by_path: Counter[str] = Counter()  # "PATH STATUS"
    n_req = len(requests)
    rng = random.Random(11)
    cpu0 = time.process_time()
    start = time.perf_counter()
    until = start + seconds
    next_tick = start + 10
    open_conns = 0
    for _ in range(concurrency):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        i = rng.randrange(n_req)
        raw, expect = requests[i]
        state = [s, bytearray(), time.perf_counter(), i, expect]
        s.send(raw)
        sel.register(s, selectors.EVENT_READ, state)
        open_conns += 1
    perf = time.perf_counter
    while open_conns:
        events = sel.select(timeout=5)
        if not events:
            raise TimeoutError("no response within 5 s")
        for key, _ in events:
            state = key.data
            s, buf = state[0], state[1]
            chunk = s.recv(262144)
            if not chunk:
                raise ConnectionError("server closed a keep-alive connection")
            buf += chunk
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            head = bytes(buf[:head_end]).lower()
            at = head.find(b"content-length:")
            length = (
                int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
                if at >= 0
                else 0
            )
            total = head_end + 4 + length
            if len(buf) < total:
                continue
            now = perf()
            lat.append((now - state[2]) * 1000.0)
            status = int(buf[9:12])
            if status != state[4]:
                unexpected[status] += 1
                path = requests[state[3]][0].split(b" ", 2)[1].decode()
                unexpected_by_path[f"{path} {status}"] += 1
            del buf[:total]
            if now >= until:
                sel.unregister(s)
                s.close()
                open_conns -= 1
                continue
            i = state[3] + 1
            if i >= n_req:
                i = 0
            raw, expect = requests[i]
            state[2], state[3], state[4] = perf(), i, expect
            s.send(raw)
        if on_tick is not None and perf() >= next_tick:
            on_tick()
            next_tick += 10
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {
        "lat": lat,
        "elapsed": elapsed,
        "unexpected": unexpected,
        "unexpected_by_path": unexpected_by_path,
        "client_cpu_s": cpu,
    }


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    lat = np.frombuffer(result["lat"], dtype=float) if len(result["lat"]) else np.zeros(0)
    n = len(lat)
    q = np.percentile(lat, [50, 99, 99.9]) if n else [float("nan")] * 3
    return {
        "requests": n,
        "rps": n / result["elapsed"],
        "p50_ms": float(q[0]),
        "p99_ms": float(q[1]),
        "p99.9_ms": float(q[2]),
        "max_ms": float(lat.max()) if n else float("nan"),
        "over_100ms": int((lat > 100).sum()),
        # Latencies are in completion order: a slow request's position dates it within the run
        # (start-up warm-up vs periodic stalls such as full garbage collections).
        "over_100ms_at_s": [
            round(float(i) / max(n, 1) * result["elapsed"], 1)
            for i in np.flatnonzero(lat > 100)[:20]
        ],
        "errors": int(sum(result["unexpected"].values())),
        "client_cpu_us_per_req": result["client_cpu_s"] / max(n, 1) * 1e6,
    }


def cases(ids: list[str]) -> dict[str, list[tuple[bytes, int]]]:
    sf, cp = KEYS["storefront"], KEYS["campaigns"]
    pool = ids[:5000]
    return {
        "recommend": [
            (request_bytes("/recommend", {"member_id": m, "n": 10}, sf), 200) for m in pool
        ],
        "churn_score_1": [
            (request_bytes("/churn_score", {"member_ids": [m]}, cp), 200) for m in pool
        ],
    }


def soak_requests(ids: list[str]) -> list[tuple[bytes, int]]:
    sf, cp = KEYS["storefront"], KEYS["campaigns"]
    rng = random.Random(3)
    out: list[tuple[bytes, int]] = []
    contexts = ["home", "home", "home", "post_purchase", "cart"]
    for i, m in enumerate(ids[:4000]):
        ctx = contexts[i % len(contexts)]
        body: dict[str, Any] = {"member_id": m, "n": rng.choice([5, 10, 20]), "context": ctx}
        if ctx == "cart":
            body["cart"] = []
        out.append((request_bytes("/recommend", body, sf), 200))
        if i % 3 == 0:
            out.append((request_bytes("/churn_score", {"member_ids": [m]}, cp), 200))
        if i % 10 == 0:
            batch = [*rng.sample(ids, 20), "nobody-x"]
            out.append((request_bytes("/churn_score", {"member_ids": batch}, cp), 200))
        if i % 7 == 0:
            out.append((request_bytes("/benefits", {"member_id": m}, cp), 200))
        if i % 50 == 0:
            out.append((request_bytes("/recommend", {"member_id": f"new-{i}"}, sf), 200))
            out.append((request_bytes("/readyz", None, None, "GET"), 200))
            out.append((request_bytes("/benefits", {"member_id": f"ghost-{i}"}, cp), 404))
            out.append((request_bytes("/recommend", {"member_id": m, "n": 0}, sf), 422))
    rng.shuffle(out)
    return out


# -- in-process cost ------------------------------------------------------------------------
def inprocess_cost(home: Path, ids: list[str], n: int) -> list[dict[str, Any]]:
    """CPU per request: backend call alone, lean hot path, FastAPI path (no network, no client)."""
    from loyalty_ml.serving.app import create_app
    from loyalty_ml.serving.config import load_serving_config
    from loyalty_ml.serving.keys import KeyRing
    from loyalty_ml.serving.schemas import RecommendRequest
    from loyalty_ml.settings import reset_settings_cache

    os.environ["LOYALTY_HOME"] = str(home)
    os.environ.pop("LOYALTY_SERVING_BACKEND", None)
    reset_settings_cache()
    cfg = load_serving_config()
    keyring = KeyRing.from_mapping(KEYS, cfg.auth.key_scopes)  # type: ignore[arg-type]
    app = create_app(config=cfg, keyring=keyring)
    state = app.state.serving

    def scope_for(path: str, raw: bytes, key: str, fast: bool) -> dict[str, Any]:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"x-api-key", key.encode()),
        ]
        if not fast:
            headers.append((b"x-loyalty-slow-path", b"1"))
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }

    async def call(scope: dict[str, Any], raw: bytes) -> int:
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    def measure(label: str, fn: Any) -> dict[str, Any]:
        async def loop(count: int) -> None:
            for i in range(count):
                await fn(ids[i % len(ids)])

        asyncio.get_event_loop().run_until_complete(loop(200))
        wall, cpu = time.perf_counter(), time.process_time()
        asyncio.get_event_loop().run_until_complete(loop(n))
        wall, cpu = (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n
        return {
            "what": label,
            "wall_us_per_request": wall * 1e6,
            "cpu_us_per_request": cpu * 1e6,
            "rps_per_core_ceiling": 1 / cpu if cpu else float("inf"),
        }

    rows: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def enter() -> Any:
        ctx = app.router.lifespan_context(app)
        await ctx.__aenter__()
        return ctx

    ctx = loop.run_until_complete(enter())
    try:
        backend = state.backend
        warm = getattr(backend, "_warm_task", None)
        if warm is not None:  # measure the warm steady state; the cold cost is its own row
            started = time.perf_counter()
            loop.run_until_complete(warm)
            cache = backend._state.churn_cache
            rows.append(
                {
                    "what": f"reason cache warm-up ({len(cache.reasons):,} members, batches)",
                    "wall_us_per_request": (time.perf_counter() - started)
                    / len(cache.reasons)
                    * 1e6,
                    "cpu_us_per_request": float("nan"),
                    "rps_per_core_ceiling": float("nan"),
                }
            )
            one = ids[: min(50, len(ids))]
            for m in one:
                cache.reasons.pop(m, None)
            cold = time.perf_counter()
            for m in one:
                loop.run_until_complete(backend.churn_score([m]))
            rows.append(
                {
                    "what": "backend.churn_score (1 id, cold: reasons computed)",
                    "wall_us_per_request": (time.perf_counter() - cold) / len(one) * 1e6,
                    "cpu_us_per_request": float("nan"),
                    "rps_per_core_ceiling": float("nan"),
                }
            )

        async def be_recommend(m: str) -> None:
            await backend.recommend(RecommendRequest(member_id=m, n=10))

        async def be_churn(m: str) -> None:
            await backend.churn_score([m])

        rows.append(measure("backend.recommend (n=10)", be_recommend))
        rows.append(measure("backend.churn_score (1 id, warm cache)", be_churn))
        for fast in (True, False):
            engine = "lean hot path" if fast else "FastAPI path"

            async def rec(m: str, fast: bool = fast) -> None:
                raw = json.dumps({"member_id": m, "n": 10}).encode()
                assert (
                    await call(scope_for("/recommend", raw, KEYS["storefront"], fast), raw) == 200
                )

            async def churn(m: str, fast: bool = fast) -> None:
                raw = json.dumps({"member_ids": [m]}).encode()
                scope = scope_for("/churn_score", raw, KEYS["campaigns"], fast)
                assert await call(scope, raw) == 200

            rows.append(measure(f"app /recommend, {engine}", rec))
            rows.append(measure(f"app /churn_score 1 id, {engine}", churn))
    finally:
        loop.run_until_complete(ctx.__aexit__(None, None, None))
        loop.close()
    return rows


# -- at-risk list from a 1M snapshot --------------------------------------------------------
def at_risk_case(home: Path, population: int, limit: int) -> dict[str, Any]:
    """A ``limit`` list from the pipeline's snapshot tiled to ``population`` members (new ids)."""
    import numpy as np
    import pandas as pd

    from loyalty_ml.serving.champion import ChampionBackend
    from loyalty_ml.serving.config import SnapshotConfig, load_serving_config
    from loyalty_ml.serving.schemas import AtRiskRequest
    from loyalty_ml.serving.snapshot import BatchSnapshot
    from loyalty_ml.settings import reset_settings_cache

    os.environ["LOYALTY_HOME"] = str(home)
    reset_settings_cache()
    no_warm = SnapshotConfig(reason_cache_members=0)  # cold: every reason computed by the list
    backend = ChampionBackend(load_serving_config().model_copy(update={"snapshot": no_warm}))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(backend.start())
    from loyalty_ml.campaigns.store_sqlite import SqliteContactLog

    if backend._log is not None:  # never write into the served home's contact log
        backend._log.close()
    backend._log = SqliteContactLog(Path(tempfile.mkdtemp(prefix="bench-log-")) / "log.sqlite")
    snap = backend._state.snapshot
    churn = backend._state.churn.obj if backend._state.churn else None
    if snap is None:
        raise SystemExit(f"no batch snapshot: {backend._state.messages}")
    copies = -(-population // snap.members)

    def tile(frame: pd.DataFrame | None, sort: bool = False) -> pd.DataFrame | None:
        if frame is None:
            return None
        parts = []
        for c in range(copies):
            part = frame.reset_index(drop=True)
            part = part.assign(member_id=part["member_id"].astype(str) + f"~{c}")
            parts.append(part)
        big = pd.concat(parts, ignore_index=True).head(population)
        if sort:
            return big.sort_values("value_at_risk", ascending=False, kind="stable").reset_index(
                drop=True
            )
        return big.set_index("member_id", drop=False)

    started = time.perf_counter()
    big = BatchSnapshot(
        dataset=snap.dataset,
        data_dir=snap.data_dir,
        as_of=snap.as_of,
        churn_features=tile(snap.churn_features),
        scores=tile(snap.scores, sort=True),
        benefit_features=tile(snap.benefit_features),
        states=tile(snap.states),
    )
    tiled_s = time.perf_counter() - started
    from dataclasses import replace

    from loyalty_ml.serving.champion import ChurnCache

    backend._state = replace(backend._state, snapshot=big, churn_cache=ChurnCache(big, churn))
    request = AtRiskRequest(campaign_id=f"bench-{int(time.time())}", limit=limit)
    cpu = time.process_time()
    started = time.perf_counter()
    answer = loop.run_until_complete(backend.at_risk(request))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    started = time.perf_counter()
    again = loop.run_until_complete(backend.at_risk(request))
    replay_s = time.perf_counter() - started
    assert again.replayed and len(again.members) == len(answer.members)
    second = AtRiskRequest(campaign_id=request.campaign_id + "-b", limit=limit)
    started = time.perf_counter()
    other = loop.run_until_complete(backend.at_risk(second))
    second_s = time.perf_counter() - started
    loop.run_until_complete(backend.stop())
    loop.close()
    return {
        "population": len(big.scores),
        "limit": limit,
        "listed": len(answer.members),
        "seconds": seconds,
        "cpu_s": cpu,
        "replay_s": replay_s,
        "second_list_s": second_s,  # another campaign: reasons of examined members cached
        "second_listed": len(other.members),
        "tile_s": tiled_s,
        "holdout": int(np.sum([m.holdout for m in answer.members])),
        "excluded": answer.excluded.model_dump(),
    }


# -- main -----------------------------------------------------------------------------------
def http_cases(
    home: Path, ids: list[str], engines: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    load = cases(ids)
    for engine in engines:
        seconds = (
            args.bentoml_duration
            if engine == "bentoml" and args.bentoml_duration
            else args.duration
        )
        proc, port, ready_s = start_server(engine, args.workers, home)
        try:
            wait_warm(port)
            for case, reqs in load.items():
                drive(port, reqs, args.concurrency, min(3.0, seconds / 5))  # warm-up
                cpu = server_cpu_s(proc)
                collections = scrape_workers(port, args.workers)
                raw = drive(port, reqs, args.concurrency, seconds)
                cpu = server_cpu_s(proc) - cpu
                result = summarise(raw)
                result["server_cpu_us_per_req"] = cpu / max(result["requests"], 1) * 1e6
                result["gc_pauses"] = gc_pauses_between(
                    collections, scrape_workers(port, args.workers)
                )
                row = {
                    "engine": engine,
                    "endpoint": case,
                    "start_to_ready_s": ready_s,
                    **result,
                    "loadavg_1m": os.getloadavg()[0],
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            stop_server(proc)
    return rows


def http_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return raw.split(b"\r\n\r\n", 1)[1]


def gc_pause_buckets(metrics_text: str) -> tuple[float, dict[str, dict[str, float]]]:
    """``(worker pid, {generation: cumulative count by upper bucket edge})`` from one
    ``/metrics`` page (``loyalty_gc_pause_seconds``)."""
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(metrics_text)}
    worker = families["loyalty_worker_pid"].samples[0].value
    buckets: dict[str, dict[str, float]] = {}
    for sample in families["loyalty_gc_pause_seconds"].samples:
        if sample.name.endswith("_bucket"):
            buckets.setdefault(sample.labels["generation"], {})[sample.labels["le"]] = sample.value
    return worker, buckets


def scrape_workers(port: int, workers: int, attempts: int = 24) -> dict[float, Any]:
    """``gc_pause_buckets`` of every worker: each connection lands on some worker, so this
    scrapes until it has seen ``workers`` of them."""
    seen: dict[float, Any] = {}
    for _ in range(attempts):
        worker, buckets = gc_pause_buckets(http_get(port, "/metrics").decode())
        seen[worker] = buckets
        if len(seen) >= workers:
            break
    return seen


def gc_pauses_between(before: dict[float, Any], after: dict[float, Any]) -> list[dict[str, Any]]:
    """Per worker, the collections that ran between two scrapes (start-up's explicit
    ``gc.collect()`` calls excluded), by generation 0/1/2: how many, how many took over 100 ms,
    and the upper edge (s) of the longest one's bucket."""
    rows = []
    for worker, now in after.items():
        row: dict[str, list[Any]] = {"collections": [], "over_100ms": [], "longest_le_s": []}
        for generation in sorted(now):
            counts = now[generation]
            then = before.get(worker, {}).get(generation, {})
            delta = {edge: counts[edge] - then.get(edge, 0.0) for edge in counts}
            longest, running = "0", 0.0
            for edge in sorted(delta, key=float):  # "+Inf" sorts last
                if delta[edge] > running:
                    longest, running = edge, delta[edge]
            row["collections"].append(delta["+Inf"])
            row["over_100ms"].append(delta["+Inf"] - delta["0.1"])
            row["longest_le_s"].append(longest)
        rows.append(row)
    return rows


def wait_warm(port: int, timeout: float = 300) -> float:
    """Seconds until /readyz says the churn reason cache is warm (both workers answer)."""
    started = time.perf_counter()
    warm_hits = 0
    while time.perf_counter() - started < timeout and warm_hits < 4:
        try:
            cache = json.loads(http_get(port, "/readyz"))["components"].get("reason_cache")
        except (ValueError, KeyError, IndexError):
            cache = None
        warm_hits = warm_hits + 1 if cache is None or cache["ready"] else 0
        time.sleep(0.5)
    return time.perf_counter() - started


def degraded_case(home: Path, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    env = {
        "LOYALTY_SERVING_BACKEND": "benchmarks.bench_serving:degraded_backend",
        DEGRADED_ENV: str(_free_port()),
    }
    proc, port, ready_s = start_server("uvicorn", args.workers, home, env, accept_unready=True)
    try:
        wait_warm(port)
        reqs = cases(ids)["recommend"]
        drive(port, reqs, args.concurrency, min(3.0, args.duration / 5))
        result = summarise(drive(port, reqs, args.concurrency, args.duration))
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(request_bytes("/recommend", {"member_id": ids[0]}, KEYS["storefront"]))
            answer = s.recv(65536)
    finally:
        stop_server(proc)
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    row = {
        "engine": "uvicorn",
        "endpoint": "recommend (online store down)",
        "start_to_ready_s": ready_s,
        **result,
        "fallback": body.get("fallback"),
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(row), flush=True)
    return row


def soak(home: Path, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    proc, port, _ready_s = start_server(args.soak_engine, args.workers, home)
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()

    def tick() -> None:
        samples.append((time.perf_counter() - started, server_rss_mb(proc)))

    try:
        wait_warm(port)
        reqs = soak_requests(ids)
        drive(port, reqs, args.concurrency, 20)  # warm-up: caches, allocator
        collections = scrape_workers(port, args.workers)
        tick()
        result = drive(port, reqs, args.concurrency, args.soak_minutes * 60, on_tick=tick)
        tick()
        collections_run = gc_pauses_between(collections, scrape_workers(port, args.workers))
    finally:
        stop_server(proc)
    summary = summarise(result)
    base = samples[0][1]
    peak = max(r for _, r in samples)
    row = {
        "engine": args.soak_engine,
        "minutes": args.soak_minutes,
        **summary,
        "unexpected_statuses": dict(result["unexpected"]),
        "unexpected_by_path": dict(result["unexpected_by_path"]),
        "rss_start_mb": base,
        "rss_end_mb": samples[-1][1],
        "rss_peak_mb": peak,
        "rss_growth_pct": (samples[-1][1] - base) / base * 100,
        "gc_pauses": collections_run,
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_serving")
    parser.add_argument("--home", type=Path, default=None, help="a LOYALTY_HOME to serve")
    parser.add_argument("--members", type=int, default=5000, help="members of the built shop")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--bentoml-duration", type=float, default=0.0, help="0: --duration")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--engines", default="uvicorn,bentoml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inprocess-n", type=int, default=3000)
    parser.add_argument("--at-risk-population", type=int, default=1_000_000)
    parser.add_argument("--at-risk-limit", type=int, default=10_000)
    parser.add_argument("--only", default="inprocess,http,degraded,at_risk,soak")
    parser.add_argument("--quick", action="store_true", help="10 s per case, uvicorn only")
    parser.add_argument("--soak", action="store_true", help="run the soak alone")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--soak-engine", default="uvicorn")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.engines, args.inprocess_n = 10.0, "uvicorn", 1000
        args.at_risk_population = min(args.at_risk_population, 200_000)
        args.at_risk_limit = min(args.at_risk_limit, 2000)
        args.soak_minutes = min(args.soak_minutes, 1.0)
    only = {"soak"} if args.soak else set(args.only.split(","))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        home = ensure_pipeline(args.home, Path(tmp), args.members)
        ids = member_ids(home)
        results["loadavg_before"] = os.getloadavg()
        if "inprocess" in only:
            results["inprocess"] = inprocess_cost(home, ids, args.inprocess_n)
            print(markdown_table(results["inprocess"]), flush=True)
        if "http" in only:
            results["http"] = http_cases(home, ids, args.engines.split(","), args)
        if "degraded" in only:
            try:
                results["degraded"] = degraded_case(home, ids, args)
            except (OSError, RuntimeError) as exc:  # a hang is a result too: record it, go on
                results["degraded"] = {
                    "endpoint": "recommend (online store down)",
                    "error": repr(exc),
                }
                print(json.dumps(results["degraded"]), flush=True)
        if "http" in only or "degraded" in only:
            rows = results.get("http", []) + (
                [results["degraded"]] if "degraded" in results else []
            )
            print(markdown_table(rows), flush=True)
        if "at_risk" in only:
            results["at_risk"] = at_risk_case(home, args.at_risk_population, args.at_risk_limit)
            print(json.dumps(results["at_risk"]), flush=True)
        if "soak" in only:
            results["soak"] = soak(home, ids, args)
    results["loadavg_after"] = os.getloadavg()
    print(f"load average after: {results['loadavg_after']} (2 cores shared)")
    save("serving" + ("-soak" if args.soak else ""), {**results, "machine": machine()})
