"""The one table ``make bench`` ends with: every benchmark's ratios against their targets.

Each benchmark adds its lines to the JSON-lines file named by ``NIGHTSHIFT_BENCH_SUMMARY`` (see
``_harness.record``); this script prints them as one Markdown table, with the date and the
machine, and exits 1 when a benchmark recorded nothing (it failed before its report, or was not
run). A missed target does not fail it: the benchmarks measure, they do not test.

Run: ``.venv/bin/python bench/summary.py <summary.jsonl> <benchmark> ...``
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path


def machine() -> str:
    """Cores, memory and CPU model, as the README's tables name the machine."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")))
        memory = f"{kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        memory = "? GiB"
    return f"{os.cpu_count()} cores, {memory}, {cpu}, Python {platform.python_version()}"


def table(lines: list[dict]) -> str:
    """The summary rows as a Markdown table."""
    rows = ["| benchmark | measure | value | target | verdict |", "|---|---|---|---|---|"]
    for line in lines:
        verdict = {True: "met", False: "**missed**", None: "(no target)"}[line["met"]]
        rows.append(f"| {line['benchmark']} | {line['measure']} | {line['value']} | {line['target']} | {verdict} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    path, expected = Path(argv[0]), argv[1:]
    lines = [json.loads(text) for text in path.read_text().splitlines() if text.strip()] if path.exists() else []
    print(f"\n## make bench summary ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()})\n")
    print(table(lines))
    missing = [name for name in expected if not any(line["benchmark"] == name for line in lines)]
    met = [line["met"] for line in lines if line["met"] is not None]
    print(f"\n{met.count(True)} of {len(met)} targets met")
    if missing:
        print(f"no result from {', '.join(missing)}: see its output above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
