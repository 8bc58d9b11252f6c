"""``BenefitMatcher``: the fitted artifact the serving layer loads.

It holds the feature schema, the per-outcome uplift models, costs, the objective and the tuned
decision parameters. ``score`` gives every member × benefit with its expected uplift and net value
and whether the policy engine allows it; ``assign`` picks one benefit per member (``none`` when
nothing pays), optionally under a total budget through the policy engine's allocator.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_ml.benefits.config import Objective
from loyalty_ml.benefits.data import FeatureSchema
from loyalty_ml.benefits.decision import (
    DecisionParams,
    NetCalibration,
    allocate_with_budget,
    choose,
    confident_net,
    cost_in_objective_units,
    explore,
    net_values,
    objective_uplift,
)
from loyalty_ml.benefits.learners import UpliftModel
from loyalty_ml.errors import LoyaltyError, MissingDataError

ARTIFACT_FILE = "benefit_matcher.pkl"
SCORE_COLUMNS = [
    "member_id",
    "benefit_id",
    "expected_uplift",
    "expected_net_value",
    "cost",
    "eligible",
    "reason",
]
ASSIGN_COLUMNS = [
    "member_id",
    "benefit_id",
    "expected_uplift",
    "expected_net_value",
    "cost",
    "propensity",
]


@dataclass
class BenefitMatcher:
    arms: list[str]  # control first
    schema: FeatureSchema
    models: dict[str, UpliftModel]  # "conversion" and (when revenue is logged) "revenue"
    objective: Objective
    costs: dict[str, float]  # currency per offer
    centers: list[float]  # per-arm average effect (objective units) used for shrinkage
    decision: DecisionParams
    margin_rate: float | None = None
    conversion_value: float | None = None
    exploration: float = 0.0
    learner: str = "t"
    metadata: dict[str, Any] = field(default_factory=dict)
    # Net-value calibration of the training objective (None: raw effects, no confidence gate).
    calibration: NetCalibration | None = None

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / ARTIFACT_FILE
        with path.open("wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, uri: Path | str) -> BenefitMatcher:
        """From a local file/folder or an MLflow URI (``models:/name@champion``, ``runs:/...``)."""
        text = str(uri)
        if "://" in text or text.startswith(("models:/", "runs:/")):
            from mlflow.artifacts import download_artifacts

            from loyalty_ml.tracking import configure_mlflow

            configure_mlflow()
            text = download_artifacts(artifact_uri=text)
        path = Path(text)
        if path.is_dir():
            found = sorted(path.rglob(ARTIFACT_FILE))
            if not found:
                raise MissingDataError(f"no {ARTIFACT_FILE} under {path}")
            path = found[0]
        if not path.is_file():
            raise MissingDataError(f"benefit model not found: {uri}")
        with path.open("rb") as fh:
            obj = pickle.load(fh)
        if not isinstance(obj, cls):
            raise LoyaltyError(f"{path} is not a benefit matcher")
        return obj

    # ------------------------------------------------------------------ prediction
    def with_objective(
        self,
        objective: Objective,
        margin_rate: float | None = None,
        conversion_value: float | None = None,
    ) -> BenefitMatcher:
        """The same models deciding for another objective (centers and default arm recomputed)."""
        import copy

        if objective == self.objective and margin_rate is None and conversion_value is None:
            return self
        if objective != "conversion" and "revenue" not in self.models:
            raise MissingDataError(f"objective {objective}: the model has no revenue effects")
        mr = margin_rate if margin_rate is not None else self.margin_rate
        if objective == "margin" and mr is None:
            raise MissingDataError("objective margin needs a margin rate (config margin_rate)")
        cv = conversion_value if conversion_value is not None else self.conversion_value
        out = copy.copy(self)
        out.objective, out.margin_rate, out.conversion_value = objective, mr, cv
        out.calibration = None  # calibrated for the training objective only
        raw = self.metadata.get("outcome_centers", {})
        key = "conversion" if objective == "conversion" else "revenue"
        scale = (mr or 0.0) if objective == "margin" else 1.0
        centers = np.asarray(raw.get(key, [0.0] * len(self.arms)), dtype=float) * scale
        out.centers = centers.tolist()
        net = centers - out._unit_costs()
        net[0] = 0.0
        out.decision = DecisionParams(
            self.decision.shrinkage, self.decision.switch_margin, int(np.argmax(net))
        )
        return out

    @property
    def benefit_ids(self) -> list[str]:
        return list(self.arms)

    def uplift(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per-outcome effect matrices ``(n, n_arms)`` (column 0 = control = 0)."""
        X = self.schema.transform(features)
        return {name: model.predict_uplift(X) for name, model in self.models.items()}

    def _unit_costs(self) -> np.ndarray:
        costs = [self.costs.get(a, 0.0) for a in self.arms]
        return cost_in_objective_units(self.objective, costs, self.conversion_value)

    def net_matrix(
        self, features: pd.DataFrame, shrinkage: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(objective uplift, net value), each ``(n, n_arms)``; ``shrinkage`` overrides the
        decision's."""
        effects = self.uplift(features)
        up = objective_uplift(
            self.objective, effects["conversion"], effects.get("revenue"), self.margin_rate
        )
        costs = self._unit_costs()
        calib = getattr(self, "calibration", None)  # artifacts saved before calibration existed
        if calib is not None:
            raw = up
            up = calib.net(raw) + costs[None, :]
            up[:, 0] = 0.0
        lam = self.decision.shrinkage if shrinkage is None else shrinkage
        net = net_values(up, self.centers, lam, costs)
        shrunk = net + costs[None, :]
        if calib is not None:
            # A benefit not confidently worth its cost is never chosen (net value at most 0).
            net = confident_net(net, raw, calib)
        return shrunk, net

    def allocation_net(self, features: pd.DataFrame) -> np.ndarray:
        """Per-member expected net value per benefit for the budgeted allocation ``(n, n_arms)``.

        The allocator ranks members against each other by net value per unit of cost, so it
        needs values that differ between members. When the decision fell back to shrinkage 0
        (every member of a benefit gets the benefit's average), the kept learner's own effects
        are used instead (shrinkage 1), still subject to the calibration's confidence gate (a
        benefit not confidently worth its cost for the member's bin is never a candidate);
        otherwise the decision's own (shrunk) net values. Measured on the simulator (8k members,
        same allocator): per-bin calibrated values ranked nobody (the empirical-Bayes step shrank
        every bin to the benefit's mean), 8.0 per member, against 9.5 with the learner's effects;
        see benchmarks/results/benefits.md."""
        if self.decision.shrinkage > 0:
            return self.net_matrix(features)[1]
        effects = self.uplift(features)
        raw = objective_uplift(
            self.objective, effects["conversion"], effects.get("revenue"), self.margin_rate
        )
        net = net_values(raw, self.centers, 1.0, self._unit_costs())
        return confident_net(net, raw, getattr(self, "calibration", None))

    def _eligibility(
        self, member_ids: pd.Series, states: pd.DataFrame | None, at: object, policy: Any | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Boolean (n, n_arms) and reason codes from the policy engine; None without states."""
        if states is None:
            return None, None
        from loyalty_ml.policy import eligibility_reasons, load_policy

        cfg = policy or load_policy()
        cfg = _with_arms(cfg, self.arms, self.costs)
        if "member_id" not in states:
            raise MissingDataError("member states need a member_id column")
        st = states.drop_duplicates("member_id").set_index(
            states.drop_duplicates("member_id")["member_id"].astype(str)
        )
        missing = ~member_ids.isin(st.index)
        if missing.any():
            raise MissingDataError(
                f"no member state (tier) for {int(missing.sum())} member(s), "
                f"e.g. {member_ids[missing].iloc[0]!r}"
            )
        aligned = st.loc[member_ids.to_numpy()].reset_index(drop=True)
        when = at if at is not None else pd.Timestamp.now(tz="UTC")
        reasons = eligibility_reasons(aligned, self.arms, when, cfg)
        codes = reasons.to_numpy(dtype=object)
        ok = pd.isna(reasons).to_numpy()
        ok[:, 0] = True
        return ok, codes

    def score(
        self,
        features: pd.DataFrame,
        states: pd.DataFrame | None = None,
        at: object = None,
        policy: Any | None = None,
    ) -> pd.DataFrame:
        """Every member × arm (control included, net value 0): expected uplift (objective units,
        after shrinkage), expected net value, cost, whether the policy engine allows it and the
        reason when it does not (``net_value_not_positive`` for allowed but unprofitable)."""
        member_ids = _member_ids(features)
        up, net = self.net_matrix(features)
        ok, codes = self._eligibility(member_ids, states, at, policy)
        n, k = net.shape
        eligible = np.ones((n, k), bool) if ok is None else ok
        reason = np.full((n, k), None, dtype=object)
        if codes is not None:
            reason[:] = codes
        reason[eligible & (net <= 0)] = "net_value_not_positive"
        reason[:, 0] = None
        costs = np.array([self.costs.get(a, 0.0) for a in self.arms])
        out = pd.DataFrame(
            {
                "member_id": np.repeat(member_ids.to_numpy(dtype=object), k),
                "benefit_id": np.tile(np.array(self.arms, dtype=object), n),
                "expected_uplift": up.reshape(-1),
                "expected_net_value": net.reshape(-1),
                "cost": np.tile(costs, n),
                "eligible": eligible.reshape(-1),
                "reason": reason.reshape(-1),
            }
        )
        return out[SCORE_COLUMNS]

    def choose_arms(
        self,
        member_ids: pd.Series,
        net: np.ndarray,
        eligible: np.ndarray | None,
        budget: float | None,
        params: DecisionParams | None = None,
    ) -> np.ndarray:
        params = params or self.decision
        if budget is None:
            return choose(net, eligible, params)
        costs = np.array([self.costs.get(a, 0.0) for a in self.arms])[None, :].repeat(len(net), 0)
        return allocate_with_budget(
            member_ids.astype(str).tolist(), net, costs, eligible, float(budget)
        )

    def assign(
        self,
        features: pd.DataFrame,
        states: pd.DataFrame | None = None,
        budget: float | None = None,
        at: object = None,
        policy: Any | None = None,
        seed: int = 0,
    ) -> pd.DataFrame:
        """One row per member: the benefit to give (``none`` = nothing pays / not allowed), its
        expected uplift and net value, cost and the probability with which it was chosen."""
        member_ids = _member_ids(features)
        up, net = self.net_matrix(features)
        if budget is not None:
            net = self.allocation_net(features)
            up = net + self._unit_costs()[None, :]
            up[:, 0] = 0.0
        ok, _ = self._eligibility(member_ids, states, at, policy)
        choice = self.choose_arms(member_ids, net, ok, budget)
        prop = np.ones(len(choice))
        if self.exploration > 0 and budget is None:
            choice, prop = explore(choice, ok, len(self.arms), self.exploration, seed)
        rows = np.arange(len(choice))
        costs = np.array([self.costs.get(a, 0.0) for a in self.arms])
        out = pd.DataFrame(
            {
                "member_id": member_ids.to_numpy(dtype=object),
                "benefit_id": np.array(self.arms, dtype=object)[choice],
                "expected_uplift": up[rows, choice],
                "expected_net_value": net[rows, choice],
                "cost": costs[choice],
                "propensity": prop,
            }
        )
        out.attrs["total_cost"] = float(out["cost"].sum())
        return out[ASSIGN_COLUMNS]


def _member_ids(features: pd.DataFrame) -> pd.Series:
    if "member_id" not in features:
        raise MissingDataError("features need a member_id column")
    return features["member_id"].astype(str).reset_index(drop=True)


def _with_arms(policy: Any, arms: list[str], costs: dict[str, float]) -> Any:
    """Policy config extended with benefit ids only known from the offers log (with a warning)."""
    unknown = [a for a in arms if a not in policy.benefits]
    if not unknown:
        return policy
    log = pd.DataFrame({"benefit_id": unknown, "cost": [costs.get(a, 0.0) for a in unknown]})
    extended, _ = policy.with_offer_log_benefits(log)
    return extended
