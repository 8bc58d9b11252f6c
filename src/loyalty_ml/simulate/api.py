"""Entry points: ``simulate`` (in memory) and ``generate`` (streamed to parquet), plus ``Truth``.

Both run the same blocks in the same order, so a data set written by ``generate`` equals the one
``simulate`` returns for the same configuration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loyalty_ml.contract.io import Dataset, coerce_table
from loyalty_ml.contract.schema import CONTROL_BENEFIT, TABLES
from loyalty_ml.simulate.calendar import Calendar, build_calendar
from loyalty_ml.simulate.catalogue import Catalogue, build_catalogue, products_frame
from loyalty_ml.simulate.config import TIERS, SimulatorConfig, load_config
from loyalty_ml.simulate.engine import Block, Context, campaign_days, simulate_block

Progress = Callable[[int, int], None]
TS = pa.timestamp("us", tz="UTC")
STR = pa.string()

SCHEMAS: dict[str, pa.Schema] = {
    "members": pa.schema(
        [
            ("member_id", STR),
            ("joined_at", TS),
            ("birth_date", pa.date32()),
            ("region", STR),
            ("gender", STR),
            ("acquisition_channel", STR),
            ("device", STR),
            ("email_opt_in", pa.int8()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", STR),
            ("member_id", STR),
            ("ordered_at", TS),
            ("amount", pa.float64()),
            ("discount", pa.float64()),
            ("status", STR),
            ("coupon_id", STR),
            ("channel", STR),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_id", STR),
            ("product_id", STR),
            ("quantity", pa.int64()),
            ("unit_price", pa.float64()),
        ]
    ),
    "events": pa.schema(
        [
            ("member_id", STR),
            ("occurred_at", TS),
            ("event_type", STR),
            ("product_id", STR),
            ("value", pa.float64()),
        ]
    ),
    "offers": pa.schema(
        [
            ("offer_id", STR),
            ("member_id", STR),
            ("offered_at", TS),
            ("benefit_id", STR),
            ("channel", STR),
            ("cost", pa.float64()),
            ("propensity", pa.float64()),
            ("converted", pa.int8()),
            ("revenue", pa.float64()),
        ]
    ),
}
TRUTH_SCHEMAS: dict[str, pa.Schema] = {
    "members": pa.schema(
        [
            ("member_id", STR),
            ("segment", STR),
            ("tier", STR),
            ("activity_per_year", pa.float64()),
            ("heavy", pa.float64()),
            ("items_per_order", pa.float64()),
            ("expected_basket", pa.float64()),
            ("margin_rate", pa.float64()),
            ("price_sensitivity", pa.float64()),
            ("service_sensitivity", pa.float64()),
            ("points_affinity", pa.float64()),
            ("novelty", pa.float64()),
            ("message_fatigue", pa.float64()),
            ("open_rate", pa.float64()),
            ("return_rate", pa.float64()),
            ("annual_onset_prob", pa.float64()),
            ("daily_hazard", pa.float64()),
            ("onset_at", TS),
            ("cause", STR),
            ("decline_kappa_days", pa.float64()),
            ("favourite_category", STR),
        ]
    ),
    "churn": pa.schema(
        [
            ("member_id", STR),
            ("as_of", TS),
            ("horizon_days", pa.int32()),
            ("p_churn", pa.float64()),
            ("cause", STR),
            ("days_since_onset", pa.int32()),
        ]
    ),
    "uplift": pa.schema(
        [
            ("offer_id", STR),
            ("member_id", STR),
            ("campaign_id", pa.int32()),
            ("offered_at", TS),
            ("benefit_id", STR),
            ("assigned", pa.bool_()),
            ("propensity", pa.float64()),
            ("base_conversion", pa.float64()),
            ("base_revenue", pa.float64()),
            ("conversion", pa.float64()),
            ("revenue", pa.float64()),
            ("uplift_conversion", pa.float64()),
            ("uplift_revenue", pa.float64()),
            ("cost", pa.float64()),
            ("uplift_profit", pa.float64()),
        ]
    ),
    "preferences": pa.schema([("member_id", STR), ("category", STR), ("affinity", pa.float64())]),
    "staples": pa.schema([("member_id", STR), ("product_id", STR), ("interval_days", pa.int32())]),
}


@dataclass
class Truth:
    """What a data scientist cannot see in real data (file schemas in docs/simulator.md)."""

    members: pd.DataFrame
    churn: pd.DataFrame
    uplift: pd.DataFrame
    preferences: pd.DataFrame
    staples: pd.DataFrame
    items: pd.DataFrame
    campaigns: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    FILES = ("members", "churn", "uplift", "preferences", "staples", "items", "campaigns")

    @classmethod
    def load(cls, truth_dir: Path | str) -> Truth:
        truth_dir = Path(truth_dir)
        frames = {name: pd.read_parquet(truth_dir / f"{name}.parquet") for name in cls.FILES}
        meta = json.loads((truth_dir / "meta.json").read_text())
        return cls(**frames, meta=meta)


def build_context(cfg: SimulatorConfig) -> Context:
    cal = build_calendar(cfg)
    return Context(
        cfg=cfg,
        cal=cal,
        catalogue=build_catalogue(cfg, cal),
        benefits=tuple(cfg.campaigns.benefits),
        campaign_days=campaign_days(cfg),
    )


def _blocks(ctx: Context) -> Iterator[tuple[int, Block]]:
    n_blocks = -(-ctx.cfg.members // ctx.cfg.block_size)
    for b in range(n_blocks):
        yield min(ctx.cfg.members, (b + 1) * ctx.cfg.block_size), simulate_block(ctx, b)


def items_frame(ctx: Context) -> pd.DataFrame:
    cat: Catalogue = ctx.catalogue
    cal: Calendar = ctx.cal
    return pd.DataFrame(
        {
            "product_id": cat.product_ids,
            "category": np.array(cat.categories, dtype=object)[cat.cat],
            "popularity": cat.pop,
            "successor_id": cat.product_ids[cat.successor],
            "complement_id": cat.product_ids[cat.complement],
            "consumable_interval_days": cat.cat_interval[cat.cat],
            "min_tier": np.array(TIERS, dtype=object)[cat.min_tier],
            "launched_at": cal.day_start(cat.launch_day),
        }
    )


def campaigns_frame(ctx: Context) -> pd.DataFrame:
    days = ctx.campaign_days
    return pd.DataFrame(
        {
            "campaign_id": np.arange(len(days), dtype=np.int32),
            "starts_at": ctx.cal.day_start(days),
            "window_days": np.int32(ctx.cfg.campaigns.window_days),
        }
    )


def _meta(ctx: Context) -> dict[str, Any]:
    ch = ctx.cfg.churn
    snaps = [
        str(ctx.cal.day_start(np.array([ctx.cal.days - k * ch.snapshot_every_days]))[0])
        for k in range(ch.n_snapshots)
        if ctx.cal.days - k * ch.snapshot_every_days > 0
    ]
    return {
        "config": ctx.cfg.model_dump(mode="json"),
        "start": str(ctx.cal.start),
        "end_exclusive": str(ctx.cal.end_exclusive),
        "snapshots": snaps,
        "benefits": list(ctx.benefits),
        "control_benefit": CONTROL_BENEFIT,
    }


class _Stats:
    """Running counts for the summary, accumulated block by block."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rows: dict[str, int] = {}
        self.eligible = 0
        self.quiet = 0
        self.p_sum = 0.0
        self.p_n = 0

    def add(self, block: Block) -> None:
        for name, frame in {
            **block.tables,
            **{f"truth/{k}": v for k, v in block.truth.items()},
        }.items():
            self.rows[name] = self.rows.get(name, 0) + len(frame)
        end = self.ctx.cal.end_exclusive
        cut = end - pd.Timedelta(days=90)
        m = block.tables["members"]
        o = block.tables["orders"]
        elig = m.loc[m["joined_at"] < cut, "member_id"]
        recent = o.loc[(o["status"] == "completed") & (o["ordered_at"] >= cut), "member_id"]
        self.eligible += len(elig)
        self.quiet += int((~elig.isin(recent)).sum())
        c = block.truth["churn"]
        if len(c):
            sel = c[(c["as_of"] == end) & (c["horizon_days"] == 90)]
            self.p_sum += float(sel["p_churn"].sum())
            self.p_n += len(sel)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "members": self.ctx.cfg.members,
            "days": self.ctx.cfg.days,
            "seed": self.ctx.cfg.seed,
            "start": str(self.ctx.cal.start.date()),
            "end": str(self.ctx.cfg.end_date),
            "rows": self.rows,
            "no_order_last_90d": self.quiet / max(self.eligible, 1),
            "mean_p_churn_next_90d": self.p_sum / max(self.p_n, 1),
            "seconds": round(seconds, 2),
        }


def simulate(
    config: SimulatorConfig | None = None, progress: Progress | None = None
) -> tuple[Dataset, Truth]:
    """The whole shop in memory (for tests and small demos: about 1 s per 10k members)."""
    cfg = config or load_config()
    ctx = build_context(cfg)
    started = time.perf_counter()
    stats = _Stats(ctx)
    tables: dict[str, list[pd.DataFrame]] = {}
    truth: dict[str, list[pd.DataFrame]] = {}
    for done, block in _blocks(ctx):
        stats.add(block)
        for k, v in block.tables.items():
            tables.setdefault(k, []).append(v)
        for k, v in block.truth.items():
            truth.setdefault(k, []).append(v)
        if progress is not None:
            progress(done, cfg.members)
    frames = {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}
    frames["products"] = products_frame(ctx.catalogue, ctx.cal, cfg)
    typed = {k: coerce_table(frames[k], TABLES[k]) for k in TABLES}
    dataset = Dataset(name=f"simulated-{cfg.seed}", **typed)
    meta = _meta(ctx)
    meta["summary"] = stats.summary(time.perf_counter() - started)
    frames_truth = {k: pd.concat(v, ignore_index=True) for k, v in truth.items()}
    for k, frame in frames_truth.items():
        if frame.columns.empty:  # e.g. no campaign fits a very short period
            frames_truth[k] = TRUTH_SCHEMAS[k].empty_table().to_pandas()
    result = Truth(
        **frames_truth,
        items=items_frame(ctx),
        campaigns=campaigns_frame(ctx),
        meta=meta,
    )
    return dataset, result


def _arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    frame = frame.copy()
    for f in schema:
        if f.type == pa.date32() and f.name in frame:
            frame[f.name] = frame[f.name].dt.tz_localize(None).dt.date
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def generate(
    config: SimulatorConfig | None = None,
    out_dir: Path | str = "data",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the six contract tables to ``out_dir`` and the ground truth to ``out_dir/truth``,
    block by block (memory stays bounded by the block size). Returns the summary."""
    cfg = config or load_config()
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ctx = build_context(cfg)
    stats = _Stats(ctx)
    writers: dict[str, pq.ParquetWriter] = {}

    def write(path: Path, frame: pd.DataFrame, schema: pa.Schema) -> None:
        key = str(path)
        if key not in writers:
            writers[key] = pq.ParquetWriter(path, schema, compression="snappy")
        if len(frame):
            writers[key].write_table(_arrow(frame, schema))

    try:
        for done, block in _blocks(ctx):
            stats.add(block)
            for name, frame in block.tables.items():
                write(out / f"{name}.parquet", frame, SCHEMAS[name])
            for name, frame in block.truth.items():
                write(out / "truth" / f"{name}.parquet", frame, TRUTH_SCHEMAS[name])
            del block
            if progress is not None:
                progress(done, cfg.members)
    finally:
        for w in writers.values():
            w.close()
    products_frame(ctx.catalogue, ctx.cal, cfg).to_parquet(out / "products.parquet", index=False)
    items_frame(ctx).to_parquet(out / "truth" / "items.parquet", index=False)
    campaigns_frame(ctx).to_parquet(out / "truth" / "campaigns.parquet", index=False)
    summary = stats.summary(time.perf_counter() - started)
    summary["rows"]["products"] = ctx.catalogue.n
    meta = _meta(ctx)
    meta["summary"] = summary
    (out / "truth" / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return summary
