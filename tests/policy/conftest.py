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
