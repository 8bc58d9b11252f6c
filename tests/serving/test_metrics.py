"""The serving metrics: garbage-collection pauses by generation and the worker's pid."""

from __future__ import annotations

import gc
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loyalty_ml.serving.metrics import GcPauses, ServingMetrics


def _samples(metrics: ServingMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render()[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_pauses_land_in_their_generation_and_bucket() -> None:
    pauses = GcPauses(buckets=(0.01, 0.1))
    pauses.record(2, 0.25)
    pauses.record(2, 0.005)
    pauses.record(0, 0.05)
    (family,) = pauses.pause_histogram.collect()
    by_key = {
        (s.name, s.labels.get("generation"), s.labels.get("le")): s.value for s in family.samples
    }
    assert by_key[("loyalty_gc_pause_seconds_bucket", "2", "0.01")] == 1
    assert by_key[("loyalty_gc_pause_seconds_bucket", "2", "0.1")] == 1  # cumulative
    assert by_key[("loyalty_gc_pause_seconds_bucket", "2", "+Inf")] == 2
    assert by_key[("loyalty_gc_pause_seconds_bucket", "0", "0.01")] == 0
    assert by_key[("loyalty_gc_pause_seconds_bucket", "0", "0.1")] == 1
    assert by_key[("loyalty_gc_pause_seconds_sum", "2", None)] == pytest.approx(0.255)
    assert by_key[("loyalty_gc_pause_seconds_count", "1", None)] == 0
    assert pauses.longest == [0.05, 0.0, 0.25]


def test_real_collections_are_timed_by_one_hook_per_process() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    assert first.gc_pauses is second.gc_pauses
    assert gc.callbacks.count(first.gc_pauses.on_gc) == 1
    before = _samples(second)[("loyalty_gc_pause_seconds_count", (("generation", "2"),))]
    gc.collect()
    after = _samples(second)
    assert after[("loyalty_gc_pause_seconds_count", (("generation", "2"),))] == before + 1
    assert after[("loyalty_gc_longest_pause_seconds", (("generation", "2"),))] > 0
    assert after[("loyalty_worker_pid", ())] == os.getpid()
