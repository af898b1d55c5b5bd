"""Benchmark: demo org generation at scale 1 and scale 50 (target: scale 50 < 3 min, < 4 GiB).

Each measured generation runs in a fresh subprocess; its peak memory is the child's
``ru_maxrss``. Outputs go to a temporary folder (``--tmp``, default /tmp) and are deleted.
Run heavy benchmarks one at a time:

    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/demo_scale.py

Writes benchmarks/results/demo_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

RESULTS = Path(__file__).parent / "results" / "demo_scale.json"

_CHILD = """
import json, sys, time
from ierkit import demo
started = time.perf_counter()
summary = demo.generate(sys.argv[1], scale=float(sys.argv[2]))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "counts": summary.counts,
                  "extract_rows": summary.extract_rows, "planted": summary.planted}))
"""


def measure(scale: float, tmp_root: Path) -> dict[str, object]:
    """Generate one demo in a subprocess; return rows, seconds and peak memory."""
    folder = Path(tempfile.mkdtemp(prefix=f"demo-bench-{scale:g}-", dir=tmp_root))
    out = folder / "demo"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), str(scale)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(done.stdout.strip().splitlines()[-1])
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    shutil.rmtree(folder)
    iers = result["counts"]["individual_email_results"]
    extract_rows = sum(result["extract_rows"].values())
    rows = iers + extract_rows + result["counts"]["individual_links"]
    return {
        "scale": scale,
        "seconds": round(result["seconds"], 2),
        "wall_seconds_with_interpreter": round(wall, 2),
        "iers": iers,
        "links": result["counts"]["individual_links"],
        "tasks": result["counts"]["tasks"],
        "ground_truth_rows": result["counts"]["ground_truth"],
        "extract_rows": extract_rows,
        "extract_rows_per_file": result["extract_rows"],
        "ier_rows_per_second": round(iers / result["seconds"]),
        "rows_per_second": round(rows / result["seconds"]),
        # ru_maxrss is the largest child so far; scales run in increasing order.
        "peak_rss_mib": round(max(peak_kib, before) / 1024, 1),
        "output_bytes": sum(sizes.values()),
        "zip_bytes": sizes.get("tracking_extract.zip", 0),
        "planted": result["planted"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 50.0])
    parser.add_argument("--tmp", type=Path, default=Path("/tmp"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    runs = []
    for scale in sorted(args.scales):
        run = measure(scale, args.tmp)
        print(
            f"scale {scale:g}: {run['iers']:,} IERs, {run['links']:,} links, "
            f"{run['extract_rows']:,} extract rows in {run['seconds']} s "
            f"({run['rows_per_second']:,} rows/s), peak {run['peak_rss_mib']} MiB",
            flush=True,
        )
        runs.append(run)
    report = {
        "benchmark": "demo_scale",
        "target": "scale 50 including the extract zip: < 180 s and < 4 GiB peak",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "runs": runs,
    }
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
