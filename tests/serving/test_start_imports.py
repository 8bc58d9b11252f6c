"""What the serving start-up imports, where it runs serially (each check in a fresh interpreter).

Start to ready is bounded by what runs before the workers start (the ``loyalty serve`` parent,
BentoML's serve process importing ``serving/service.py``) plus one worker's start. These keep
the serial part free of pandas and of the API itself; the timing is the benchmark's
(``serving/startup_time.py``), not a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.serving.test_server import REPO

PROBE = (
    "import json, sys\n{body}\nprint(json.dumps(sorted(m for m in {watch} if m in sys.modules)))\n"
)
HEAVY = ["pandas", "feast", "sklearn", "lightgbm", "fastapi", "loyalty_ml.serving.app"]


def imported(body: str, home: Path) -> list[str]:
    env = {**os.environ, "LOYALTY_HOME": str(home), "LOYALTY_PROFILE": "local"}
    env.pop("LOYALTY_API_KEYS", None)
    code = PROBE.format(body=body, watch=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serve_parent_prepares_without_pandas(tmp_path: Path) -> None:
    body = (
        "import loyalty_ml.cli.main\n"
        "from loyalty_ml.serving.config import load_serving_config\n"
        "from loyalty_ml.serving.runner import bentoml_command, prepare_champions, prepare_keys\n"
        "prepare_keys(load_serving_config())\n"
        "prepare_champions()\n"
        "bentoml_command('127.0.0.1', 3000)\n"
    )
    assert imported(body, tmp_path) == []
    assert (tmp_path / "api_keys.json").is_file()  # the preparation really ran


def test_bento_service_import_defers_the_api(tmp_path: Path) -> None:
    body = (
        "import serving.service as s\n"
        "mounted = s.LoyaltyService.mount_apps[-1][0]\n"
        "assert type(mounted).__name__ == 'DeferredApp' and mounted.app is None\n"
    )
    assert imported(body, tmp_path) == []
    # The worker side: the app is imported and built on load.
    loaded = imported(body + "mounted.load()\nassert mounted.routes\n", tmp_path)
    assert "loyalty_ml.serving.app" in loaded and "fastapi" in loaded
