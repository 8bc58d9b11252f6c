"""A warm, in-memory batch snapshot of the last pipeline's data, for what the online store lacks.

The online ``churn_v1`` service carries the pipeline's feature families, but the churn model also
uses features computed at scoring time (BG/NBD ``p_alive``/expected orders and the value model's
inputs), the benefit matcher needs the policy engine's per-member state (tier, benefit usage) and
at-risk lists need the whole member population, which the online reader cannot list. So at start
and on every ``/admin/reload`` the backend reads the manifest of the last ``loyalty pipeline``
(``LOYALTY_HOME/pipeline.json``) and computes, from its data directory at its ``as_of``:

- ``churn_features``: exactly what ``ChurnScorer.features_for`` gives batch scoring;
- ``scores``: every member scored (probability, band, value, value at risk), sorted by value at
  risk — the population at-risk lists draw from (reason codes are computed per list, for the
  members a list can reach, as in the batch job);
- ``benefit_features`` and ``states``: the matcher's inputs (pipeline features + policy replay).

Trade-off, stated plainly: these answers are as of the pipeline's ``as_of``, not live. They
change when a new pipeline run is followed by ``/admin/reload``; events after ``as_of`` are not
seen (the online store has the same freshness: it is materialized by the same pipeline run).
Memory grows with the member count (about 1 KB per member per frame); past
``snapshot.max_members`` the snapshot is refused and the endpoints that need it answer 503 with
that reason instead of exhausting memory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


class SnapshotUnavailable(Exception):
    """No manifest, no data, or too many members: the message says which."""


@dataclass(frozen=True)
class BatchSnapshot:
    dataset: str
    data_dir: str
    as_of: pd.Timestamp
    churn_features: pd.DataFrame  # indexed by member_id (str), member_id column kept
    scores: pd.DataFrame  # every member, sorted by value at risk (descending)
    benefit_features: pd.DataFrame | None  # indexed by member_id
    states: pd.DataFrame | None  # policy replay per member, indexed by member_id
    seconds: float = 0.0

    @property
    def members(self) -> int:
        return len(self.churn_features)

    def tier(self, member_id: str) -> Any:
        if self.states is None or "tier" not in self.states or member_id not in self.states.index:
            return None
        value = self.states.at[member_id, "tier"]
        return None if pd.isna(value) else value

    def describe(self) -> str:
        return (
            f"{self.members:,} members of {self.dataset} as of {self.as_of:%Y-%m-%d %H:%M} "
            f"({self.seconds:.0f} s to build)"
        )


def _indexed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(member_id=frame["member_id"].astype(str))
    return frame.drop_duplicates("member_id", keep="last").set_index("member_id", drop=False)


def load_snapshot(
    manifest: dict[str, Any] | None,
    churn: Any,
    matcher: Any | None,
    policy: Any | None,
    max_members: int,
) -> BatchSnapshot:
    """Build the snapshot from the pipeline manifest; ``churn`` is a loaded ``ChurnScorer``."""
    from loyalty_ml.contract.validate import load_valid_dataset
    from loyalty_ml.timeutil import to_utc

    if not manifest or not manifest.get("data_dir"):
        raise SnapshotUnavailable(
            "no pipeline manifest under LOYALTY_HOME: run `loyalty pipeline` (or `loyalty demo`)"
        )
    data_dir = Path(manifest["data_dir"])
    if not data_dir.is_dir():
        raise SnapshotUnavailable(f"the pipeline's data directory {data_dir} is gone")
    started = time.perf_counter()
    dataset = load_valid_dataset(data_dir, name=manifest.get("dataset"))
    n = len(dataset.members)
    if n > max_members:
        raise SnapshotUnavailable(
            f"{n:,} members exceed snapshot.max_members={max_members:,} (config/serving.yaml)"
        )
    as_of = to_utc(manifest["as_of"]) if manifest.get("as_of") else dataset.latest_timestamp()
    features = churn.features_for(dataset, as_of)
    scores = churn.score_frame(features)
    scores = scores.assign(member_id=scores["member_id"].astype(str))
    scores = scores.sort_values("value_at_risk", ascending=False, kind="stable")
    scores = scores.reset_index(drop=True)
    benefit_features = states = None
    if matcher is not None:
        from loyalty_ml.benefits.assign import member_states
        from loyalty_ml.benefits.data import pipeline_features

        cut = dataset.as_of(as_of)
        ids = cut.members["member_id"].astype(str)
        entities = pd.DataFrame({"member_id": ids.to_numpy(), "event_timestamp": as_of})
        benefit_features = _indexed(pipeline_features(cut, entities))
        if policy is not None:
            states = _indexed(member_states(cut, as_of, policy))
    elif policy is not None:
        from loyalty_ml.benefits.assign import member_states

        states = _indexed(member_states(dataset.as_of(as_of), as_of, policy))
    snap = BatchSnapshot(
        dataset=str(manifest.get("dataset") or dataset.name),
        data_dir=str(data_dir),
        as_of=as_of,
        churn_features=_indexed(features),
        scores=scores,
        benefit_features=benefit_features,
        states=states,
        seconds=time.perf_counter() - started,
    )
    log.info("batch snapshot: %s", snap.describe())
    return snap
