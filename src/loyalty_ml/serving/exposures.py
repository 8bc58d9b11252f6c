"""A/B tagging at request time: the variant of a member, and an exposure log kept off the hot path.

``config/serving.yaml`` ``abtest.endpoints`` names the experiment (of ``config/abtest.yaml``) that
tags an endpoint's responses. Per request the service computes the member's variant with
``loyalty_ml.abtest``'s hash (the same answer as ``assign_variant``: stable across processes,
workers and restarts) and appends a small tuple to an in-memory buffer; a background task writes
the buffer every ``flush_s`` seconds in a worker thread (``append_exposures``' CSV format, one
write per flush, serialised between workers with an advisory file lock), and once more at
shutdown. A full buffer (``max_buffer``) drops new exposures and counts them rather than blocking
requests. Exposures are logged for every tagged answer, the degraded fallback included.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import json
import logging
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loyalty_ml.abtest.assign import _bucket, _layout, append_exposures

log = logging.getLogger(__name__)


class _Arms:
    __slots__ = ("edges", "experiment", "names", "salt")

    def __init__(self, experiment: str, splits: dict[str, float], salt: str | None) -> None:
        names, edges = _layout(splits)
        self.experiment = experiment
        self.names = names
        self.edges = [float(e) for e in edges]
        self.salt = salt if salt is not None else experiment

    def variant(self, member_id: str) -> str:
        i = bisect.bisect_right(self.edges, _bucket(self.salt, member_id))
        return self.names[min(i, len(self.names) - 1)]


class ExposureLog:
    """Variants for the configured endpoints plus a buffered, asynchronously flushed log."""

    def __init__(
        self,
        endpoints: dict[str, str],
        ab_config: Any,
        path: Path,
        flush_s: float = 1.0,
        max_buffer: int = 100_000,
    ) -> None:
        self.path = path
        self.flush_s = flush_s
        self.max_buffer = max_buffer
        self.arms: dict[str, _Arms] = {}
        for endpoint, experiment in endpoints.items():
            spec = ab_config.experiments.get(experiment)
            if spec is None:
                from loyalty_ml.errors import ConfigError

                raise ConfigError(
                    f"serving.yaml abtest.endpoints.{endpoint}: unknown experiment "
                    f"{experiment!r} (config/abtest.yaml lists {sorted(ab_config.experiments)})"
                )
            self.arms[endpoint] = _Arms(experiment, dict(spec.splits), spec.salt)
        self.buffer: list[tuple[str, str, str, float, str]] = []
        self.dropped = 0
        self.written = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, serving: Any) -> ExposureLog | None:
        """``None`` when no endpoint is tagged (nothing is loaded then)."""
        ab = serving.abtest
        if not ab.endpoints:
            return None
        from loyalty_ml.abtest.config import load_ab_config

        config = load_ab_config()
        return cls(dict(ab.endpoints), config, config.exposures_path(), ab.flush_s, ab.max_buffer)

    # -- request path: a hash, a bisect, an append --------------------------------------------
    def tag(self, endpoint: str, member_id: str, context: str = "") -> tuple[str, str] | None:
        arms = self.arms.get(endpoint)
        if arms is None:
            return None
        variant = arms.variant(member_id)
        if len(self.buffer) < self.max_buffer:
            self.buffer.append((arms.experiment, variant, member_id, time.time(), context))
        else:
            self.dropped += 1
        return arms.experiment, variant

    # -- off the request path -----------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush()

    async def flush(self) -> int:
        rows, self.buffer = self.buffer, []
        if not rows:
            return 0
        try:
            await asyncio.to_thread(self.write, rows)
        except OSError as exc:  # the service keeps answering; the loss is counted and logged
            self.dropped += len(rows)
            log.warning("could not write %d exposures: %s", len(rows), type(exc).__name__)
            return 0
        self.written += len(rows)
        return len(rows)

    def write(self, rows: list[tuple[str, str, str, float, str]]) -> None:
        records = [
            {
                "experiment": experiment,
                "variant": variant,
                "member_id": member_id,
                "exposed_at": datetime.fromtimestamp(ts, UTC).isoformat(),
                "context": json.dumps({"endpoint": endpoint}, sort_keys=True),
            }
            for experiment, variant, member_id, ts, endpoint in rows
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # workers append whole batches, one header
            append_exposures(records, self.path)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
