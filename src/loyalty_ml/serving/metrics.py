"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

With several workers each process exports its own series; scrape them per worker or aggregate.
Labels are bounded: the endpoint label is the configured route prefix, never the raw path.
"""

from __future__ import annotations

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


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
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
