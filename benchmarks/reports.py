"""Benchmark: every report of ierkit.reports on the scale-50 demo org (tens of millions of IERs).

Target: all reports together (``ierkit.reports.all_reports``: engagement worklist, no-response
list and per-send counts, link interest, campaign/owner/segment summaries, programme trend,
click heat map) in under 10 seconds on this machine.

Run (heavy: take the shared lock so only one benchmark runs at a time):

    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/reports.py

The demo org is generated into ``--org`` (default /tmp/ierkit-demo-50) with
``ierkit.demo.generate`` when the folder does not exist, and reused when it does. The reports
run in a child process, so the peak memory recorded is theirs alone (not the generator's).
Results go to benchmarks/results/reports.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

RESULTS = Path(__file__).resolve().parent / "results" / "reports.json"
TARGET_SECONDS = 10.0


def measure(org_path: Path, as_of: dt.datetime, *, each: bool) -> dict[str, object]:
    """Run every report (``reports.all_reports``, collected together); this process's figures.

    With ``each``, every report is then also run and timed on its own (for finding the slow
    one; not part of the target).
    """
    from ierkit import reports
    from ierkit.orgs import LocalOrg

    org = LocalOrg(org_path)
    tables = reports.ReportTables.from_org(org)
    counts = org.record_counts(
        ["individual_email_results", "individual_links", "contacts", "leads", "tasks"]
    )
    started = time.perf_counter()
    collected = reports.all_reports(tables, as_of=as_of)
    total = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    rows = {name: frame.height for name, frame in collected.items()}
    for name, height in rows.items():
        print(f"  {name:25s} {height:>12,} rows", flush=True)
    print(f"  all_reports: {total:.2f} s", flush=True)
    separately = {}
    if each:
        single = {
            "engagement_worklist": lambda: reports.engagement_worklist(tables, as_of=as_of),
            "no_response": lambda: reports.no_response(tables, as_of=as_of),
            "no_response_by_send": lambda: reports.no_response_by_send(tables, as_of=as_of),
            "link_interest": lambda: reports.link_interest(
                tables, pattern="pricing", since=as_of - dt.timedelta(days=30), until=as_of
            ),
            "campaign_summary": lambda: reports.campaign_summary(tables, until=as_of),
            "owner_summary": lambda: reports.owner_summary(tables, until=as_of),
            "segment_summary": lambda: reports.segment_summary(tables, until=as_of),
            "programme_trend": lambda: reports.programme_trend(tables, until=as_of),
            "click_heatmap": lambda: reports.click_heatmap(tables, until=as_of),
        }
        for name, build in single.items():
            started = time.perf_counter()
            build().collect()
            separately[name] = round(time.perf_counter() - started, 3)
            print(f"  {name:25s} alone {separately[name]:6.2f} s", flush=True)
    return {
        "input_rows": counts,
        "report_rows": rows,
        "total_seconds": round(total, 3),
        "peak_memory_mb": round(peak_kb / 1024, 1),
        "seconds_each_alone": separately or None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", type=Path, default=Path("/tmp/ierkit-demo-50"))
    parser.add_argument("--scale", type=float, default=50.0)
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    parser.add_argument("--each", action="store_true", help="also time each report alone")
    parser.add_argument(
        "--as-of",
        type=dt.datetime.fromisoformat,
        default=None,
        help="the reports' now, ISO with zone (default: the demo's as-of instant)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.as_of is not None:
        as_of = args.as_of
    else:
        from ierkit import demo

        as_of = demo.as_of_instant(demo.DEMO_AS_OF)
    if args.child:
        print(json.dumps(measure(args.org, as_of, each=args.each)), flush=True)
        return 0

    generated_seconds = None
    if not args.org.exists():
        print(f"generating the scale-{args.scale:g} demo into {args.org} ...", flush=True)
        started = time.perf_counter()
        from ierkit import demo

        demo.generate(args.org, scale=args.scale)
        generated_seconds = round(time.perf_counter() - started, 1)
        print(f"  generated in {generated_seconds} s", flush=True)
    else:
        print(f"reusing the demo org in {args.org}", flush=True)

    # The machine is shared: record how busy it was, to read the timing against.
    load_before = round(os.getloadavg()[0], 2)
    print(f"reports as of {as_of.isoformat()} on {os.cpu_count()} CPUs (load {load_before}):")
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--org", str(args.org), "--as-of", as_of.isoformat()]
        + (["--each"] if args.each else []),
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = child.stdout.strip().splitlines()
    print("\n".join(lines[:-1]))
    figures = json.loads(lines[-1])
    result = {
        "benchmark": "reports",
        "command": "flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/reports.py",
        "org": str(args.org),
        "scale": args.scale,
        "as_of": as_of.isoformat(),
        **figures,
        "target_seconds": TARGET_SECONDS,
        "meets_target": figures["total_seconds"] < TARGET_SECONDS,
        "demo_generation_seconds": generated_seconds,
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": load_before,
        "polars": pl.__version__,
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
    }
    print(
        f"total {result['total_seconds']:.2f} s (target < {TARGET_SECONDS:g} s), "
        f"peak memory {result['peak_memory_mb']:,.0f} MB, "
        f"{figures['input_rows'].get('individual_email_results', 0):,} IERs"
    )
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
