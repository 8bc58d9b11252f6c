"""Member and product features: a pure pipeline (``pipeline``) and its Feast wiring (``store``).

Feast is imported only by ``loyalty_ml.features.store`` and ``online``: importing this package is
cheap.
"""

from loyalty_ml.features.pipeline import (
    FamilyStatus,
    available_families,
    build_member_features,
    build_member_features_at,
    build_member_snapshots,
    build_product_features,
    register_family,
)

__all__ = [
    "FamilyStatus",
    "available_families",
    "build_member_features",
    "build_member_features_at",
    "build_member_snapshots",
    "build_product_features",
    "register_family",
]
