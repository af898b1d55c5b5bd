"""Benchmark: storage projection of a large send plan (target: 10,000 programmes x 24 months < 1 s).

Measures ``ierkit.storage.project_storage`` (programmes x months cross join, summed per month)
and the full ``storage_outlook`` (projection, keep-everything projection and 8 retention
candidates), each the best of a few runs after a warm-up, in a fresh subprocess so peak memory
is the projection's own.

Run: ``flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/projection.py``
Writes ``benchmarks/results/projection.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PROGRAMMES = 10_000
MONTHS = 24
REPEATS = 5
RESULT = Path(__file__).parent / "results" / "projection.json"


def _plan(n: int):
    import polars as pl

    index = pl.col("i")
    return pl.DataFrame({"i": pl.int_range(0, n, eager=True)}).select(
        programme=pl.format("Programme {}", index),
        list_size=(index % 997 + 1) * 50.0,
        sends_per_month=(index % 8 + 1).cast(pl.Float64),
        tracked=index % 10 != 0,
        links_per_recipient=(index % 5) * 0.02,
        retention_days=pl.when(index % 7 == 0).then(90.0).otherwise(None),
        tracking_mb_now=(index % 13) * 10.0,
    )


def _measure() -> dict:
    """Runs in the child process: time the projection and the outlook."""
    from ierkit import storage

    plan = _plan(PROGRAMMES).lazy()
    start = dt.date(2026, 11, 20)
    options = storage.ProjectionOptions(months=MONTHS)
    org = dict(start=start, used_mb=50_000.0, allocation_mb=1_000_000.0)

    def best(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    projection_s = best(lambda: storage.project_storage(plan, options=options, **org).collect())
    by_programme_rows = (
        storage.project_by_programme(plan, start=start, options=options)
        .select("month")
        .collect()
        .height
    )
    outlook_s = best(lambda: storage.storage_outlook(plan, options=options, **org))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "programmes": PROGRAMMES,
        "months": MONTHS,
        "rows_projected": by_programme_rows,
        "retention_candidates": len(storage.DEFAULT_RETENTION_CANDIDATES),
        "project_storage_seconds": round(projection_s, 4),
        "storage_outlook_seconds": round(outlook_s, 4),
        "peak_memory_mb": round(peak_kb / 1024, 1),
        "repeats": REPEATS,
        "statistic": "best of repeats after one warm-up",
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_measure()))
        return
    root = Path(__file__).resolve().parent.parent
    child = subprocess.run(
        [sys.executable, __file__, "--child"],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    )
    import polars as pl

    result = json.loads(child.stdout)
    result.update(
        cpu_count=os.cpu_count(),
        polars=pl.__version__,
        python=sys.version.split()[0],
        target_seconds=1.0,
        meets_target=result["storage_outlook_seconds"] < 1.0,
        measured_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
