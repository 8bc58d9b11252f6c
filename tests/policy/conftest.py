"""Shared helpers for the policy tests: the default config and variants of it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from loyalty_ml.policy import PolicyConfig, load_policy, policy_from_dict

POLICY_FILE = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"


def raw_policy() -> dict[str, Any]:
    return yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))


def policy_with(edit: Any) -> PolicyConfig:
    """The default policy after ``edit(raw_dict)`` mutates a deep copy of the YAML mapping."""
    raw = copy.deepcopy(raw_policy())
    edit(raw)
    return policy_from_dict(raw, source="test")


@pytest.fixture(scope="session")
def cfg() -> PolicyConfig:
    return load_policy(POLICY_FILE)


def fast_and_deep(strategies: tuple, fast: int, deep: int) -> Any:
    """Two tests from one property: a few examples in the default suite (kept fast for everyone),
    many under ``@pytest.mark.slow`` (``make test-slow`` / CI)."""
    from hypothesis import HealthCheck, given, settings

    def deco(body: Any) -> tuple[Any, Any]:
        def make(n: int) -> Any:
            return settings(
                max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow]
            )(given(*strategies)(body))

        return make(fast), pytest.mark.slow(make(deep))

    return deco
