"""Member erasure: remove one member from every store the service keeps, and log that it happened.

The contact log erases itself (contacts, offers, suppressions, stored lists). Other stores join
through ``ERASERS``: each is ``(name, "module:function")`` and is called when the module provides
the function (the feature store's online rows, model caches). The erasure log under
``LOYALTY_HOME/privacy/erasures.jsonl`` holds a salted hash of the id and the counts, never the id.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import Any

from loyalty_ml.campaigns.contact_log import ContactLog, member_hash, open_contact_log, utcnow
from loyalty_ml.settings import get_settings

log = logging.getLogger(__name__)

ERASERS: tuple[tuple[str, str], ...] = (
    ("online_features", "loyalty_ml.features.erasure:erase_member"),
    ("recommendation_cache", "loyalty_ml.recs.erasure:erase_member"),
)


def _resolve(target: str) -> Any | None:
    module_name, _, func = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, func, None)


def erase_member(member_id: str, contact_log: ContactLog | None = None) -> dict[str, Any]:
    """Erase ``member_id`` everywhere; returns per-store counts (``"not available"`` if absent)."""
    member_id = str(member_id)
    owned = contact_log is None
    store = contact_log or open_contact_log()
    report: dict[str, Any] = {}
    try:
        report["contact_log"] = store.erase_member(member_id)
    finally:
        if owned:
            store.close()
    for name, target in ERASERS:
        func = _resolve(target)
        report[name] = func(member_id) if func is not None else "not available"
    entry = {"member_hash": member_hash(member_id), "erased_at": utcnow().isoformat(), **report}
    path = get_settings().path("privacy", "erasures.jsonl")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")
    log.info("erased member %s: %s", entry["member_hash"], report)
    return report
