"""Benchmark: where ``ierkit aggregate`` spends its time, phase by phase (issue 17).

Run on demand (not by pytest), after ``benchmarks/aggregate.py`` has prepared the sizes' data:

    flock /tmp/ierkit-bench.lock nice .venv/bin/python benchmarks/aggregate_phases.py \\
        --sizes 1Mx10 1Mx1000 demo

Each size's Tracking Extract zip is aggregated into a new output folder, in one fresh process
per run, timing the phases as ``ierkit aggregate`` runs them:

- ``land``: unzip, parse and stage every tracking file, then merge into the event store
  (``ierkit.store.land_events``);
- ``tables``: roll the changed sends' events up into IERs and link details
  (``ierkit.aggregate.aggregate_store``);
- ``signal``: classify the recipients' opens and clicks (``ierkit.signal.write_engagement_signal``).

Wall and CPU seconds per phase (the best run of ``--repeat`` by total wall time), the events,
the folders the store ends with (a folder per send, or a pack of small sends), the process's peak
memory and the core count go to ``benchmarks/results/aggregate_phases.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "aggregate_phases.json"
DATA = Path(tempfile.gettempdir()) / "ierkit-bench-aggregate"
T = TypeVar("T")


def _phases(zip_path: Path) -> dict[str, object]:
    """One run in this process: seconds per phase, events, folders and peak memory."""
    from ierkit import aggregate, store
    from ierkit.signal import write_engagement_signal

    timings: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ierkit-phases-") as folder:
        out = Path(folder) / "out"
        event_store = out / "event_store"

        def timed(name: str, step: Callable[[], T]) -> T:
            wall, cpu = time.perf_counter(), time.process_time()
            result = step()
            timings[name] = {
                "seconds": round(time.perf_counter() - wall, 3),
                "cpu_seconds": round(time.process_time() - cpu, 3),
            }
            return result

        landed = timed("land", lambda: store.land_events([zip_path], event_store))
        job_ids = landed.job_ids
        timed("tables", lambda: aggregate.aggregate_store(event_store, out, job_ids=job_ids))
        timed("signal", lambda: write_engagement_signal(event_store, out))
        folders = store.stored_folders(store.events_dir(event_store))
    return {
        "events": landed.events_read,
        "sends": len(job_ids),
        "folders": len(folders),
        "packs": sum(folder.packed for folder in folders),
        "phases": timings,
        "seconds": round(sum(t["seconds"] for t in timings.values()), 3),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1Mx10", "1Mx1000", "demo"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_phases(args.child)))
        return
    report: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "command": "flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/aggregate_phases.py "
        + " ".join(sys.argv[1:]),
        "runs": {},
    }
    runs: dict[str, dict[str, object]] = {}
    for size in args.sizes:
        zip_path = args.data / size / "tracking_extract.zip"
        if not zip_path.is_file():
            sys.exit(f"{zip_path}: missing; run benchmarks/aggregate.py --sizes {size} first")
        results = []
        for _ in range(args.repeat):
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(zip_path)],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        best = min(results, key=lambda result: float(result["seconds"]))
        runs[size] = best
        phases = best["phases"]
        print(
            f"{size:8s} {best['events']:>11,} events {best['sends']:>5} sends "
            f"{best['folders']:>4} folders ({best['packs']} packs)  "
            + "  ".join(
                f"{name} {t['seconds']:.2f} s / {t['cpu_seconds']:.2f} cpu"
                for name, t in phases.items()
            )
            + f"  peak {best['peak_rss_mib']:,} MiB",
            flush=True,
        )
    report["runs"] = runs
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
