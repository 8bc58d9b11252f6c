"""Integration: a tiny real pipeline (simulator → features → churn/recs/benefits @champion), then
the real ``loyalty serve`` with ``ChampionBackend`` (no fakes): every endpoint answers 200 with
real model output. The pipeline is built once per module (~1-3 min on a quiet machine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving.test_server import REPO, server

pytestmark = pytest.mark.slow

BUILD = """
import sys
from loyalty_ml.simulate import generate, load_config
from loyalty_ml.contract.validate import load_valid_dataset
from loyalty_ml.pipeline import run_pipeline
data = sys.argv[1]
generate(load_config(members=1500, days=240, seed=3), data)
ds = load_valid_dataset(data, name="it")
result = run_pipeline(ds, data, trials=0)
for s in result.stages:
    print(s.stage, s.status, s.detail[:300], flush=True)
sys.exit(0 if result.ok else 1)
"""


@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("real")
    home = root / "home"
    home.mkdir()
    # A tiny shop logs fewer offers per benefit than the production floor (200): lower it so the
    # benefit model trains (the only change to the shipped configuration).
    config = root / "config"
    shutil.copytree(REPO / "config", config)
    benefits = config / "benefits.yaml"
    text = benefits.read_text()
    assert "min_observations_per_arm: 200" in text
    benefits.write_text(
        text.replace("min_observations_per_arm: 200", "min_observations_per_arm: 40")
    )
    env = {
        **os.environ,
        "LOYALTY_CONFIG_DIR": str(config),
        "LOYALTY_HOME": str(home),
        "LOYALTY_PROFILE": "local",
        "OPENBLAS_NUM_THREADS": "1",
        "MLFLOW_ENABLE_ARTIFACTS_DESTINATION_CHECK": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(root / "data")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((home / "pipeline.json").read_text())
    assert set(manifest["models"]) == {"churn", "recs", "benefits"}, done.stdout
    yield home


def test_real_backend_every_endpoint(pipeline_home: Path) -> None:
    home = pipeline_home
    members = __import__("pandas").read_parquet(
        json.loads((home / "pipeline.json").read_text())["data_dir"] + "/members.parquet"
    )
    member = str(members["member_id"].iloc[0])
    env = {
        "LOYALTY_SERVING_BACKEND": "",
        "OPENBLAS_NUM_THREADS": "1",
        "LOYALTY_CONFIG_DIR": str(home.parent / "config"),
    }
    with server(home, "uvicorn", extra_env=env, ready_timeout=600) as (base, _):
        keys = json.loads((home / "api_keys.json").read_text())
        sf = {"x-api-key": keys["storefront"]}
        cp = {"x-api-key": keys["campaigns"]}
        ad = {"x-api-key": keys["admin"]}
        assert httpx.get(base + "/healthz").status_code == 200
        ready = httpx.get(base + "/readyz", timeout=30).json()
        assert ready["ready"], ready
        assert ready["components"]["churn_model"]["version"] == "churn-it/1"
        assert ready["components"]["batch_snapshot"]["ready"]

        rec = httpx.post(base + "/recommend", json={"member_id": member, "n": 5}, headers=sf)
        assert rec.status_code == 200, rec.text
        body = rec.json()
        assert len(body["items"]) == 5 and body["model_version"] == "recs-it/1"
        assert body["fallback"] is None
        cold = httpx.post(base + "/recommend", json={"member_id": "nobody-x"}, headers=sf).json()
        assert cold["fallback"] == "cold_start" and cold["items"]
        cart_item = body["items"][0]["product_id"]
        cart = httpx.post(
            base + "/recommend",
            json={"member_id": member, "context": "cart", "cart": [cart_item], "n": 5},
            headers=sf,
        )
        assert cart.status_code == 200, cart.text
        assert cart_item not in {i["product_id"] for i in cart.json()["items"]}

        churn = httpx.post(
            base + "/churn_score", json={"member_ids": [member, "nobody-x"]}, headers=cp
        )
        assert churn.status_code == 200, churn.text
        scores = churn.json()
        assert scores["unknown"] == ["nobody-x"]
        assert 0 <= scores["scores"][0]["churn_probability"] <= 1
        assert scores["scores"][0]["reasons"]

        ben = httpx.post(base + "/benefits", json={"member_id": member}, headers=cp)
        assert ben.status_code == 200, ben.text
        assert {b["benefit_id"] for b in ben.json()["benefits"]} >= {"none"}
        assert (
            httpx.post(base + "/benefits", json={"member_id": "nobody-x"}, headers=cp).status_code
            == 404
        )

        req = {"campaign_id": "it-real", "limit": 20, "budget": 200}
        first = httpx.post(base + "/campaigns/at_risk", json=req, headers=cp, timeout=300)
        assert first.status_code == 200, first.text
        listed = first.json()["members"]
        assert listed and len(listed) <= 20
        assert sum(m["cost"] for m in listed) <= 200 + 1e-9
        again = httpx.post(base + "/campaigns/at_risk", json=req, headers=cp, timeout=300)
        assert again.json()["replayed"] and again.json()["members"] == listed
        clash = httpx.post(
            base + "/campaigns/at_risk", json={**req, "limit": 5}, headers=cp, timeout=60
        )
        assert clash.status_code == 409
        cancel = httpx.delete(base + "/campaigns/it-real", headers=cp)
        assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"

        reload = httpx.post(base + "/admin/reload", headers=ad)
        assert reload.status_code == 202 and reload.json()["status"] == "started"
