"""Feast definitions of loyalty-ml: entities, one feature view per feature family, one feature
service per model version.

The objects are built by ``loyalty_ml.features.definitions`` from the manifest that
``loyalty features build`` writes under ``$LOYALTY_HOME/features``; the package uses the very same
objects, so ``feast apply`` here and ``loyalty features apply`` register identical definitions.
A family whose input table is missing has no view (the name below is ``None``, which Feast
ignores) and the services list it under the ``unavailable`` tag.
"""

from loyalty_ml.features.definitions import feast_objects

_objects = feast_objects()

# Entities
member = _objects.entities["member"]
product = _objects.entities["product"]

# Feature views (sources are attached to them)
member_rfm = _objects.views.get("member_rfm")
member_engagement = _objects.views.get("member_engagement")
member_service = _objects.views.get("member_service")
member_preferences = _objects.views.get("member_preferences")
member_static = _objects.views.get("member_static")
member_loyalty = _objects.views.get("member_loyalty")
product_stats = _objects.views.get("product_stats")

# Feature services, one per model version
churn_v1 = _objects.services.get("churn_v1")
recs_v1 = _objects.services.get("recs_v1")
benefits_v1 = _objects.services.get("benefits_v1")
products_v1 = _objects.services.get("products_v1")

# Offline-only training views (one per service: its families side by side, for training sets)
churn_v1_training = _objects.training_views.get("churn_v1")
recs_v1_training = _objects.training_views.get("recs_v1")
benefits_v1_training = _objects.training_views.get("benefits_v1")
