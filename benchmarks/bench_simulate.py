"""Simulator throughput: ``python -m benchmarks simulate [--members=20000,1000000] [--days=365]``.

Each size runs ``loyalty_ml.simulate.generate`` in a fresh child process, so its peak RSS is its
own; outputs go to a temporary directory (``--keep=DIR`` keeps them). Prints a markdown table and
writes ``bench-results/simulate.json``.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, markdown_table, save


def _child(members: int, days: int, out: str) -> None:
    from loyalty_ml.simulate import generate, load_config

    started = time.perf_counter()
    summary = generate(load_config(members=members, days=days), out)
    summary["wall_s"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary["peak_rss_mb"] = usage.ru_maxrss / 1024
    summary["cpu_s"] = usage.ru_utime + usage.ru_stime
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    summary["output_mb"] = size / 2**20
    print("RESULT " + json.dumps(summary, default=str), flush=True)


def _opt(argv: list[str], name: str, default: str) -> str:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return default


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--child":
        _child(int(argv[1]), int(argv[2]), argv[3])
        return
    sizes = [int(x) for x in _opt(argv, "members", "20000,1000000").split(",")]
    days = int(_opt(argv, "days", "365"))
    keep = _opt(argv, "keep", "")
    rows = []
    for members in sizes:
        out = Path(keep) / f"sim_{members}" if keep else Path(tempfile.mkdtemp(prefix="sim_"))
        cmd = [sys.executable, "-m", "benchmarks.bench_simulate", "--child", str(members)]
        proc = subprocess.run(
            [*cmd, str(days), str(out)], capture_output=True, text=True, check=False
        )
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stderr[-3000:])
            raise SystemExit(f"simulate {members} failed (exit {proc.returncode})")
        s = json.loads(line.removeprefix("RESULT "))
        rows.append(
            {
                "members": members,
                "days": days,
                "wall_s": s["wall_s"],
                "cpu_s": s["cpu_s"],
                "peak_rss_mb": s["peak_rss_mb"],
                "orders": s["rows"]["orders"],
                "order_items": s["rows"]["order_items"],
                "events": s["rows"]["events"],
                "offers": s["rows"]["offers"],
                "truth_churn": s["rows"]["truth/churn"],
                "truth_uplift": s["rows"]["truth/uplift"],
                "output_mb": s["output_mb"],
                "no_order_90d": s["no_order_last_90d"],
            }
        )
        print(markdown_table(rows[-1:]), flush=True)
    print(markdown_table(rows))
    path = save("simulate", {"machine": machine(), "rows": rows})
    print(f"saved {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
