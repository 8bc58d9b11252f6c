"""The real backend: champions from MLflow aliases, the online feature reader, the contact log.

Everything loaded lives in one immutable ``_State``; a handler reads ``self._state`` once and
uses that snapshot, so ``reload`` (build a new state in a thread, then one reference assignment)
never disturbs requests in flight. A component that fails to load is ``None`` with a message:
readiness says why, ``/recommend`` degrades, the other endpoints answer 503.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loyalty_ml.campaigns import policy_adapter
from loyalty_ml.campaigns.at_risk import CampaignPolicy
from loyalty_ml.campaigns.contact_log import ContactLog, member_hash, open_contact_log
from loyalty_ml.serving import adapters, campaign_ops
from loyalty_ml.serving.adapters import AdapterMissing, Loaded
from loyalty_ml.serving.backend import NotReady, UnknownMember
from loyalty_ml.serving.config import ServingConfig
from loyalty_ml.serving.resolve import read_resolved
from loyalty_ml.serving.schemas import (
    AtRiskRequest,
    AtRiskResponse,
    BenefitOption,
    BenefitsResponse,
    CancelResponse,
    ChurnScore,
    ChurnScoreResponse,
    ComponentStatus,
    Readiness,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    ReloadResponse,
)
from loyalty_ml.serving.snapshot import BatchSnapshot, SnapshotUnavailable, load_snapshot
from loyalty_ml.settings import get_settings

log = logging.getLogger(__name__)
DATASET_ENV = "LOYALTY_DATASET"
LOG_RETRY_S = 10.0  # a contact log that failed to open is retried at most this often
INLINE_BATCH = 50  # larger feature reads run in a worker thread
ERASED_ID = "__erased__"  # what the recommender is asked for an erased member (cold start)


@dataclass(frozen=True)
class _State:
    generation: int = 0
    churn: Loaded | None = None
    recs: Loaded | None = None
    benefits: Loaded | None = None
    online: Any = None
    policy_config: Any = None
    messages: dict[str, str] = field(default_factory=dict)
    snapshot: BatchSnapshot | None = None
    churn_online: bool = False  # the online store carries every churn model feature
    dataset: str = ""
    churn_cache: ChurnCache | None = None


def _try(messages: dict[str, str], name: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (AdapterMissing, SnapshotUnavailable) as exc:
        messages[name] = str(exc)
    except Exception as exc:  # a broken component must not stop the others
        messages[name] = f"{type(exc).__name__} while loading: {exc}"
        log.warning("could not load %s: %s", name, type(exc).__name__)
    return None


class ChurnCache:
    """Per-member ``/churn_score`` answers from the (immutable) batch snapshot of one generation.

    Probability, band and segment come from the snapshot's population scores (computed at load by
    ``score_frame`` — the same numbers a per-request call would give); reason codes (SHAP, ~ms per
    member, ~40 ms for a single-row call) are computed on first use, in batches, and kept. A
    background task pre-computes them for the ``reason_cache_members`` members with the highest
    value at risk after start-up; at-risk lists share the same cache."""

    def __init__(self, snapshot: BatchSnapshot, churn: Any, top_k: int = 3) -> None:
        scores = snapshot.scores
        self.snapshot = snapshot
        self.churn = churn
        self.top_k = top_k
        ids = scores["member_id"].astype(str).tolist()
        self.order = ids  # by value at risk, highest first
        self.index = dict(zip(ids, range(len(ids)), strict=True))
        self.probability = scores["churn_probability"].astype(float).tolist()
        self.band = scores["risk_band"].astype(str).tolist()
        self.segment = scores["value_segment"].astype(str).tolist()
        self.reasons: dict[str, list[dict[str, Any]]] = {}
        self.warmed = 0
        self.erased: frozenset[str] = frozenset()  # erased members: unknown, never cached

    def known(self, member_id: str) -> bool:
        return member_id in self.index and member_id not in self.erased

    def missing(self, member_ids: list[str]) -> list[str]:
        return [
            m
            for m in member_ids
            if m not in self.reasons and m in self.index and m not in self.erased
        ]

    def forget(self, member_ids: frozenset[str]) -> None:
        """Erasure: these members become unknown and their cached reasons are dropped."""
        self.erased = member_ids
        for member in member_ids:
            self.reasons.pop(member, None)

    def compute(self, member_ids: list[str]) -> None:
        """Reason codes for ``member_ids`` (known, not yet cached), one batched SHAP call."""
        if not member_ids:
            return
        frame = self.snapshot.churn_features.loc[member_ids].reset_index(drop=True)
        for member, why in zip(
            member_ids, self.churn.reasons(frame, top_k=self.top_k), strict=True
        ):
            if member in self.erased:  # erased while this batch was being computed
                continue
            self.reasons[member] = [
                {"code": str(r["code"]), "weight": float(r["weight"])} for r in why
            ]

    def reasons_for(self, member_ids: list[str]) -> list[list[dict[str, Any]]]:
        """At-risk lists: reasons for ``member_ids`` (cached, else computed now)."""
        self.compute(self.missing(member_ids))
        return [self.reasons.get(m, []) for m in member_ids]

    def row(self, member_id: str) -> dict[str, Any]:
        i = self.index[member_id]
        return {
            "member_id": member_id,
            "churn_probability": self.probability[i],
            "risk_band": self.band[i],
            "value_segment": self.segment[i],
            "reasons": self.reasons.get(member_id, []),
        }

    async def warm(self, limit: int, batch: int) -> None:
        """Pre-compute reasons for the first ``limit`` members by value at risk, in batches
        (a worker thread each; the event loop keeps answering in between)."""
        for start in range(0, min(limit, len(self.order)), batch):
            todo = self.missing(self.order[start : min(start + batch, limit)])
            await asyncio.to_thread(self.compute, todo)
            self.warmed = min(start + batch, limit, len(self.order))
        log.info("churn reason cache warm: %d members", len(self.reasons))


class Erasures:
    """The erasure log ``loyalty member erase`` appends to (``privacy/erasures.jsonl``: salted
    hashes, never ids), as a set of hashes; ``refresh`` re-reads it when it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, int] | None = None
        self.hashes: frozenset[str] = frozenset()

    def refresh(self) -> bool:
        """Re-read the log if it changed since the last call; True when it did."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            changed = self.stamp is not None
            self.stamp, self.hashes = None, frozenset()
            return changed
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self.stamp:
            return False
        hashes = set()
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    hashes.add(str(json.loads(line)["member_hash"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line: read again on the next change
        self.stamp, self.hashes = stamp, frozenset(hashes)
        return True

    def erased(self, member_id: str) -> bool:
        return bool(self.hashes) and member_hash(member_id) in self.hashes

    def among(self, member_ids: Any) -> frozenset[str]:
        """Which of ``member_ids`` are erased (hashes every id: ~1 s per million)."""
        if not self.hashes:
            return frozenset()
        hashes = self.hashes
        return frozenset(m for m in member_ids if member_hash(m) in hashes)


class ChampionBackend:
    def __init__(self, config: ServingConfig, dataset: str | None = None) -> None:
        self.config = config
        self._dataset_override = dataset
        self.dataset = self._dataset_name(None)
        self._state = _State(messages={"models": "not loaded yet"})
        self._reload_task: asyncio.Task[None] | None = None
        self._log: ContactLog | None = None
        self._log_error = ""
        self._log_attempt = 0.0
        self._warm_task: asyncio.Task[None] | None = None
        self._online_down_until = 0.0  # after a failed online read: skip the store until then
        self._erasures = Erasures(get_settings().path("privacy", "erasures.jsonl"))
        self._erased_ids: frozenset[str] = frozenset()  # erased members of the snapshot
        self._erasure_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def _dataset_name(self, manifest: dict[str, Any] | None) -> str:
        """Explicit argument, else ``LOYALTY_DATASET``, else the last pipeline's, else demo."""
        return (
            self._dataset_override
            or os.environ.get(DATASET_ENV)
            or (manifest or {}).get("dataset")
            or "demo"
        )

    def _load(self, generation: int) -> _State:
        from loyalty_ml.pipeline import read_manifest

        messages: dict[str, str] = {}
        manifest = _try(messages, "batch_snapshot", read_manifest)
        self.dataset = dataset = self._dataset_name(manifest)
        # At start, the champions ``loyalty serve`` resolved once for all workers (no MLflow
        # here); on /admin/reload, MLflow itself (the aliases may have moved).
        resolved = read_resolved() if generation == 1 else None
        churn = _try(messages, "churn_model", adapters.load_churn, dataset, resolved)
        recs = _try(messages, "recs_model", adapters.load_recommender, dataset, resolved)
        benefits = _try(messages, "benefit_model", adapters.load_benefits, dataset, resolved)
        store_cfg = self.config.online_store
        online = _try(
            messages,
            "online_store",
            adapters.open_online_store,
            store_cfg.connect_timeout_ms,
            store_cfg.read_timeout_ms,
        )
        policy_config = _try(messages, "policy", policy_adapter.load_policy_config)
        churn_online = churn is not None and adapters.online_has(online, churn.obj)
        snapshot = None
        if churn is not None and (manifest is None or manifest.get("dataset") in (None, dataset)):
            snapshot = _try(
                messages,
                "batch_snapshot",
                load_snapshot,
                manifest,
                churn.obj,
                benefits.obj if benefits else None,
                policy_config,
                self.config.snapshot.max_members,
            )
        elif churn is not None:
            messages["batch_snapshot"] = (
                f"the last pipeline ran on {manifest.get('dataset')!r}, not {dataset!r}"
            )
        churn_cache = None
        if snapshot is not None and churn is not None and not churn_online:
            churn_cache = _try(messages, "churn_cache", ChurnCache, snapshot, churn.obj)
        self._erasures.refresh()
        self._apply_erasures(snapshot, churn_cache)
        return _State(
            generation,
            churn,
            recs,
            benefits,
            online,
            policy_config,
            messages,
            snapshot,
            churn_online,
            dataset,
            churn_cache,
        )

    async def start(self) -> None:
        self._state = await asyncio.to_thread(self._load, 1)
        await self._open_contact_log()
        self._start_warming(self._state)
        if self.config.privacy.erasure_poll_s > 0:
            self._erasure_task = asyncio.create_task(self._watch_erasures())

    def _apply_erasures(self, snapshot: BatchSnapshot | None, cache: ChurnCache | None) -> None:
        """Erased members of this snapshot: excluded from lists, unknown to the cache."""
        ids = snapshot.churn_features.index if snapshot is not None else ()
        erased = self._erasures.among(ids)
        if cache is not None:
            cache.forget(erased)
        self._erased_ids = erased

    async def _watch_erasures(self) -> None:
        """``loyalty member erase`` appends to the erasure log; a running service drops the
        member within ``privacy.erasure_poll_s`` (per-request checks hash the asked id)."""
        while True:
            await asyncio.sleep(self.config.privacy.erasure_poll_s)
            try:
                if await asyncio.to_thread(self._erasures.refresh):
                    state = self._state
                    await asyncio.to_thread(self._apply_erasures, state.snapshot, state.churn_cache)
                    log.info("erasure log changed: %d erased", len(self._erasures.hashes))
            except Exception as exc:  # never let the watcher die
                log.warning("erasure log unreadable: %s", type(exc).__name__)

    def _start_warming(self, state: _State) -> None:
        cfg = self.config.snapshot
        if state.churn_cache is not None and cfg.reason_cache_members > 0:
            if self._warm_task is not None:
                self._warm_task.cancel()
            self._warm_task = asyncio.create_task(self._warm(state.churn_cache))

    async def _warm(self, cache: ChurnCache) -> None:
        cfg = self.config.snapshot
        await cache.warm(cfg.reason_cache_members, cfg.reason_warm_batch)
        if self.config.runtime.gc_freeze:
            # The warm-up allocated the cached reasons after the app's first freeze: move them
            # out of the collector's generations as well (no full collections walking them).
            gc.collect()
            gc.freeze()

    async def stop(self) -> None:
        if self._erasure_task is not None:
            self._erasure_task.cancel()
        if self._warm_task is not None:
            self._warm_task.cancel()
        if self._reload_task is not None:
            self._reload_task.cancel()
        if self._log is not None:
            self._log.close()

    async def reload(self) -> ReloadResponse:
        if self._reload_task is not None and not self._reload_task.done():
            return ReloadResponse(status="already_running", generation=self._state.generation)
        next_generation = self._state.generation + 1

        async def run() -> None:
            state = await asyncio.to_thread(self._load, next_generation)
            self._state = state  # one reference swap: in-flight requests keep their snapshot
            self._start_warming(state)
            if self.config.runtime.gc_freeze and state.churn_cache is None:
                gc.freeze()  # the new champions' heap out of the collector (no warm-up to wait)
            log.info("reloaded champions: generation %d", state.generation)

        self._reload_task = asyncio.create_task(run())
        return ReloadResponse(status="started", generation=next_generation)

    # -- helpers ---------------------------------------------------------------------------
    def _need(self, state: _State, name: str, value: Any) -> Any:
        if value is None:
            raise NotReady(state.messages.get(name, f"{name} is not loaded"))
        return value

    async def _churn_features(self, state: _State, member_ids: list[str]) -> pd.DataFrame:
        """The churn model's inputs: online when the store carries them all, else the snapshot."""
        if not state.churn_online:
            snap = self._need(state, "batch_snapshot", state.snapshot)
            frame = snap.churn_features
            return frame.loc[[m for m in dict.fromkeys(member_ids) if m in frame.index]]
        return await self._features(state, member_ids)

    async def _features(self, state: _State, member_ids: list[str]) -> pd.DataFrame:
        online = self._need(state, "online_store", state.online)
        if len(member_ids) > INLINE_BATCH:
            return await asyncio.to_thread(adapters.member_features, online, member_ids)
        return adapters.member_features(online, member_ids)

    async def _open_contact_log(self) -> None:
        """Open the profile's contact log; on failure remember why and retry on a later call."""
        self._log_attempt = time.monotonic()
        try:
            self._log = await asyncio.to_thread(
                open_contact_log, None, self.config.campaigns.postgres_schema
            )
            self._log_error = ""
        except Exception as exc:
            self._log_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("contact log unavailable: %s", type(exc).__name__)

    async def _contact_log(self) -> ContactLog:
        if self._log is None and time.monotonic() - self._log_attempt > LOG_RETRY_S:
            await self._open_contact_log()
        if self._log is None:
            raise NotReady(f"contact log unavailable: {self._log_error}")
        return self._log

    def _campaign_policy(self, state: _State) -> CampaignPolicy:
        cfg = self.config.campaigns
        return CampaignPolicy(
            config=state.policy_config,
            holdout_share=cfg.holdout_share,
            default_channel=cfg.default_channel,
        )

    # -- endpoints -------------------------------------------------------------------------
    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        state = self._state
        recs = self._need(state, "recs_model", state.recs)
        online = state.online
        if online is not None and time.monotonic() < self._online_down_until:
            online = None  # the store failed moments ago: answer degraded without any I/O
        if self._erasures.erased(request.member_id):  # erased: answered as an unknown member
            items, _ = adapters.recommend(
                recs.obj, None, ERASED_ID, request.n, request.context, request.cart,
                request.product_id,
            )  # fmt: skip
            return RecommendResponse(
                member_id=request.member_id,
                context=request.context,
                items=[RecommendedItem.model_validate(i) for i in items],
                fallback="cold_start",
                model_version=recs.version,
            )
        items, fallback = adapters.recommend(
            recs.obj,
            online,
            request.member_id,
            request.n,
            request.context,
            request.cart,
            request.product_id,
            state.snapshot.tier if state.snapshot is not None else None,
        )
        if fallback == "degraded" and online is not None:
            self._online_down_until = time.monotonic() + self.config.online_store.retry_after_s
        return RecommendResponse(
            member_id=request.member_id,
            context=request.context,
            items=[RecommendedItem.model_validate(i) for i in items],
            fallback=fallback,  # type: ignore[arg-type]  # adapters map onto the contract's
            model_version=recs.version,
        )

    async def popular(self, n: int) -> list[RecommendedItem]:
        state = self._state
        recs = self._need(state, "recs_model", state.recs)
        return [RecommendedItem.model_validate(i) for i in adapters.popular(recs.obj, n)]

    async def churn_score(self, member_ids: list[str]) -> ChurnScoreResponse:
        state = self._state
        churn = self._need(state, "churn_model", state.churn)
        if self._erasures.hashes:  # erased members are answered as unknown
            erased = self._erasures.among(member_ids)
            if erased:
                answer = await self.churn_score([m for m in member_ids if m not in erased])
                answer.unknown = [m for m in member_ids if m in erased or m in answer.unknown]
                return answer
        cache = state.churn_cache
        if cache is not None:
            todo = cache.missing(member_ids)
            if len(todo) > 1:
                await asyncio.to_thread(cache.compute, todo)
            elif todo:
                cache.compute(todo)
            return ChurnScoreResponse.model_validate(
                {
                    "scores": [cache.row(m) for m in member_ids if cache.known(m)],
                    "unknown": [m for m in member_ids if not cache.known(m)],
                    "model_version": churn.version,
                }
            )
        features = await self._churn_features(state, member_ids)
        known = [m for m in dict.fromkeys(member_ids) if m in features.index]
        rows = adapters.churn_rows(churn.obj, features.loc[known]) if known else []
        return ChurnScoreResponse(
            scores=[ChurnScore.model_validate(r) for r in rows],
            unknown=[m for m in member_ids if m not in features.index],
            model_version=churn.version,
        )

    async def benefits(self, member_id: str, budget: float | None) -> BenefitsResponse:
        state = self._state
        matcher = self._need(state, "benefit_model", state.benefits)
        snap = self._need(state, "batch_snapshot", state.snapshot)
        features = snap.benefit_features
        if features is None or member_id not in features.index or self._erasures.erased(member_id):
            raise UnknownMember(f"unknown member {member_id!r}")
        # Tens of ms of pandas per member: in a worker thread, so the event loop keeps serving
        # the hot endpoints meanwhile (the soak's tail latency came from this call).
        options = await asyncio.to_thread(
            adapters.benefit_rows,
            matcher.obj,
            features.loc[[member_id]],
            budget,
            *self._states(snap, [member_id], state.policy_config),
        )
        ranked = options.sort_values(
            ["eligible", "expected_net_value"], ascending=[False, False], kind="stable"
        )
        return BenefitsResponse(
            member_id=member_id,
            benefits=[
                BenefitOption.model_validate(r)
                for r in ranked.drop(columns=["member_id"], errors="ignore").to_dict("records")
            ],
            model_version=matcher.version,
        )

    async def at_risk(self, request: AtRiskRequest) -> AtRiskResponse:
        state = self._state
        churn = self._need(state, "churn_model", state.churn)
        matcher = self._need(state, "benefit_model", state.benefits)
        snap = state.snapshot
        if snap is None:  # no batch snapshot: the online store must list and carry everything
            online = self._need(state, "online_store", state.online)
            if not state.churn_online:
                self._need(state, "batch_snapshot", None)
            return await campaign_ops.at_risk(
                await self._contact_log(),
                request,
                self._campaign_policy(state),
                scored=lambda: adapters.score_population(churn.obj, online),
                options=lambda scored: adapters.population_options(matcher.obj, online, scored),
            )
        cfg = self.config.snapshot
        reach = max(request.limit * cfg.reason_candidates_per_slot, cfg.min_reason_candidates)

        cache = state.churn_cache

        erased = self._erased_ids

        def scored() -> pd.DataFrame:
            found = adapters.snapshot_candidates(
                churn.obj,
                snap,
                reach,
                request.min_probability,
                request.value_segments,
                with_reasons=cache is None,
            )
            if erased:  # erased members are never listed
                found = found[~found["member_id"].astype(str).isin(erased)]
                found = found.reset_index(drop=True)
            return found

        def options(population: pd.DataFrame) -> pd.DataFrame:
            ids = population["member_id"].astype(str).tolist()
            features = snap.benefit_features
            if features is None:
                raise NotReady("the batch snapshot has no benefit features")
            ids = [m for m in ids if m in features.index]
            return adapters.benefit_rows(
                matcher.obj,
                features.loc[ids],
                None,
                *self._states(snap, ids, state.policy_config),
            )

        return await campaign_ops.at_risk(
            await self._contact_log(),
            request,
            self._campaign_policy(state),
            scored,
            options,
            cache.reasons_for if cache is not None else None,
        )

    @staticmethod
    def _states(
        snap: BatchSnapshot, member_ids: list[str], policy_config: Any
    ) -> tuple[pd.DataFrame | None, Any, Any]:
        if snap.states is None or policy_config is None:
            return None, None, None
        states = snap.states.loc[[m for m in member_ids if m in snap.states.index]]
        return states, snap.as_of, policy_config

    async def cancel_campaign(self, campaign_id: str) -> CancelResponse:
        return await campaign_ops.cancel(await self._contact_log(), campaign_id)

    async def readiness(self) -> Readiness:
        state = self._state
        components: dict[str, ComponentStatus] = {}
        for name, loaded in (
            ("churn_model", state.churn),
            ("recs_model", state.recs),
            ("benefit_model", state.benefits),
        ):
            components[name] = ComponentStatus(
                ready=loaded is not None,
                version=loaded.version if loaded else None,
                message=state.messages.get(name, "ok" if loaded else "not loaded"),
            )
        snap = state.snapshot
        components["batch_snapshot"] = ComponentStatus(
            ready=snap is not None,
            required=state.churn is not None and not state.churn_online,
            version=f"{snap.dataset}@{snap.as_of.isoformat()}" if snap else None,
            message=snap.describe() if snap else state.messages.get("batch_snapshot", "not loaded"),
        )
        cache = state.churn_cache
        if cache is not None:
            target = min(self.config.snapshot.reason_cache_members, len(cache.order))
            components["reason_cache"] = ComponentStatus(
                ready=cache.warmed >= target,
                required=False,
                message=f"reason codes pre-computed for {cache.warmed:,} of {target:,} members "
                f"(by value at risk; others on first use); {len(cache.reasons):,} cached",
            )
        components["online_store"] = await self._probe(
            "online_store", state, lambda: state.online.ping() if state.online else None
        )
        try:
            contact_log = await self._contact_log()
        except NotReady as exc:
            components["contact_log"] = ComponentStatus(ready=False, message=exc.message)
        else:
            components["contact_log"] = await self._probe("contact_log", state, contact_log.ping)
        modules = policy_adapter.uses_policy_module()
        components["policy"] = ComponentStatus(
            ready=True,
            required=False,
            message="loyalty_ml.policy"
            if all(modules.values())
            else "interim rules for: " + ", ".join(k for k, v in modules.items() if not v),
        )
        ready = all(c.ready for c in components.values() if c.required)
        return Readiness(ready=ready, components=components)

    async def _probe(self, name: str, state: _State, check: Any) -> ComponentStatus:
        if name == "online_store" and state.online is None:
            return ComponentStatus(ready=False, message=state.messages.get(name, "not loaded"))
        try:
            await asyncio.wait_for(asyncio.to_thread(check), 2.0)
        except Exception as exc:
            return ComponentStatus(ready=False, message=f"{type(exc).__name__}: {exc}"[:300])
        return ComponentStatus(ready=True, message="ok")
