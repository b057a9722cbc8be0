"""The operator under tracemalloc: where the memory of an RSS peak was allocated.

Each time the process's RSS grows past its last report by `STEP_MB`, the Python allocations
that grew most since the operator started are appended to a report, grouped by where they
were made. Memory that RSS holds and these do not is outside Python's objects (C libraries'
buffers, the heap's free space). Tracing slows the operator and adds its own memory, so a
traced run shows where memory goes, not how much a normal run takes.

    .venv/bin/python bench/traced_operator.py REPORT run [operator arguments]
    # operator_bench.py --trace-memory REPORT runs the operator this way
"""

from __future__ import annotations

import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

FRAMES = 12  # enough to reach the operator's or Kopf's frame under the libraries'
STEP_MB = 20
INTERVAL_S = 1.0
TOP = 15


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def report(out: Path) -> None:
    baseline = tracemalloc.take_snapshot()
    started = time.monotonic()
    reported = rss_mb()
    while True:
        time.sleep(INTERVAL_S)  # a sampler's pace, not a wait for a condition
        rss = rss_mb()
        if rss < reported + STEP_MB:
            continue
        reported = rss
        snapshot = tracemalloc.take_snapshot()
        traced, traced_peak = tracemalloc.get_traced_memory()
        lines = [
            f"=== {time.monotonic() - started:.0f} s: RSS {rss:.0f} MB, traced "
            f"{traced / 2**20:.0f} MB (peak {traced_peak / 2**20:.0f} MB)"
        ]
        for stat in snapshot.compare_to(baseline, "traceback")[:TOP]:
            lines.append(f"+{stat.size_diff / 2**20:.1f} MB in +{stat.count_diff} blocks")
            lines.extend(f"    {line}" for line in stat.traceback.format(most_recent_first=True))
        with out.open("a") as file:
            file.write("\n".join(lines) + "\n\n")


def main() -> None:
    out = Path(sys.argv[1])
    out.write_text("")
    tracemalloc.start(FRAMES)
    threading.Thread(target=report, args=(out,), name="tracemalloc", daemon=True).start()
    sys.argv = ["pinpoint_export_operator", *sys.argv[2:]]
    runpy.run_module("pinpoint_export_operator", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
