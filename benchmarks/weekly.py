"""Benchmark: the weekly run on the default demo org (target: under a minute).

Measures, on the cached default demo (generated first if missing, not timed):

- papermill's kernel start-up alone: an empty notebook with a parameters cell, run the same way;
- each report notebook of the weekly run, as the run reports it;
- the whole ``run_weekly`` (notebooks, HTML, per-owner worklists and messages).

Peak memory is the largest resident set of this process and of the kernels it started
(``ru_maxrss`` of self and children). Run it on a quiet machine:

    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/weekly.py

Writes benchmarks/results/weekly.json.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import nbformat

from ierkit import demo, weekly

RESULTS = Path(__file__).parent / "results" / "weekly.json"


def kernel_startup_seconds(folder: Path, runs: int = 3) -> list[float]:
    """Seconds papermill takes for a notebook that does nothing: the kernel's fixed cost."""
    book = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('source = "demo"')
    cell.metadata["tags"] = ["parameters"]
    book.cells = [cell, nbformat.v4.new_code_cell("pass")]
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / "empty.ipynb"
    nbformat.write(book, path)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        weekly.execute_notebook(path, folder / "empty-out.ipynb", {"source": "demo"})
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    demo_path = demo.ensure_demo()
    with tempfile.TemporaryDirectory(prefix="weekly-bench-") as tmp:
        folder = Path(tmp)
        startup = kernel_startup_seconds(folder)
        started = time.perf_counter()
        result = weekly.run_weekly(
            source=str(demo_path),
            as_of=demo.DEMO_AS_OF,
            out_root=folder / "out",
            progress=lambda line: print(line, flush=True),
        )
        total = time.perf_counter() - started
    kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    iers = json.loads((demo_path / "demo.json").read_text())["counts"]["individual_email_results"]
    record = {
        "what": "ierkit weekly on the default demo org",
        "rows": {"individual_email_results": iers},
        "kernel_startup_seconds": [round(s, 2) for s in startup],
        "notebook_seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "total_seconds": round(total, 2),
        "target_seconds": 60,
        "met": total < 60,
        "owners": len(result.worklists) // 2,
        "peak_memory_mib": round(kib / 1024, 1),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
