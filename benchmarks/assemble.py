"""Rebuild ``BENCHMARKS.md`` from ``results/summary.md`` (machine, caveats, the summary table) and
each area's report in ``results/``, in pipeline order: ``python -m benchmarks.assemble``.

Area reports are written by their benchmarks (or by hand from a benchmark's output) with the
machine, the command and the date; this only stitches them, demoting each report's headings
one level so that every area is a ``##`` section of the one document.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = RESULTS.parent.parent / "BENCHMARKS.md"
ORDER = ["simulate", "contract", "policy", "features", "churn", "recs", "benefits", "serving"]
_FENCE = re.compile(r"^(```|~~~)")


def demote(text: str) -> str:
    """``# Title`` → ``## Title`` (and so on) when the report starts at level 1; code fences kept."""
    first = next((ln for ln in text.splitlines() if ln.startswith("#")), "")
    if not first.startswith("# "):
        return text
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        out.append("#" + line if not fenced and line.startswith("#") else line)
    return "\n".join(out) + "\n"


def assemble() -> str:
    parts = [(RESULTS / "summary.md").read_text(encoding="utf-8").rstrip() + "\n"]
    names = ORDER + sorted(
        p.stem for p in RESULTS.glob("*.md") if p.stem not in {*ORDER, "summary"}
    )
    for name in names:
        path = RESULTS / f"{name}.md"
        if path.exists():
            parts.append(demote(path.read_text(encoding="utf-8")).strip() + "\n")
    return "\n---\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    TARGET.write_text(assemble(), encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
