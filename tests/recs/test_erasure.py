"""``loyalty_ml.recs.erasure``: a member's per-member state leaves every recommender bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loyalty_ml.recs.erasure import TOMBSTONE, erase_member


def _bundle(directory: Path) -> None:
    directory.mkdir(parents=True)
    # CSR history over 3 members: m0 -> [0, 1], m1 -> [2], m2 -> [1]
    np.savez(
        directory / "recommender.npz",
        member_ids=np.array(["m0", "m1", "m2"]),
        item_ids=np.array(["p0", "p1", "p2"]),
        member_tier=np.array([1, 2, 3]),
        popularity=np.array([1.0, 2.0, 3.0], dtype=np.float32),
        **{
            "history.indptr": np.array([0, 2, 3, 4]),
            "history.indices": np.array([0, 1, 2, 1], dtype=np.int32),
            "history.data": np.array([1.0, 1.0, 5.0, 1.0], dtype=np.float32),
        },
    )
    np.savez(
        directory / "blend.npz",
        **{"state__als::user_factors": np.ones((3, 4), dtype=np.float32)},
    )


def test_erase_member_from_every_bundle(loyalty_home: Path) -> None:
    first = loyalty_home / "recs" / "recs-x" / "bundle"
    copy = loyalty_home / "mlflow" / "artifacts" / "1" / "model" / "bundle"
    _bundle(first)
    _bundle(copy)

    assert erase_member("m1") == {"bundles_scanned": 2, "bundles_erased": 2}
    for directory in (first, copy):
        z = np.load(directory / "recommender.npz")
        assert list(z["member_ids"]) == ["m0", f"{TOMBSTONE}1", "m2"]
        assert list(z["history.indptr"]) == [0, 2, 2, 3]
        assert list(z["history.indices"]) == [0, 1, 1]
        assert list(z["member_tier"]) == [1, 0, 3]
        assert list(z["popularity"]) == [1.0, 2.0, 3.0]  # item-level state is kept
        factors = np.load(directory / "blend.npz")["state__als::user_factors"]
        assert factors[1].sum() == 0 and factors[0].sum() == 4
    assert erase_member("m1") == {"bundles_scanned": 2, "bundles_erased": 0}


def test_erased_member_is_unknown_to_the_recommender(loyalty_home: Path) -> None:
    """On a real bundle when one exists (the slow serving test trains one); here the contract:
    the id is gone from member_ids, so the recommender's lookup cannot find the member."""
    bundle = loyalty_home / "recs" / "r" / "bundle"
    _bundle(bundle)
    erase_member("m0")
    assert "m0" not in set(np.load(bundle / "recommender.npz")["member_ids"])
