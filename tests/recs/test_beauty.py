"""Amazon Beauty quality bar with the shipped configuration (tuned on validation only)."""

from __future__ import annotations

import pytest

from tests.conftest import shared_dataset

pytestmark = [pytest.mark.slow, pytest.mark.data]


def test_beauty_leave_one_out_bar():
    from loyalty_ml.recs.config import load_recs_config
    from loyalty_ml.recs.evaluation import evaluate, leave_one_out, load_beauty
    from loyalty_ml.recs.tuning import fit_blend, fit_component

    data = load_beauty(shared_dataset("amazon_beauty"))
    test = leave_one_out(data, 1)
    config = load_recs_config()
    blend = fit_blend(config, test, data.item_categories)
    m = evaluate(blend, test, [10]).metrics
    assert m["hr@10"] >= 0.10 and m["ndcg@10"] >= 0.055, m
    pop = evaluate(fit_component("popularity", config, test), test, [10]).metrics
    assert pop["hr@10"] < m["hr@10"] / 3
