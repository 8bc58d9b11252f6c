"""Feature pipeline, training sets, materialization and online reads.

``python -m benchmarks features [--members 20000] [--big 1000000] [--feast-default 100000]
[--skip pipeline,pipeline_big,training,materialize,online]``

- pipeline: ``build_member_features`` on a simulated shop (``--members``), per family.
- pipeline_big: the same on a synthetic raw data set of ``--big`` members (vectorised generator
  below: the simulator needs ~1 s per 10k members and far more memory at 1M).
- training / materialize / online: feature tables for ``--big`` members are the simulated
  members' real feature rows tiled under new ids (realistic value mixes, nulls included).
Run one benchmark at a time under ``nice -n 10``; the machine is shared (2 cores).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import markdown_table, peak_rss_mb, percentiles, repeat_latency, save


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_features")
    p.add_argument("--members", type=int, default=20_000)
    p.add_argument("--big", type=int, default=1_000_000)
    p.add_argument("--feast-default", type=int, default=100_000, dest="feast_default")
    p.add_argument("--skip", default="")
    p.add_argument("--reads", type=int, default=2000)
    p.add_argument("--profiles", default="production,local")
    return p.parse_args(argv)


def _append(rows: list[dict], row: dict) -> None:
    """A result row, with the 1-minute load average when it was taken (shared 2-core box)."""
    row["load1"] = round(os.getloadavg()[0], 2)
    rows.append(row)


def simulated(members: int):
    from loyalty_ml.simulate.api import simulate
    from loyalty_ml.simulate.config import load_config

    cfg = load_config().model_copy(update={"members": members})
    return simulate(cfg)[0]


def synthetic_raw(members: int, seed: int = 7):
    """A contract data set with ~3 orders, ~6 items and ~12 events per member over a year."""
    from loyalty_ml.contract.io import Dataset
    from loyalty_ml.contract.schema import EVENT_TYPES

    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2026-06-30", tz="UTC").value
    year = 365 * 86_400 * 10**9
    ids = np.array([f"m{i:07d}" for i in range(members)], dtype=object)
    joined = end - 2 * year + rng.integers(0, 2 * year, members)
    n_orders = members * 3
    o_member = rng.integers(0, members, n_orders)
    o_time = np.maximum(joined[o_member], end - year) + rng.integers(0, year // 2, n_orders)
    o_time = np.minimum(o_time, end)
    orders = pd.DataFrame(
        {
            "order_id": np.array([f"o{i}" for i in range(n_orders)], dtype=object),
            "member_id": ids[o_member],
            "ordered_at": pd.to_datetime(o_time, utc=True),
            "amount": rng.gamma(2.0, 40.0, n_orders).round(2),
            "discount": np.where(rng.random(n_orders) < 0.3, 5.0, 0.0),
            "status": rng.choice(
                ["completed", "returned", "cancelled"], n_orders, p=[0.9, 0.07, 0.03]
            ),
            "coupon_id": np.where(rng.random(n_orders) < 0.2, "c1", None),
            "channel": "web",
        }
    )
    n_products = 20_000
    products = pd.DataFrame(
        {
            "product_id": np.array([f"p{i}" for i in range(n_products)], dtype=object),
            "category": rng.choice([f"cat{i}" for i in range(25)], n_products),
            "price": rng.gamma(2.0, 20.0, n_products).round(2),
            "brand": "b",
            "cost": 1.0,
            "min_tier": None,
            "launched_at": pd.NaT,
        }
    )
    n_items = n_orders * 2
    items = pd.DataFrame(
        {
            "order_id": orders["order_id"].to_numpy()[rng.integers(0, n_orders, n_items)],
            "product_id": products["product_id"].to_numpy()[rng.integers(0, n_products, n_items)],
            "quantity": rng.integers(1, 3, n_items),
            "unit_price": rng.gamma(2.0, 20.0, n_items).round(2),
        }
    ).drop_duplicates(["order_id", "product_id"])
    n_events = members * 12
    e_member = rng.integers(0, members, n_events)
    e_time = np.minimum(
        np.maximum(joined[e_member], end - year) + rng.integers(0, year, n_events), end
    )
    events = pd.DataFrame(
        {
            "member_id": ids[e_member],
            "occurred_at": pd.to_datetime(e_time, utc=True),
            "event_type": rng.choice(list(EVENT_TYPES), n_events),
            "product_id": None,
            "value": np.nan,
        }
    )
    members_df = pd.DataFrame(
        {
            "member_id": ids,
            "joined_at": pd.to_datetime(joined, utc=True),
            "birth_date": pd.NaT,
            "region": rng.choice(["north", "south", "east", "west"], members),
            "gender": None,
            "acquisition_channel": rng.choice(["ads", "organic"], members),
        }
    )
    return Dataset(
        members=members_df,
        orders=orders,
        order_items=items,
        products=products,
        events=events,
        name=f"synthetic-{members}",
    )


def bench_pipeline(ds, label: str, rows: list[dict], per_family: bool = True) -> pd.DataFrame:
    from loyalty_ml.features.pipeline import FAMILIES, build_member_features

    t_as_of = ds.latest_timestamp()
    started = time.perf_counter()
    frame = build_member_features(ds, t_as_of)
    total = time.perf_counter() - started
    per = {}
    for fam in FAMILIES if per_family else ():
        if any(c.startswith(f"{fam}__") for c in frame.columns):
            t0 = time.perf_counter()
            build_member_features(ds, t_as_of, families=[fam])
            per[fam] = round(time.perf_counter() - t0, 2)
    _append(
        rows,
        {
            "case": f"pipeline {label}",
            "members": len(frame),
            "features": frame.shape[1] - 2,
            "seconds": round(total, 2),
            "per_family_s": str(per),
            "peak_rss_mb": round(peak_rss_mb()),
        },
    )
    print(rows[-1], flush=True)
    return frame


def tile_tables(frame: pd.DataFrame, n: int, home: Path) -> None:
    """Feature tables for ``n`` members: the real rows repeated under new member ids."""
    from loyalty_ml.features.pipeline import FAMILY_ORDER
    from loyalty_ml.features.tables import (
        Manifest,
        _describe,
        _write,
        manifest_path,
        split_families,
        table_file,
        to_offline_frame,
        write_training_tables,
    )

    reps = -(-n // len(frame))
    big = frame.iloc[np.tile(np.arange(len(frame)), reps)[:n]].reset_index(drop=True)
    big["member_id"] = np.array([f"b{i:07d}" for i in range(n)], dtype=object)
    big = to_offline_frame(big)
    families = [f for f in FAMILY_ORDER if any(c.startswith(f"{f}__") for c in big.columns)]
    manifest = Manifest(dataset=f"tiled-{n}")
    parts = split_families(big, families)
    for fam, part in parts.items():
        path = table_file(fam, home)
        _write(part, path)
        manifest.tables[fam] = _describe(part, "member", path, "member_id")
    write_training_tables(manifest, parts, home)
    manifest_path(home).write_text(manifest.to_json())


def main(argv: list[str]) -> None:
    args = _parse(argv)
    skip = set(filter(None, args.skip.split(",")))
    rows: list[dict] = []
    home = Path(tempfile.mkdtemp(prefix="bench_features_"))
    os.environ["LOYALTY_HOME"] = str(home)
    os.environ["LOYALTY_FEAST_PROJECT"] = "bench" + uuid.uuid4().hex[:8]
    from loyalty_ml.settings import reset_settings_cache

    reset_settings_cache()
    ds = simulated(args.members)
    frame = (
        bench_pipeline(ds, f"simulated {args.members}", rows) if "pipeline" not in skip else None
    )
    if "pipeline_big" not in skip:
        big = synthetic_raw(args.big)
        # Per-family timings only for the small shop: at 1M each re-run costs minutes here.
        bench_pipeline(big, f"synthetic {args.big}", rows, per_family=False)
        del big
        gc.collect()
    if frame is None:
        from loyalty_ml.features.pipeline import build_member_features

        frame = build_member_features(ds, ds.latest_timestamp())
    as_of = frame["event_timestamp"].iloc[0]
    tile_tables(frame, args.big, home)
    del frame
    gc.collect()
    from loyalty_ml.features.materialize import materialize
    from loyalty_ml.features.online import OnlineFeatureReader, freeze_gc
    from loyalty_ml.features.store import apply_repo, teardown_project

    for profile in args.profiles.split(","):
        os.environ["LOYALTY_PROFILE"] = profile
        reset_settings_cache()
        applied = apply_repo()
        try:
            if "training" not in skip:
                ent = pd.DataFrame({"member_id": [f"b{i:07d}" for i in range(args.big)]})
                ent["event_timestamp"] = pd.Series([as_of] * args.big).astype("datetime64[us, UTC]")
                labels = pd.DataFrame(
                    {"member_id": ent["member_id"], "churned": np.arange(args.big) % 7 == 0}
                )
                from loyalty_ml.features.training import historical_frame, join_labels

                # Feast's per-family join of the feature service vs the service's training view,
                # alternating; the first call in the process also pays Feast's lazy imports (the
                # ibis DuckDB backend etc.), as the CLI does.
                for call, family_views in [
                    ("first call, family views", True),
                    ("training view", False),
                    ("family views", True),
                    ("training view", False),
                ]:
                    gc.collect()
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    out = historical_frame(applied, "churn_v1", ent, family_views=family_views)
                    t_hist = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    joined = join_labels(out, labels)
                    t_join = time.perf_counter() - t1
                    cpu = time.process_time() - cpu0
                    t1 = time.perf_counter()
                    merged = out.merge(labels, on="member_id", how="left")  # the earlier join
                    t_merge = time.perf_counter() - t1
                    assert joined["churned"].equals(merged["churned"])
                    _append(
                        rows,
                        {
                            "case": f"training set churn_v1 ({call}) + join_labels",
                            "members": len(joined),
                            "features": joined.shape[1] - 3,
                            "seconds": round(t_hist + t_join, 2),
                            "per_family_s": f"historical {t_hist:.2f} s, join_labels "
                            f"{t_join:.2f} s (pandas merge {t_merge:.2f} s), CPU {cpu:.1f} s",
                            "peak_rss_mb": round(peak_rss_mb()),
                        },
                    )
                    print(rows[-1], flush=True)
                    del out, joined, merged
            if "materialize" not in skip:
                rep = materialize(applied, as_of, engine="fast")
                _append(
                    rows,
                    {
                        "case": f"materialize fast -> {rep.online_store}",
                        "members": rep.rows["member_rfm"],
                        "features": "",
                        "seconds": round(rep.seconds, 1),
                        "per_family_s": "",
                        "peak_rss_mb": round(peak_rss_mb()),
                    },
                )
                print(rows[-1], flush=True)
            if "online" not in skip:
                backends = (
                    ["feast", "redis", "memory"] if profile == "production" else ["feast", "memory"]
                )
                rng = np.random.default_rng(1)
                for backend in backends:
                    reader = OnlineFeatureReader("churn_v1", backend=backend, applied=applied)
                    freeze_gc()
                    for k in (1, 100):
                        picks = [
                            [f"b{i:07d}" for i in rng.integers(0, args.big, k)] for _ in range(64)
                        ]
                        it = iter(range(10**9))
                        samples = repeat_latency(
                            lambda r=reader, p=picks, i=it: r.get(p[next(i) % 64]),
                            n=args.reads,
                            warmup=100,
                        )
                        pc = percentiles(samples, (50, 99))
                        _append(
                            rows,
                            {
                                "case": f"online {profile} {backend} x{k}",
                                "members": k,
                                "features": len(reader.feature_names),
                                "seconds": "",
                                "per_family_s": f"p50 {pc['p50']:.3f} ms, p99 {pc['p99']:.3f} ms, max {max(samples):.1f} ms",
                                "peak_rss_mb": round(peak_rss_mb()),
                            },
                        )
                        print(rows[-1], flush=True)
                    gc.unfreeze()
            if "feast_default" not in skip and args.feast_default:
                # Feast's own path on a subset (1M would take minutes of shared CPU).
                sub = Path(tempfile.mkdtemp(prefix="bench_features_sub_"))
                os.environ["LOYALTY_HOME"] = str(sub)
                os.environ["LOYALTY_FEAST_PROJECT"] = "benchsub" + uuid.uuid4().hex[:6]
                reset_settings_cache()
                from loyalty_ml.features.tables import read_manifest

                man = read_manifest(home)
                for fam, t in man.tables.items():
                    part = pd.read_parquet(t.path).iloc[: args.feast_default]
                    from loyalty_ml.features.tables import (
                        _describe,
                        _write,
                        manifest_path,
                        table_file,
                    )

                    p = table_file(fam, sub)
                    _write(part, p)
                    man.tables[fam] = _describe(part, "member", p, "member_id")
                manifest_path(sub).parent.mkdir(parents=True, exist_ok=True)
                manifest_path(sub).write_text(man.to_json())
                sub_applied = apply_repo()
                for engine in ("feast", "fast"):
                    rep = materialize(sub_applied, as_of, engine=engine)
                    _append(
                        rows,
                        {
                            "case": f"materialize {engine} -> {rep.online_store}",
                            "members": rep.rows["member_rfm"],
                            "features": "",
                            "seconds": round(rep.seconds, 1),
                            "per_family_s": "",
                            "peak_rss_mb": round(peak_rss_mb()),
                        },
                    )
                    print(rows[-1], flush=True)
                teardown_project()
                os.environ["LOYALTY_HOME"] = str(home)
                os.environ["LOYALTY_FEAST_PROJECT"] = applied.store.project
                reset_settings_cache()
        finally:
            if profile == "production":
                teardown_project(project=applied.store.project)
    print(markdown_table(rows))
    save("features", {"rows": rows, "args": vars(args)})
