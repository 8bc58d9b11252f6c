"""Probability calibration fitted on a later time slice than the model (isotonic or Platt)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """Maps raw model probabilities to calibrated ones; serialisable as plain numbers."""

    method: str = "none"
    x: list[float] = field(default_factory=list)  # isotonic knots (raw probability)
    y: list[float] = field(default_factory=list)  # isotonic knot values
    a: float = 1.0  # Platt: sigmoid(a * logit(p) + b)
    b: float = 0.0

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        if self.method == "isotonic":
            return np.interp(p, self.x, self.y)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))
        return p

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "x": self.x, "y": self.y, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Calibrator:
        return cls(**data)  # type: ignore[arg-type]


def fit_calibrator(p: np.ndarray, y: np.ndarray, method: str = "isotonic") -> Calibrator:
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    if method == "none" or len(np.unique(y)) < 2:
        return Calibrator("none")
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return Calibrator(
            "isotonic",
            x=[float(v) for v in iso.X_thresholds_],
            y=[float(v) for v in iso.y_thresholds_],
        )
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6).fit(_logit(p).reshape(-1, 1), y)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    raise ValueError(f"unknown calibration method {method!r}")
