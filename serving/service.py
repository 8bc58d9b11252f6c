"""BentoML entry point (thin): the loyalty-ml API mounted as an ASGI app in one Bento service.

All logic is in ``loyalty_ml.serving``; this file only declares the service. The hot endpoints are
served by the lean FastAPI app (field notes: BentoML's own API path stalls on GC and tops out
near 2k RPS), mounted at ``/`` so the public paths are exactly the contract's. BentoML's own
probes and metrics move under ``/bentoml/`` (``path_prefix``) so ``/healthz``, ``/readyz`` and
``/metrics`` are the app's, with component-level readiness. Nothing heavy happens at import:
the app itself is imported in each worker when its lifespan starts (``DeferredApp``), and models
load in the app's lifespan, once per worker.

    bentoml serve serving.service:LoyaltyService      # or: loyalty serve
"""

from __future__ import annotations

import os

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

import bentoml

from loyalty_ml.serving.bento import (
    DeferredApp,
    mount_at_root,
    release_request_timers,
    service_options,
)

release_request_timers()


@bentoml.service(**service_options())
class LoyaltyService:
    """loyalty-ml: churn risk, benefits and recommendations with the loyalty rules applied."""


mount_at_root(LoyaltyService, DeferredApp(), name="loyalty_api")
