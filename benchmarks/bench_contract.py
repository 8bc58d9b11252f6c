"""Contract validation at scale: load_dataset vs validate_dir vs load_valid_dataset.

    python -m benchmarks contract [--quick] [--members N] [--orders-per-member K] [--format F]

Writes a synthetic, valid members + orders directory (plus a few planted problems when
``--plant``) to a temporary folder, then times each step once per repeat (median reported).
CPU time is reported next to wall time because the shared development machine is contended:
CPU seconds say what the code costs, wall seconds what a user waited that day.
Pass options as ``--members=N`` (the runner treats bare words as benchmark names).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import machine, markdown_table, peak_rss_mb, save


def make_tables(members: int, per_member: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01", tz="UTC")
    member_ids = np.char.add("m", np.arange(members).astype(str)).astype(object)
    joined = start + pd.to_timedelta(rng.integers(0, 365, members), unit="D")
    n_orders = members * per_member
    owner = rng.integers(0, members, n_orders)
    ordered = joined[owner] + pd.to_timedelta(rng.integers(0, 365 * 24, n_orders), unit="h")
    return {
        "members": pd.DataFrame(
            {
                "member_id": member_ids,
                "joined_at": joined,
                "region": rng.choice(["north", "south", "east", "west"], members),
            }
        ),
        "orders": pd.DataFrame(
            {
                "order_id": np.char.add("o", np.arange(n_orders).astype(str)).astype(object),
                "member_id": member_ids[owner],
                "ordered_at": ordered,
                "amount": rng.gamma(2.0, 30.0, n_orders).round(2),
                "status": rng.choice(["completed", "returned", "cancelled"], n_orders),
            }
        ),
    }


def plant_problems(tables: dict[str, pd.DataFrame]) -> None:
    """A handful of bad rows so the measured path includes reporting, not just clean checks."""
    orders = tables["orders"]
    orders.loc[orders.index[:10], "amount"] = -1.0
    orders.loc[orders.index[10:15], "member_id"] = "ghost"
    orders.loc[orders.index[20], "order_id"] = orders.loc[orders.index[21], "order_id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks contract")
    parser.add_argument("--quick", action="store_true", help="100k members x 10 orders, 1 repeat")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders-per-member", type=int, default=10)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plant", action="store_true", help="plant a few problems")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.repeats = 100_000, 1

    from loyalty_ml.contract.io import load_dataset
    from loyalty_ml.contract.validate import load_valid_dataset, validate_dir

    tables = make_tables(args.members, args.orders_per_member)
    if args.plant:
        plant_problems(tables)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        started = time.perf_counter()
        for name, frame in tables.items():
            if args.format == "csv":
                frame.to_csv(data / f"{name}.csv", index=False)
            else:
                frame.to_parquet(data / f"{name}.parquet", index=False)
        write_s = time.perf_counter() - started
        n_members, n_orders = len(tables["members"]), len(tables["orders"])
        del tables

        steps = {
            "load_dataset (no checks)": lambda: load_dataset(data),
            "validate_dir": lambda: validate_dir(data),
        }
        if not args.plant:
            steps["load_valid_dataset"] = lambda: load_valid_dataset(data)
        problems = 0
        for label, step in steps.items():
            times, cpu = [], []
            for _ in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                result = step()
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                if label == "validate_dir":
                    problems = len(result.problems)  # type: ignore[attr-defined]
                del result
            rows.append(
                {
                    "step": label,
                    "members": n_members,
                    "orders": n_orders,
                    "format": args.format,
                    "median_wall_s": statistics.median(times),
                    "median_cpu_s": statistics.median(cpu),
                    "cpu_us_per_order": statistics.median(cpu) / n_orders * 1e6,
                }
            )
    payload = {
        "rows": rows,
        "write_s": write_s,
        "problem_kinds_found": problems,
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine(),
    }
    print(markdown_table(rows))
    print(f"problem kinds found: {problems}; peak RSS {payload['peak_rss_mb']:.0f} MB")
    save("contract", payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
