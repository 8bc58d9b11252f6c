from __future__ import annotations

import pandas as pd
import pytest

from loyalty_ml.churn.bgnbd import fit_bgnbd
from tests.conftest import shared_dataset


@pytest.mark.data
def test_bgnbd_fitter_matches_the_published_cdnow_sample_fit() -> None:
    path = shared_dataset("cdnow") / "cdnow_customers_summary_with_transactions.csv"
    d = pd.read_csv(path)
    fit = fit_bgnbd(d["x"].to_numpy(), d["t_x"].to_numpy(), d["T"].to_numpy())
    assert fit.r == pytest.approx(0.243, abs=0.002)
    assert fit.alpha == pytest.approx(4.414, abs=0.02)
    assert fit.a == pytest.approx(0.793, abs=0.005)
    assert fit.b == pytest.approx(2.426, abs=0.02)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
