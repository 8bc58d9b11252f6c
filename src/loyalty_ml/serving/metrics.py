"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

With several workers each process exports its own series; scrape them per worker or aggregate.
Labels are bounded: the endpoint label is the configured route prefix, never the raw path.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
GC_GENERATIONS = 3


class GcPauses:
    """Wall time of every garbage collection in this process, by generation.

    A collection stops every in-flight request of the worker, so its duration is a latency tail
    that request histograms only show indirectly. One ``gc.callbacks`` hook per process
    (``GcPauses.installed()``) feeds a histogram and a gauge that every app's registry exports.
    """

    _instance: GcPauses | None = None
    _install_lock = threading.Lock()

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.pause_histogram = Histogram(
            "loyalty_gc_pause_seconds",
            "Wall time of this process's garbage collections, by generation (2: full).",
            ("generation",),
            buckets=buckets,
            registry=None,
        )
        self.longest_gauge = Gauge(
            "loyalty_gc_longest_pause_seconds",
            "The longest garbage collection of this process so far, by generation.",
            ("generation",),
            registry=None,
        )
        generations = [str(g) for g in range(GC_GENERATIONS)]  # every series exported from 0
        self._pauses = [self.pause_histogram.labels(g) for g in generations]
        self._longest = [self.longest_gauge.labels(g) for g in generations]
        self.longest = [0.0] * GC_GENERATIONS
        self._started = 0.0

    @classmethod
    def installed(cls) -> GcPauses:
        with cls._install_lock:
            if cls._instance is None:
                cls._instance = cls()
                gc.callbacks.append(cls._instance.on_gc)
            return cls._instance

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.record(int(info["generation"]), time.perf_counter() - self._started)

    def record(self, generation: int, seconds: float) -> None:
        # Safe inside a collection: this takes only the children's value locks, whose held
        # sections allocate no tracked objects, so no collection can start while one is held.
        self._pauses[generation].observe(seconds)
        if seconds > self.longest[generation]:
            self.longest[generation] = seconds
            self._longest[generation].set(seconds)

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self.pause_histogram)
        registry.register(self.longest_gauge)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.gc_pauses = GcPauses.installed()
        self.gc_pauses.register(self.registry)
        self.requests = Histogram(
            "loyalty_http_request_duration_seconds",
            "Request latency by endpoint, method and status.",
            ("endpoint", "method", "status"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "loyalty_recommend_degraded_total",
            "Recommendations answered from the popular fallback, by cause.",
            ("cause",),
            registry=self.registry,
        )
        # Several workers answer on one port: the pid tells their series apart when scraped.
        Gauge("loyalty_worker_pid", "This worker's process id.", registry=self.registry).set(
            os.getpid()
        )
        self.model_info = Gauge(
            "loyalty_model_ready",
            "1 when the component is loaded and ready.",
            ("component", "version"),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], object] = {}

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(endpoint, method, str(status))
        child.observe(seconds)  # type: ignore[attr-defined]

    def degraded(self, cause: str) -> None:
        self.fallbacks.labels(cause[:64]).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
