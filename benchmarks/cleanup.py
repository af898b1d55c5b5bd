"""Benchmark: archive throughput and peak memory of a cleanup run (ierkit.cleanup).

Run on demand (not by pytest), one heavy job at a time on the shared machine:

    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/cleanup.py

Data: the demo org at scale 50 (``ierkit.demo.generate``), generated into /tmp/ierkit-demo-50
when that folder does not exist yet, else reused; it is only read. For each target count of
IERs (1M, 3M, 10M by default) the cutoff is the first day by which that many IERs were sent, and
``archive_and_verify`` runs in its own subprocess (seconds and peak RSS of that process): plan,
archive of the IERs and of their link details and orphans to partitioned Parquet, manifest
(sha256 of every file and Id list), and verification (read-back hashes and per-month Id
checksums against the selection in the org). Nothing is deleted there (deletes on a local org
measure the local org's table rewrite, not the archive; ``--local-delete`` below times them).

Memory should stay flat as the count grows: the IERs stream from the org to the archive, link
details are matched by hashing the (far fewer) links, and files hold
about ``ierkit.archive.MAX_ROWS_PER_FILE`` rows, written one at a time.

``--local-delete`` measures a whole local cleanup instead, deletes included: ``run_cleanup``
with ``execute=True`` on a copy of the cached scale-1 demo (``--scale 50``: of the scale-50 demo
above), the demo's 90-day selection, in its own subprocess (seconds, seconds of the delete
steps, peak RSS). A local org rewrites a table per delete request, so this shows how many
requests a run makes. ``--label`` names the measurement in
benchmarks/results/cleanup_local_delete.json (runs with other labels or scales are kept, to
compare code before and after a change):

    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/cleanup.py --local-delete --label after
    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/cleanup.py --local-delete --scale 50
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
LOCAL_DELETE_RESULTS = ROOT / "benchmarks" / "results" / "cleanup_local_delete.json"
LOCAL_DELETE_RETENTION_DAYS = 90
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


def _step_seconds(ledger: Path) -> dict[str, float]:
    """Seconds of each step of a run's ledger, from its last start to its last end."""
    steps: dict[str, float] = {}
    starts: dict[str, dt.datetime] = {}
    for entry in map(json.loads, ledger.read_text().splitlines()):
        at = dt.datetime.fromisoformat(entry["at"])
        if entry["event"] == "start":
            starts[entry["step"]] = at
        elif entry["event"] == "done":
            steps[entry["step"]] = round((at - starts[entry["step"]]).total_seconds(), 2)
    return steps


def measure(org_dir: str, as_of: str, archive: str) -> None:
    """One measured run, in this process; prints a JSON line."""
    from ierkit.cleanup import archive_and_verify, cleanup_criteria

    criteria = cleanup_criteria(0, as_of=dt.date.fromisoformat(as_of))
    started = time.perf_counter()
    result = archive_and_verify(
        LocalOrg(org_dir), archive=archive, criteria=criteria, run_id="bench"
    )
    seconds = time.perf_counter() - started
    steps = _step_seconds(Path(result.ledger_path))
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


def _span_seconds(ledger: Path, prefixes: tuple[str, ...]) -> float:
    """Seconds from the first start to the last end of the steps named with ``prefixes`` (steps
    may overlap: a local org's delete steps are all open during its one request)."""
    times = [
        dt.datetime.fromisoformat(entry["at"])
        for entry in map(json.loads, ledger.read_text().splitlines())
        if entry["step"].startswith(prefixes)
    ]
    return round((max(times) - min(times)).total_seconds(), 2) if times else 0.0


def measure_local_delete(org_dir: str, archive: str) -> None:
    """One measured local cleanup with deletes, in this process; prints a JSON line."""
    from ierkit import demo
    from ierkit.cleanup import cleanup_criteria, run_cleanup

    org = LocalOrg(org_dir)
    before = org.record_counts(["individual_email_results", "individual_links"])
    criteria = cleanup_criteria(LOCAL_DELETE_RETENTION_DAYS, as_of=demo.DEMO_AS_OF)
    started = time.perf_counter()
    result = run_cleanup(org, archive=archive, criteria=criteria, run_id="bench", execute=True)
    seconds = time.perf_counter() - started
    after = org.record_counts(["individual_email_results", "individual_links"])
    steps = _step_seconds(Path(result.ledger_path))
    assert result.deleted is not None and result.failures is not None
    print(
        json.dumps(
            {
                "records_before": before,
                "deleted": dict(
                    zip(result.deleted["table"], result.deleted["deleted"], strict=True)
                ),
                "records_after": after,
                "failures": result.failures.height,
                "delete_steps": sum(1 for s in steps if s.startswith("delete:")),
                "seconds": round(seconds, 2),
                "delete_seconds": _span_seconds(Path(result.ledger_path), ("delete:", "retry:")),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            }
        )
    )


def local_delete(label: str, results: Path, *, scale: int) -> int:
    """Time a local cleanup with deletes on a copy of a demo; record it as ``label``.

    ``scale`` 1 copies the cached default demo, 50 the scale-50 demo in /tmp (``ensure_demo``).
    """
    from ierkit import demo

    source = demo.ensure_demo() if scale == 1 else ensure_demo()
    work = Path(f"/tmp/ierkit-bench-cleanup-local-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        shutil.copytree(source, work / "org")
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure-local-delete",
                str(work / "org"),
                str(work / "archive"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    run = {"label": label, "scale": scale, **json.loads(done.stdout.splitlines()[-1])}
    print(
        f"{label}: deleted {run['deleted']} in {run['seconds']} s (deletes "
        f"{run['delete_seconds']} s, {run['delete_steps']} ledger steps), peak "
        f"{run['peak_rss_mib']} MiB",
        flush=True,
    )
    recorded = json.loads(results.read_text()) if results.is_file() else {"runs": []}
    # Runs recorded before the scale was noted were on the scale-1 demo.
    runs = [r for r in recorded["runs"] if (r["label"], r.get("scale", 1)) != (label, scale)] + [
        run
    ]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(
        json.dumps(
            {
                "benchmark": "cleanup --local-delete",
                "measured": "run_cleanup(execute=True) on a copy of the demo at each run's scale, "
                f"retention {LOCAL_DELETE_RETENTION_DAYS} days as of the demo's day",
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "polars": pl.__version__,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {results}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--local-delete",
        action="store_true",
        help="time a local cleanup with deletes on the scale-1 demo instead",
    )
    parser.add_argument("--label", default="current", help="name of the --local-delete run")
    parser.add_argument(
        "--scale",
        type=int,
        choices=(1, DEMO_SCALE),
        default=1,
        help="demo scale of the --local-delete run (default 1; 50 uses /tmp/ierkit-demo-50)",
    )
    parser.add_argument(
        "--results", type=Path, default=LOCAL_DELETE_RESULTS, help="--local-delete results file"
    )
    parser.add_argument(
        "--measure", nargs=3, metavar=("ORG", "AS_OF", "ARCHIVE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--measure-local-delete", nargs=2, metavar=("ORG", "ARCHIVE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return 0
    if args.measure_local_delete:
        measure_local_delete(*args.measure_local_delete)
        return 0
    if args.local_delete:
        return local_delete(args.label, args.results, scale=args.scale)
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
