"""The seams between serving and the model/feature packages — the one file to fill in as they land.

``ChampionBackend`` calls only these functions. Each one resolves its package function by name
and raises ``AdapterMissing`` (→ "not ready" with this message, and ``fallback: "degraded"`` on
/recommend) while that function does not exist yet. Expected interfaces, from the design:

- ``loyalty_ml.churn.scorer.ChurnScorer``: ``load(model_uri)``, ``score_frame(features_df)`` →
  member_id, churn_probability, risk_band, value, value_segment; ``reasons(features_df, top_k)``
  → ``list[list[{code, weight}]]``.
- ``loyalty_ml.recs.Recommender``: ``load(model_uri)``, ``recommend(member_id, n, context, cart,
  product_id, member_tier, now) -> (items, fallback)``, ``popular(n)``; its fallbacks map onto the
  contract's (``popular`` → ``cold_start``, ``home`` → null).
- ``loyalty_ml.benefits.matcher.BenefitMatcher``: ``load(model_uri)``, ``score(features_df)`` →
  member_id, benefit_id, expected_uplift, expected_net_value, cost, eligible, reason.
- ``loyalty_ml.features.online.OnlineFeatureReader(service="churn_v1")``: ``get(ids)`` →
  Feast-style dict; wrapped by ``OnlineFeatures`` into frames. **Missing:** listing the member
  population for at-risk lists (``member_ids()``) — ``/campaigns/at_risk`` answers 503 until then.

Champions are always ``models:/<kind>-<dataset>@champion`` (``tracking.champion_uri``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from loyalty_ml.serving.resolve import no_champion
from loyalty_ml.tracking import champion_uri, registered_model_name


class AdapterMissing(Exception):
    """The package function an adapter needs does not exist (yet), or no champion is registered."""


@dataclass(frozen=True)
class Loaded:
    obj: Any
    version: str | None


def _attr(module: str, name: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise AdapterMissing(f"{module} cannot be imported ({exc})") from exc
    value = getattr(mod, name, None)
    if value is None:
        raise AdapterMissing(f"{module}.{name} does not exist yet")
    return value


def _champion_version(name: str) -> str:
    """The registered version behind ``name@champion``; a clear message when there is none."""
    from loyalty_ml.tracking import configure_mlflow

    try:
        import mlflow
        from mlflow.exceptions import MlflowException
    except ImportError as exc:  # pragma: no cover - mlflow is a dependency
        raise AdapterMissing("mlflow is not installed") from exc
    configure_mlflow()
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
    except MlflowException as exc:
        raise AdapterMissing(no_champion(name)) from exc
    return f"{name}/{version.version}"


def _local_source(kind: str, path: Path) -> Path:
    """The path each loader takes for a downloaded model version."""
    if kind == "churn":  # ChurnScorer.load wants the folder holding churn_model.json
        found = sorted(path.rglob("churn_model.json"))
        if found:
            return found[0].parent
    if kind == "recs":  # Recommender.load: the bundle file (nested in the model's artifacts)
        found = sorted(path.rglob("recommender.npz"))
        if found:
            return found[0]
    return path


def _load_champion(
    module: str, cls: str, kind: str, dataset: str, resolved: dict[str, Any] | None = None
) -> Loaded:
    loader = _attr(module, cls)
    name = registered_model_name(kind, dataset)
    entry = (resolved or {}).get("champions", {}).get(name)
    if entry is not None and (resolved or {}).get("dataset") == dataset:
        if "error" in entry:
            raise AdapterMissing(entry["error"])
        return Loaded(loader.load(_local_source(kind, Path(entry["path"]))), entry["version"])
    version = _champion_version(name)
    return Loaded(loader.load(champion_uri(name)), version)


def load_churn(dataset: str, resolved: dict[str, Any] | None = None) -> Loaded:
    return _load_champion("loyalty_ml.churn.scorer", "ChurnScorer", "churn", dataset, resolved)


def load_recommender(dataset: str, resolved: dict[str, Any] | None = None) -> Loaded:
    return _load_champion("loyalty_ml.recs", "Recommender", "recs", dataset, resolved)


def load_benefits(dataset: str, resolved: dict[str, Any] | None = None) -> Loaded:
    return _load_champion(
        "loyalty_ml.benefits.matcher", "BenefitMatcher", "benefits", dataset, resolved
    )


class OnlineFeatures:
    """``OnlineFeatureReader`` (Feast-compatible dict) → the frames the models take."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.join_key = getattr(reader, "join_key", "member_id")

    def get(self, member_ids: list[str]) -> pd.DataFrame:
        raw = self.reader.get([str(m) for m in member_ids])
        frame = pd.DataFrame(raw)
        if self.join_key != "member_id" and self.join_key in frame:
            frame = frame.rename(columns={self.join_key: "member_id"})
        frame["member_id"] = frame["member_id"].astype(str)
        values = frame.drop(columns=["member_id"])
        known = values.notna().any(axis=1) if len(values.columns) else pd.Series(True, frame.index)
        return frame[known.to_numpy()].set_index("member_id", drop=False)

    def ping(self) -> None:
        self.reader.get(["__readiness_probe__"])

    def population(self) -> list[str]:
        lister = getattr(self.reader, "member_ids", None)
        if lister is None:
            raise AdapterMissing(
                "the online reader cannot list members: at-risk lists need "
                "OnlineFeatureReader.member_ids() (or a batch-scored population)"
            )
        return [str(m) for m in lister()]


def open_online_store(connect_timeout_ms: int = 50, read_timeout_ms: int = 50) -> OnlineFeatures:
    """The active profile's online feature reader (SQLite locally, Redis in production).

    A Redis reader gets a fail-fast client (bounded connect/read timeouts, no retries): a stalled
    read blocks the event loop, which the request timeout cannot interrupt. The reader is built
    from the feature-table manifest (``online_layout``), without Feast: importing Feast and
    reading its registry took ~8-10 s of each worker's start here.
    """
    layout = _attr("loyalty_ml.features.online_layout", "layout_from_manifest")("churn_v1")
    reader = _attr("loyalty_ml.features.online", "OnlineFeatureReader")(
        service="churn_v1", redis_timeouts_ms=(connect_timeout_ms, read_timeout_ms), layout=layout
    )
    return OnlineFeatures(reader)


# -- per-request calls -----------------------------------------------------------------------
CONTRACT_FALLBACKS = {
    None: None,
    "cold_start": "cold_start",
    "degraded": "degraded",
    "popular": "cold_start",
    "home": None,
}


def member_features(online: Any, member_ids: list[str]) -> pd.DataFrame:
    """Features with a ``member_id`` column, indexed by member_id; unknown members are absent."""
    return online.get(member_ids)


def recommend(
    recommender: Any,
    online: Any,
    member_id: str,
    n: int,
    context: str,
    cart: list[str] | None,
    product_id: str | None,
    tier_lookup: Any = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """``(items, fallback)``; items carry product_id, score, reason, points_to_earn.

    With the online store down the recommender still answers from its own state, without the
    member's tier (points may be the base tier's): the answer is marked ``degraded``.
    """
    tier = None
    degraded = online is None
    if online is not None:
        try:
            tier = member_value(online, member_id, TIER_COLUMNS)
        except Exception:
            degraded = True
    if tier is None and tier_lookup is not None:
        tier = tier_lookup(member_id)
    result = recommender.recommend(
        member_id,
        n,
        context=context,
        cart=cart,
        product_id=product_id,
        member_tier=tier,
        now=datetime.now(UTC),
    )
    items, fallback = result if isinstance(result, tuple) else (result, None)
    contract_fallback = "degraded" if degraded else CONTRACT_FALLBACKS.get(fallback, "cold_start")
    return [dict(i) for i in items], contract_fallback


TIER_COLUMNS = ("loyalty__tier", "tier")  # the churn_v1 service's name for it, then a plain one


def member_value(online: Any, member_id: str, columns: tuple[str, ...]) -> Any:
    """The first of ``columns`` the online store has for one member (None when unknown): the
    reader's dict, no DataFrame (a one-row frame cost ~20x the read itself here)."""
    reader = getattr(online, "reader", None)
    if reader is None:
        features = member_features(online, [member_id])
        for column in columns:
            if member_id in features.index and column in features.columns:
                return features.loc[member_id, column]
        return None
    raw = reader.get([member_id])
    for column in columns:
        values = raw.get(column)
        if values:
            value = values[0]
            return None if value is None or value != value else value
    return None


def popular(recommender: Any, n: int) -> list[dict[str, Any]]:
    return [dict(i) for i in recommender.popular(n)]


def churn_rows(churn: Any, features: pd.DataFrame, top_k: int = 3) -> list[dict[str, Any]]:
    """One dict per member: churn_probability, risk_band, value, value_segment, reasons."""
    frame = features.reset_index(drop=True)
    scored = churn.score_frame(frame)
    reasons = churn.reasons(frame, top_k=top_k)
    rows = scored[["member_id", "churn_probability", "risk_band", "value", "value_segment"]]
    out = rows.assign(member_id=rows["member_id"].astype(str)).to_dict("records")
    for row, why in zip(out, reasons, strict=True):
        row["reasons"] = [{"code": str(r["code"]), "weight": float(r["weight"])} for r in why]
        row["value_segment"] = str(row["value_segment"])
        row["risk_band"] = str(row["risk_band"])
    return out


def benefit_rows(
    benefits: Any,
    features: pd.DataFrame,
    budget: float | None,
    states: pd.DataFrame | None = None,
    at: Any = None,
    policy: Any = None,
) -> pd.DataFrame:
    """Options per member: benefit_id, eligible, expected_uplift, expected_net_value, cost, reason.

    With ``states`` (the policy replay's per-member state) eligibility comes from the policy
    engine at ``at``; without, every arm counts as eligible."""
    frame = features.reset_index(drop=True)
    if states is None:
        options = benefits.score(frame)
    else:
        options = benefits.score(frame, states.reset_index(drop=True), at=at, policy=policy)
    options["reason"] = options["reason"].fillna("eligible").astype(str)
    if budget is not None:
        over = options["cost"] > budget
        options.loc[over & options["eligible"], "reason"] = "over_budget"
        options.loc[over, "eligible"] = False
    return options


def online_has(online: Any, churn: Any) -> bool:
    """Whether the online reader carries every feature the churn model was trained on."""
    names = getattr(getattr(online, "reader", None), "feature_names", None)
    needed = getattr(churn, "feature_names", None)
    return bool(names) and bool(needed) and set(needed) <= set(names)


def snapshot_candidates(
    churn: Any,
    snapshot: Any,
    reach: int,
    min_probability: float | None = None,
    value_segments: list[str] | tuple[str, ...] | None = None,
    top_k: int = 3,
    with_reasons: bool = True,
) -> pd.DataFrame:
    """The at-risk population from the batch snapshot: members passing the request's filters,
    by value at risk, the first ``reach`` of them — with reason codes unless ``with_reasons`` is
    false (the list then computes them only for the members it examines: SHAP costs ~ms/row)."""
    scores = snapshot.scores
    if min_probability is not None:
        scores = scores[scores["churn_probability"] >= min_probability]
    if value_segments:
        scores = scores[scores["value_segment"].astype(str).isin(list(value_segments))]
    scores = scores.head(reach).reset_index(drop=True)
    if not with_reasons:
        return scores.assign(
            risk_band=scores["risk_band"].astype(str),
            value_segment=scores["value_segment"].astype(str),
        )
    features = snapshot.churn_features.loc[scores["member_id"].tolist()].reset_index(drop=True)
    reasons = churn.reasons(features, top_k=top_k) if len(features) else []
    scores = scores.assign(
        reasons=[
            [{"code": str(r["code"]), "weight": float(r["weight"])} for r in why] for why in reasons
        ],
        risk_band=scores["risk_band"].astype(str),
        value_segment=scores["value_segment"].astype(str),
    )
    return scores


def score_population(churn: Any, online: Any) -> pd.DataFrame:
    """Every member the online store knows, scored (the at-risk list's input)."""
    ids = online.population()
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), 1000):
        rows.extend(churn_rows(churn, member_features(online, ids[start : start + 1000])))
    return pd.DataFrame(rows)


def population_options(benefits: Any, online: Any, scored: pd.DataFrame) -> pd.DataFrame:
    frames = []
    ids = scored["member_id"].astype(str).tolist()
    for start in range(0, len(ids), 1000):
        frames.append(
            benefit_rows(benefits, member_features(online, ids[start : start + 1000]), None)
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
