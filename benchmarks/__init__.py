"""Benchmarks: ``make bench`` (all) or ``python -m benchmarks NAME [...]``.

Each ``bench_<name>.py`` exposes ``main(argv: list[str]) -> None``; it prints a markdown table and
writes raw numbers to ``bench-results/<name>.json``. Results worth keeping are copied, with the
machine, the command and the date, into ``BENCHMARKS.md`` (sections drafted in ``results/``).
"""
