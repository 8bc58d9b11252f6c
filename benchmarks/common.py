"""Shared helpers for benchmark scripts: machine description, timing, peak memory, results."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(os.environ.get("LOYALTY_BENCH_RESULTS", "bench-results"))
SHARED_DATA = Path(
    os.environ.get(
        "LOYALTY_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


@contextmanager
def timed(label: str, sink: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    sink[label] = time.perf_counter() - started


def percentiles(samples_ms: list[float], qs: tuple[float, ...] = (50, 99)) -> dict[str, float]:
    import numpy as np

    arr = np.asarray(samples_ms)
    return {f"p{int(q)}": float(np.percentile(arr, q)) for q in qs}


def repeat_latency(fn: Callable[[], object], n: int = 1000, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return path


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [
            f"{v:.4g}" if isinstance(v, float) else str(v) for v in (row.get(c, "") for c in cols)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
