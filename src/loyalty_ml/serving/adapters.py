"""The seams between serving and the model/feature packages — the one file to fill in as they land.

``ChampionBackend`` calls only these functions. Each one resolves its package function by name
and raises ``AdapterMissing`` (→ "not ready" with this message, and ``fallback: "degraded"`` on
/recommend) while that function does not exist yet. Expected interfaces, from the design:

- ``loyalty_ml.churn.ChurnScorer``: ``load(model_uri)``, ``score_frame(features_df) -> Series``,
  ``reasons(features_df, top_k) -> list[list[{code, weight}]]``; risk band / value segment from the
  same package (``risk_band(p)``, ``value_segment(features_row)``) or columns of the features.
- ``loyalty_ml.recs.Recommender``: ``load(model_uri)``, ``recommend(member_id, n, context, cart,
  product_id, member_tier, now) -> (items, fallback)``, ``popular(n)``.
- ``loyalty_ml.benefits.BenefitMatcher``: ``load(model_uri)``, ``score(features_df, budget)`` →
  rows ``member_id, benefit_id, eligible, expected_uplift, expected_net_value, cost, reason``.
- ``loyalty_ml.features.online.OnlineFeatures`` (the active profile's Feast online reader):
  ``get(member_ids) -> DataFrame`` indexed by member_id (unknown ids absent), ``ping()``,
  ``population() -> list[member_id]`` for batch lists.

Champions are always ``models:/<kind>-<dataset>@champion`` (``tracking.champion_uri``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

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
        raise AdapterMissing(
            f"no champion for {name!r}: train one (`loyalty train ...`) so it gets the alias"
        ) from exc
    return f"{name}/{version.version}"


def _load_champion(module: str, cls: str, kind: str, dataset: str) -> Loaded:
    loader = _attr(module, cls)
    name = registered_model_name(kind, dataset)
    version = _champion_version(name)
    return Loaded(loader.load(champion_uri(name)), version)


def load_churn(dataset: str) -> Loaded:
    return _load_champion("loyalty_ml.churn", "ChurnScorer", "churn", dataset)


def load_recommender(dataset: str) -> Loaded:
    return _load_champion("loyalty_ml.recs", "Recommender", "recs", dataset)


def load_benefits(dataset: str) -> Loaded:
    return _load_champion("loyalty_ml.benefits", "BenefitMatcher", "benefits", dataset)


def open_online_store() -> Any:
    """The active profile's online feature reader (SQLite locally, Redis in production)."""
    return _attr("loyalty_ml.features.online", "OnlineFeatures")()


# -- per-request calls -----------------------------------------------------------------------
def member_features(online: Any, member_ids: list[str]) -> pd.DataFrame:
    """Features indexed by member_id; unknown members are absent."""
    return online.get(member_ids)


def recommend(
    recommender: Any,
    online: Any,
    member_id: str,
    n: int,
    context: str,
    cart: list[str] | None,
    product_id: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """``(items, fallback)``; items carry product_id, score, reason, points_to_earn."""
    tier = None
    if online is not None:
        features = member_features(online, [member_id])
        if member_id in features.index and "tier" in features.columns:
            tier = features.loc[member_id, "tier"]
    result = recommender.recommend(
        member_id,
        n,
        context=context,
        cart=cart,
        product_id=product_id,
        member_tier=tier,
        now=datetime.now(UTC),
    )
    items, fallback = (result, None) if not isinstance(result, tuple) else result
    return [dict(i) for i in items], fallback


def popular(recommender: Any, n: int) -> list[dict[str, Any]]:
    return [dict(i) for i in recommender.popular(n)]


def churn_rows(churn: Any, features: pd.DataFrame, top_k: int = 3) -> list[dict[str, Any]]:
    """One dict per scored member: churn_probability, risk_band, value_segment, reasons."""
    probs = churn.score_frame(features)
    reasons = churn.reasons(features, top_k=top_k)
    band = _attr("loyalty_ml.churn", "risk_band")
    segment = _attr("loyalty_ml.churn", "value_segment")
    rows = []
    for i, member_id in enumerate(features.index):
        p = float(probs.iloc[i] if hasattr(probs, "iloc") else probs[i])
        rows.append(
            {
                "member_id": str(member_id),
                "churn_probability": p,
                "risk_band": str(band(p)),
                "value_segment": str(segment(features.iloc[i])),
                "value": float(features.iloc[i].get("value", 0.0)),
                "reasons": list(reasons[i]),
            }
        )
    return rows


def benefit_rows(benefits: Any, features: pd.DataFrame, budget: float | None) -> pd.DataFrame:
    """Options per member: benefit_id, eligible, expected_uplift, expected_net_value, cost, reason."""
    return benefits.score(features, budget=budget)


def score_population(churn: Any, online: Any) -> pd.DataFrame:
    """Every member the online store knows, scored (the at-risk list's input)."""
    ids = [str(m) for m in online.population()]
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
