"""Benefit matching: uplift per member and benefit, net of cost, under tier rules and a budget.

Public API (imported lazily): :func:`train_benefits` -> :class:`BenefitsTrainResult`,
:class:`BenefitMatcher` (``load``, ``score``, ``assign``), :func:`assign_benefits`. See
``docs/benefits.md``.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "train_benefits": "loyalty_ml.benefits.train",
    "BenefitsTrainResult": "loyalty_ml.benefits.train",
    "BenefitMatcher": "loyalty_ml.benefits.matcher",
    "assign_benefits": "loyalty_ml.benefits.assign",
    "load_benefits_config": "loyalty_ml.benefits.config",
    "BenefitsConfig": "loyalty_ml.benefits.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
