"""BentoML wiring for ``serving/service.py``: service options and mounting the app at ``/``.

BentoML 1.4 registers its own ``/healthz``, ``/readyz``, ``/livez`` and ``/metrics`` ahead of
mounted apps; with ``path_prefix`` they move under ``/bentoml/``. ``@bentoml.asgi_app`` would
join the same prefix onto the app's mount path, so the app is appended to ``mount_apps`` at ``/``
directly (the list ``Service.mount_asgi_app`` itself appends to).
"""

from __future__ import annotations

import os
from typing import Any

BENTO_PREFIX = "/bentoml"
WORKERS_ENV = "LOYALTY_SERVE_WORKERS"
TIMEOUT_S = 150  # > the at-risk timeout in serving.yaml


def service_options() -> dict[str, Any]:
    workers = int(os.environ.get(WORKERS_ENV, "2"))
    return {
        "name": "loyalty_ml",
        "path_prefix": BENTO_PREFIX,
        "workers": workers,
        "traffic": {"timeout": TIMEOUT_S},
        "logging": {"access": {"enabled": False}},
        "metrics": {"enabled": False},
        "tracing": {"sample_rate": 0.0},
    }


def mount_at_root(service: Any, app: Any, name: str) -> None:
    service.mount_apps.append((app, "/", name))
