"""Benchmark: the real write-back of N Contacts (and a few Leads) through the test server.

``ierkit.writeback.run_writeback(org, as_of=..., execute=True, ledger_dir=...)`` against
tests/sfserver.py over HTTPS on loopback, the server in its own process (its memory is not the
client's). The org holds N Contacts and N // 1,000 Leads, each person with one IER and every
fourth with a second one; every second IER was opened (two hours after sending, a human open),
every tenth (a fifth of the opened) clicked with one Individual Link Level Detail (three hours
after sending), so the summaries have values and every person's record changes. The runner
reads the org through Bulk API 2.0 query jobs (Contacts, Leads, IERs, link details), computes
the summary and the diff, and writes the changed records in ``org.write_batch_size`` update
jobs, with its ledger.

Recorded: the rows; seconds for read+plan (until the first update job: each Bulk pull, the
plan's summary and diff, the run's own), for the Contact writes and after them (the runner
diffs again before the Leads' job), and in all; Contact records written per second; the
client's peak memory (VmHWM) and its memory over time (a thread reads VmRSS from
/proc/self/status every 0.5 s), with RSS at 10% of the Contact writes against RSS at their end
(a flat write phase holds one chunk at a time); the cores and the load. Checks: the
server's write counter shows every person written exactly once, and a second run (a new
client, same server; ``--second-count`` runs it on a fresh server of that size instead) writes 0.

Jobs are polled every ``POLL_SECONDS`` at first (the server finishes a job on its second
poll): the figure is ierkit's own cost plus the server's, not Salesforce's queueing.

Run (heavy: take the shared lock):
    flock /tmp/ierkit-bench.lock nice .venv/bin/python benchmarks/salesforce_write.py
        [--count N] [--second-count M]   (appends to benchmarks/results/salesforce_write.json)
    .venv/bin/python benchmarks/salesforce_write.py --fast   (20,000 Contacts; prints only)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ierkit import ids, schema  # noqa: E402
from ierkit.orgs.salesforce import SalesforceOrg  # noqa: E402
from ierkit.writeback import SUMMARY_COLUMNS, run_writeback  # noqa: E402
from tests.sfserver import FakeSalesforce, LoopbackSession, serve  # noqa: E402

COUNT = 1_000_000
FAST_COUNT = 20_000
POLL_SECONDS = 0.1
SAMPLE_SECONDS = 0.5
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
AS_OF = dt.datetime(2026, 11, 20, 10, 30, tzinfo=dt.UTC)
RESULTS = ROOT / "benchmarks" / "results" / "salesforce_write.json"
ENV = {
    "SF_USERNAME": "integration@example.com",
    "SF_PASSWORD": "p",
    "SF_SECURITY_TOKEN": "t",
}


# --- the org -------------------------------------------------------------------------------


def _sfid(prefix: str, k: pl.Expr) -> pl.Expr:
    return ids.to_18_expr(pl.concat_str(pl.lit(prefix), k.cast(pl.String).str.zfill(12)))


def synthetic_org(n: int) -> dict[str, pl.DataFrame]:
    """``n`` Contacts, ``n // 1000`` Leads (at least one), their IERs and link details."""
    leads = max(1, n // 1000)
    people = n + leads

    def person(table: str, prefix: str, count: int) -> pl.DataFrame:
        frame = pl.select(i=pl.int_range(count, dtype=pl.Int64)).select(
            id=_sfid(prefix, pl.col("i")),
            first_name=pl.lit("Pat"),
            last_name=pl.format("Person {}", pl.col("i")),
            email=pl.format("pat{}@example.com", pl.col("i")),
            owner_id=pl.lit("005000000000001AAA"),
            created_date=pl.lit(T0),
            system_modstamp=pl.lit(T0),
        )
        return schema.validate(table, schema.conform(table, frame))

    # One IER per person (k < people), a second for every fourth person (k >= people).
    k = pl.int_range(people + (people + 3) // 4, dtype=pl.Int64)
    who = pl.when(pl.col("k") < people).then(pl.col("k")).otherwise((pl.col("k") - people) * 4)
    sent = pl.lit(T0) + pl.duration(minutes=pl.col("k") % 400_000)
    opened, clicked = pl.col("k") % 2 == 0, pl.col("k") % 10 == 0  # a fifth of the opens
    iers = (
        pl.select(k=k)
        .with_columns(who=who)
        .select(
            "k",
            id=_sfid("a0R", pl.col("k")),
            name=pl.format("Monthly Newsletter - {}", pl.col("k") % 50),
            contact_id=pl.when(pl.col("who") < n).then(_sfid("003", pl.col("who"))),
            lead_id=pl.when(pl.col("who") >= n).then(_sfid("00Q", pl.col("who") - n)),
            email_send_id=_sfid("a0S", pl.col("k") % 50),
            date_sent=sent,
            opened=opened,
            date_opened=pl.when(opened).then(sent + pl.duration(hours=2)),
            clicked=clicked,
            unique_clicks=clicked.cast(pl.Int32),
            total_clicks=clicked.cast(pl.Int32) * (1 + pl.col("k") % 3),
            tracking_as_of=sent + pl.duration(hours=4),
            created_date=sent,
            system_modstamp=sent,
        )
    )
    links = iers.filter(pl.col("clicked")).select(
        id=_sfid("a0L", pl.col("k")),
        name=pl.format("Pricing {}", pl.col("k") % 40),
        individual_email_result_id=pl.col("id"),
        link_name=pl.format("Pricing {}", pl.col("k") % 40),
        link_url=pl.format("https://example.com/pricing/{}", pl.col("k") % 40),
        last_clicked=pl.col("date_sent") + pl.duration(hours=3),
        total_clicks=pl.col("total_clicks"),
        unique_link_id=pl.format("u{}", pl.col("k") % 40),
        created_date=pl.col("date_sent") + pl.duration(hours=3),
        system_modstamp=pl.col("date_sent") + pl.duration(hours=3),
    )

    def canonical(table: str, frame: pl.DataFrame) -> pl.DataFrame:
        return schema.validate(table, schema.conform(table, frame))

    return {
        "contacts": person("contacts", "003", n),
        "leads": person("leads", "00Q", leads),
        "individual_email_results": canonical("individual_email_results", iers.drop("k")),
        "individual_links": canonical("individual_links", links),
        "tasks": schema.TASKS.empty(),
    }


# --- the server process ----------------------------------------------------------------------


def _kib(field: str) -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def serve_org(data: Path, work: Path) -> None:
    """Serve the tables in ``data`` until stdin closes, then print the write counter."""
    tables = {p.stem: pl.read_parquet(p) for p in sorted(data.glob("*.parquet"))}
    org = FakeSalesforce(tables, password="p", security_token="t")
    del tables
    with serve(org, work) as running:
        print(json.dumps({"base_url": running.base_url, "ca": str(running.ca_path)}), flush=True)
        sys.stdin.read()
    counts = list(org.writes.values())
    report = {
        "writes": sum(counts),
        "records": len(counts),
        "max_per_record": max(counts or [0]),
        "peak_rss_mb": round(_kib("VmHWM") / 1024, 1),
    }
    print(json.dumps(report), flush=True)


class Server:
    """The test server in its own process, holding the tables written to ``work/data``."""

    def __init__(self, tables: dict[str, pl.DataFrame], work: Path) -> None:
        data = work / "data"
        data.mkdir(parents=True)
        for name, frame in tables.items():
            frame.write_parquet(data / f"{name}.parquet")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data), str(work)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.info: dict[str, str] = json.loads(self.process.stdout.readline())

    def stop(self) -> dict[str, Any]:
        """Stop the server; its write counter."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=300)
        return dict(json.loads(self.process.stdout.read().strip().splitlines()[-1]))


# --- the client process ----------------------------------------------------------------------


class RssSampler(threading.Thread):
    """VmRSS every ``SAMPLE_SECONDS``: (seconds since start, MB)."""

    def __init__(self, start: float) -> None:
        super().__init__(daemon=True)
        self.start_time = start
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def sample(self) -> None:
        at = time.perf_counter() - self.start_time
        self.samples.append((round(at, 2), round(_kib("VmRSS") / 1024, 1)))

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            self.sample()


def run_client(base_url: str, ca: str, ledger_dir: str) -> None:
    """One ``run_writeback(execute=True)`` in this process; prints figures as JSON."""
    start = time.perf_counter()
    sampler = RssSampler(start)
    sampler.sample()
    sampler.start()
    org = SalesforceOrg.from_env(
        ENV, session=LoopbackSession(base_url, Path(ca)), poll_interval=POLL_SECONDS
    )
    # Instrumentation only: each update job and each Bulk pull timed, by wrapping the methods.
    jobs: list[tuple[str, float, float, int]] = []  # (table, started, ended, records)
    pulls: list[tuple[str, float, float]] = []  # (table, started, ended)
    update, pull = org.update, org._pull

    def timed_update(table_name: str, records: pl.DataFrame, **options: Any) -> pl.DataFrame:
        began = time.perf_counter() - start
        result = update(table_name, records, **options)
        jobs.append((table_name, began, time.perf_counter() - start, records.height))
        return result

    def timed_pull(name: str, dest: Path, **options: Any) -> None:
        began = time.perf_counter() - start
        pull(name, dest, **options)
        pulls.append((name, began, time.perf_counter() - start))

    org.update = timed_update  # type: ignore[method-assign]
    org._pull = timed_pull  # type: ignore[method-assign]
    wall_start = time.time()
    result = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=ledger_dir)
    seconds = time.perf_counter() - start
    sampler.stopped.set()
    sampler.join()
    sampler.sample()
    # What the org held when this run read it: after a first run, the values it wrote.
    held = pl.concat([org.table(t).select(SUMMARY_COLUMNS) for t in ("contacts", "leads")])
    values_held = held.select(pl.all().count()).collect().to_dicts()[0]
    figures = {
        "seconds": seconds,
        "written": result.written,
        "unchanged": result.unchanged,
        "failures": result.failures.height,
        "jobs": jobs,
        "pulls": pulls,
        "plan_recorded": _ledger_seconds(result.folder, "plan", wall_start),
        "rss_samples": sampler.samples,
        "peak_rss_mb": round(_kib("VmHWM") / 1024, 1),
        "values_held_when_read": values_held,
    }
    print(json.dumps(figures), flush=True)


def _ledger_seconds(folder: Path | None, step: str, wall_start: float) -> float | None:
    """Seconds from the client's start to the ledger's last entry of ``step``."""
    if folder is None:
        return None
    entries = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]
    at = next((e["at"] for e in reversed(entries) if e["step"] == step), None)
    return None if at is None else dt.datetime.fromisoformat(at).timestamp() - wall_start


def client(server: Server, ledger_dir: Path) -> dict[str, Any]:
    """Run the write-back in a fresh client process against ``server``."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            server.info["base_url"],
            server.info["ca"],
            str(ledger_dir),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"client failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the benchmark ---------------------------------------------------------------------------


def _rss_at(samples: list[list[float]], at: float) -> float:
    """RSS of the last sample at or before ``at`` seconds (the first one if none)."""
    return next((mb for t, mb in reversed(samples) if t <= at), samples[0][1])


def measure(n: int, second_count: int | None) -> dict[str, Any]:
    """Write back ``n`` Contacts, then run again (on a fresh org of ``second_count`` if set)."""
    with tempfile.TemporaryDirectory(prefix="ierkit-bench-sfw-") as folder:
        work = Path(folder)
        tables = synthetic_org(n)
        rows = {name: frame.height for name, frame in tables.items() if name != "tasks"}
        server = Server(tables, work / "server")
        del tables
        try:
            first = client(server, work / "runs")
            again = client(server, work / "runs") if second_count is None else None
        finally:
            counter = server.stop()
        second_counter = None
        if second_count is not None:
            small = Server(synthetic_org(second_count), work / "server-second")
            try:
                client(small, work / "runs-second")
                again = client(small, work / "runs-second")
            finally:
                second_counter = small.stop()
        assert again is not None
    jobs = first.pop("jobs")
    samples = first.pop("rss_samples")
    people = rows["contacts"] + rows["leads"]
    written = sum(first["written"].values())
    pulls = first.pop("pulls")
    # The write phase: the Contact update jobs (one stream of N records); the Leads' single
    # job comes after the runner diffs again (see "seconds").
    contact_jobs = [j for j in jobs if j[0] == "contacts"]
    write_start, write_end = contact_jobs[0][1], contact_jobs[-1][2]
    contacts_written = sum(j[3] for j in contact_jobs)
    total = float(first["seconds"])
    plan_at = float(first.pop("plan_recorded"))
    pulled = sum(end - began for _, began, end in pulls)
    # The time by which 10% of the Contacts had been written, and RSS then and at the end.
    done, at_10 = 0, write_end
    for _, _, ended, records in contact_jobs:
        done += records
        if done >= contacts_written / 10:
            at_10 = ended
            break
    during = [mb for t, mb in samples if write_start <= t <= write_end]
    entry: dict[str, Any] = {
        "benchmark": "salesforce_write",
        "what": "ierkit.writeback.run_writeback(org, as_of, execute=True, ledger_dir) on "
        "SalesforceOrg against tests/sfserver.py over HTTPS on loopback: Bulk API 2.0 query "
        "jobs read Contacts, Leads, IERs and link details; summary, diff; one update job per "
        "write_batch_size changed records",
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "load_average_at_start": os.getloadavg(),
        "polars": pl.__version__,
        "poll_seconds": POLL_SECONDS,
        "rows": rows,
        "written": first["written"],
        "failures": first["failures"],
        "update_jobs": len(jobs),
        "seconds": {
            "read_and_plan": round(write_start, 2),
            "of_which_bulk_pulls": {name: round(end - began, 2) for name, began, end in pulls},
            "of_which_plan_summary_and_diff": round(plan_at - pulled, 2),
            "of_which_run_summary_and_diff": round(write_start - plan_at, 2),
            "write_contacts": round(write_end - write_start, 2),
            "after_contacts_diffs_and_leads": round(total - write_end, 2),
            "total": round(total, 2),
        },
        "records_written_per_second": round(contacts_written / (write_end - write_start)),
        "records_per_second_end_to_end": round(written / total),
        "client_peak_rss_mb": first["peak_rss_mb"],
        "contact_write_phase_rss_mb": {
            "at_10_percent": _rss_at(samples, at_10),
            "at_end": _rss_at(samples, write_end),
            "min": min(during, default=None),
            "max": max(during, default=None),
        },
        "server": counter,
        "every_record_written_once": counter["records"] == people
        and counter["writes"] == people
        and counter["max_per_record"] == 1
        and written == people,
        "second_run": {
            "count": second_count or n,
            "written": again["written"],
            "seconds": round(float(again["seconds"]), 2),
            "peak_rss_mb": again["peak_rss_mb"],
            "writes_nothing": sum(again["written"].values()) == 0,
            "non_null_values_read_back": again["values_held_when_read"],
        },
        "rss_samples_every_seconds": SAMPLE_SECONDS,
        "rss_samples": samples,
    }
    if second_counter is not None:
        entry["second_run"]["server"] = second_counter
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=COUNT, help="Contacts (default 1,000,000)")
    parser.add_argument(
        "--fast", action="store_true", help=f"{FAST_COUNT:,} Contacts, printed, not appended"
    )
    parser.add_argument(
        "--second-count", type=int, help="run the second run on a fresh org of this size"
    )
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_org(Path(args.serve[0]), Path(args.serve[1]))
    if args.client:
        return run_client(*args.client)
    n = FAST_COUNT if args.fast else args.count
    entry = measure(n, args.second_count)
    s, rss = entry["seconds"], entry["contact_write_phase_rss_mb"]
    print(
        f"{entry['rows']}\n"
        f"read+plan {s['read_and_plan']:.1f} s, write {s['write_contacts']:.1f} s "
        f"({entry['update_jobs']} jobs, {entry['records_written_per_second']:,} records/s), "
        f"total {s['total']:.1f} s; client peak {entry['client_peak_rss_mb']:,.0f} MB, "
        f"RSS at 10% of writes {rss['at_10_percent']:,.0f} MB, at end {rss['at_end']:,.0f} MB; "
        f"server {entry['server']}; every record once: {entry['every_record_written_once']}; "
        f"second run {entry['second_run']}\nseconds {s}",
        flush=True,
    )
    if not (entry["every_record_written_once"] and entry["second_run"]["writes_nothing"]):
        raise SystemExit("check failed: see above")
    if args.fast:
        return
    runs = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    RESULTS.write_text(json.dumps([*runs, entry], indent=2) + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
