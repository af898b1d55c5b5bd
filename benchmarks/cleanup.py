"""Benchmark: archive throughput and peak memory of a cleanup run (ierkit.cleanup).

Run on demand (not by pytest), one heavy job at a time on the shared machine:

    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/cleanup.py

Data: the demo org at scale 50 (``ierkit.demo.generate``), generated into /tmp/ierkit-demo-50
when that folder does not exist yet, else reused; it is only read. For each target count of
IERs (1M, 3M, 10M by default) the cutoff is the first day by which that many IERs were sent, and
``archive_and_verify`` runs in its own subprocess (seconds and peak RSS of that process): plan,
archive of the IERs and of their link details and orphans to partitioned Parquet, manifest
(sha256 of every file and Id list), and verification (read-back hashes and per-month Id
checksums against the selection in the org). Nothing is deleted: a local org rewrites its
whole table per delete request, which measures the local org, not the cleanup.

Memory should stay flat as the count grows: the IERs stream from the org to the archive, link
details are matched by hashing the (far fewer) links, and files hold
about ``ierkit.archive.MAX_ROWS_PER_FILE`` rows, written one at a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ierkit.orgs import LocalOrg  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cleanup.json"
DEMO = Path("/tmp/ierkit-demo-50")
DEMO_SCALE = 50
SIZES = {"1M": 1_000_000, "3M": 3_000_000, "10M": 10_000_000}


def ensure_demo() -> Path:
    """The scale-50 demo org in /tmp, generated when missing."""
    if not (DEMO / "individual_email_results.parquet").is_file():
        from ierkit import demo

        started = time.perf_counter()
        print(demo.generate(DEMO, scale=DEMO_SCALE))
        print(f"generated in {time.perf_counter() - started:.0f} s")
    return DEMO


def cutoff_day(org: LocalOrg, target: int) -> tuple[dt.date, int]:
    """The first day by whose midnight at least ``target`` IERs were sent, and their count."""
    daily = (
        org.table("individual_email_results")
        .group_by(day=pl.col("date_sent").dt.date())
        .agg(n=pl.len())
        .sort("day")
        .with_columns(cumulative=pl.col("n").cum_sum())
        .collect()
    )
    reached = daily.filter(pl.col("cumulative") >= target)
    if reached.is_empty():
        raise SystemExit(f"the demo has only {daily['cumulative'].max():,} IERs, not {target:,}")
    row = reached.row(0, named=True)
    return row["day"] + dt.timedelta(days=1), int(row["cumulative"])


def measure(org_dir: str, as_of: str, archive: str) -> None:
    """One measured run, in this process; prints a JSON line."""
    from ierkit.cleanup import archive_and_verify, cleanup_criteria

    criteria = cleanup_criteria(0, as_of=dt.date.fromisoformat(as_of))
    started = time.perf_counter()
    result = archive_and_verify(
        LocalOrg(org_dir), archive=archive, criteria=criteria, run_id="bench"
    )
    seconds = time.perf_counter() - started
    steps = {}
    starts = {}
    for entry in map(json.loads, Path(result.ledger_path).read_text().splitlines()):
        at = dt.datetime.fromisoformat(entry["at"])
        if entry["event"] == "start":
            starts[entry["step"]] = at
        elif entry["event"] == "done":
            steps[entry["step"]] = round((at - starts[entry["step"]]).total_seconds(), 2)
    records = result.plan.records
    files = sum(len(t["files"]) for t in result.manifest["tables"].values())
    print(
        json.dumps(
            {
                "iers": records["individual_email_results"],
                "links": records["individual_links"],
                "files": files,
                "verified": bool(result.verification["ok"].all()),
                "seconds": round(seconds, 2),
                "step_seconds": steps,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--measure", nargs=3, metavar=("ORG", "AS_OF", "ARCHIVE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return 0
    org = LocalOrg(ensure_demo())
    total = org.table("individual_email_results").select(pl.len()).collect().item()
    runs = []
    for size in args.sizes:
        as_of, expected = cutoff_day(org, SIZES[size])
        archive = Path(f"/tmp/ierkit-bench-cleanup-{size}")
        shutil.rmtree(archive, ignore_errors=True)
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(org.path), as_of.isoformat(), str(archive)],
            capture_output=True,
            text=True,
            check=True,
        )
        run = {"size": size, "as_of": as_of.isoformat(), **json.loads(done.stdout.splitlines()[-1])}
        assert run["iers"] == expected, (run, expected)
        records = run["iers"] + run["links"]
        run["records_per_second"] = round(records / run["seconds"])
        run["archive_mib"] = round(
            sum(p.stat().st_size for p in archive.rglob("*.parquet")) / 2**20, 1
        )
        print(
            f"{size}: {run['iers']:,} IERs + {run['links']:,} links in {run['seconds']} s "
            f"({run['records_per_second']:,} records/s), peak {run['peak_rss_mib']} MiB, "
            f"{run['files']} files, {run['archive_mib']} MiB, verified={run['verified']}",
            flush=True,
        )
        runs.append(run)
        shutil.rmtree(archive, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "cleanup",
                "measured": "archive_and_verify: plan, archive, manifest, verification",
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "polars": pl.__version__,
                "demo": {"path": str(DEMO), "scale": DEMO_SCALE, "iers": total},
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
