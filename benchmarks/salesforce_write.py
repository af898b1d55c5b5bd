"""Benchmark: write an engagement summary onto N Contacts of the Salesforce-like test server.

Measures records/second of ``SalesforceOrg.update("contacts", ...)`` in chunks of
``org.write_batch_size`` (one Bulk API 2.0 update job each: create, CSV upload over HTTPS on
loopback, close, poll, result files read and matched back to the rows), and the client's peak
memory sampled after every chunk: the peak after 100,000 records and after all N should be the
same (flat), since only one chunk is held at a time. The server runs in its own process, so
its memory is not counted; it reports how many writes each record got (each exactly once).

Jobs are polled every ``POLL_SECONDS`` (the server finishes a job on its second poll): the
figure is ierkit's own cost plus the server's, not Salesforce's queueing.

Run (heavy: take the shared lock):
    flock /tmp/ierkit-bench.lock nice .venv/bin/python benchmarks/salesforce_write.py [N]

Appends to benchmarks/results/salesforce_write.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ierkit import ids, schema  # noqa: E402

COUNT = 1_000_000
POLL_SECONDS = 0.1
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def synthetic_contacts(n: int) -> pl.DataFrame:
    """``n`` Contacts in the canonical schema, the engagement summary fields empty."""
    i = pl.int_range(n, dtype=pl.Int64)
    frame = pl.select(i=i).select(
        id=ids.to_18_expr(pl.format("003{}", pl.col("i").cast(pl.String).str.zfill(12))),
        first_name=pl.lit("Pat"),
        last_name=pl.format("Contact {}", pl.col("i")),
        email=pl.format("pat{}@example.com", pl.col("i")),
        owner_id=pl.lit("005000000000001AAA"),
        created_date=pl.lit(T0),
        system_modstamp=pl.lit(T0),
    )
    return schema.validate("contacts", schema.conform("contacts", frame))


SERVER = """
import sys, json, pathlib
import polars as pl
sys.path.insert(0, {root!r})
from tests.sfserver import FakeSalesforce, serve
org = FakeSalesforce({{"contacts": pl.read_parquet({data!r})}}, password="p", security_token="t")
with serve(org, pathlib.Path({work!r})) as running:
    print(json.dumps({{"base_url": running.base_url, "ca": str(running.ca_path)}}), flush=True)
    sys.stdin.read()
counts = list(org.writes.values())
print(json.dumps({{"writes": sum(counts), "records": len(counts), "max": max(counts or [0])}}))
"""

CLIENT = """
import sys, time, json
sys.path.insert(0, {root!r})
import datetime as dt
import polars as pl
from ierkit import ids
from ierkit.orgs.salesforce import SalesforceOrg
from tests.sfserver import LoopbackSession


def hwm_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent.
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024


env = {{"SF_USERNAME": "integration@example.com", "SF_PASSWORD": "p", "SF_SECURITY_TOKEN": "t"}}
org = SalesforceOrg.from_env(
    env, session=LoopbackSession({base!r}, {ca!r}), poll_interval={poll!r}
)
n, size = {n!r}, org.write_batch_size
as_of = dt.datetime(2026, 11, 20, 10, 30, tzinfo=dt.UTC)
samples, written, failed = [], 0, 0
start = time.perf_counter()
for first in range(0, n, size):
    i = pl.int_range(first, min(n, first + size), dtype=pl.Int64)
    chunk = pl.select(i=i).select(
        id=ids.to_18_expr(pl.format("003{{}}", pl.col("i").cast(pl.String).str.zfill(12))),
        engagement_last_open=pl.lit(as_of) - pl.duration(minutes=pl.col("i") % 50_000),
        engagement_last_human_click=pl.lit(as_of) - pl.duration(hours=pl.col("i") % 2_000),
        engagement_human_clicks_90d=(pl.col("i") % 7).cast(pl.Int32),
        engagement_score=(pl.col("i") % 10_000) / 100,
        engagement_last_link=pl.format("Pricing {{}}", pl.col("i") % 40),
        engagement_summary_as_of=pl.lit(as_of),
    )
    result = org.update("contacts", chunk)
    ok = int(result.get_column("success").sum())
    written, failed = written + ok, failed + result.height - ok
    samples.append({{"records": first + chunk.height, "peak_rss_mb": round(hwm_mb(), 1),
                     "seconds": round(time.perf_counter() - start, 2)}})
seconds = time.perf_counter() - start
print(json.dumps({{"rows": n, "written": written, "failed": failed, "seconds": seconds,
                  "jobs": len(samples), "samples": samples}}))
"""


def run(n: int, work: Path) -> dict[str, object]:
    data = work / f"contacts-{n}.parquet"
    synthetic_contacts(n).write_parquet(data)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(root=str(ROOT), data=str(data), work=str(work))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        info = json.loads(server.stdout.readline())
        client = subprocess.run(
            [
                sys.executable,
                "-c",
                CLIENT.format(
                    root=str(ROOT), base=info["base_url"], ca=info["ca"], n=n, poll=POLL_SECONDS
                ),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result: dict[str, object] = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.stdin.close()
        server.wait(timeout=120)
    result["server"] = json.loads(server.stdout.read().strip().splitlines()[-1])
    return result


def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ierkit-bench-sfw-") as folder:
        result = run(n, Path(folder))
    samples = result.pop("samples")
    assert isinstance(samples, list)
    at_100k = next(s for s in samples if s["records"] >= min(100_000, n))
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    entry = {
        "benchmark": "salesforce_write",
        "what": "SalesforceOrg.update('contacts', chunk) of the six engagement summary fields "
        "to tests/sfserver.py over HTTPS on loopback: one Bulk API 2.0 update job per chunk",
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "polars": pl.__version__,
        "poll_seconds": POLL_SECONDS,
        **result,
        "records_per_second": int(result["rows"]) / seconds,  # type: ignore[call-overload]
        "peak_rss_mb_after_100k": at_100k["peak_rss_mb"],
        "peak_rss_mb_after_all": samples[-1]["peak_rss_mb"],
        "memory_samples": samples[:: max(1, len(samples) // 10)] + samples[-1:],
    }
    print(
        f"{entry['rows']:>10,} Contacts  {seconds:7.1f} s  "
        f"{entry['records_per_second']:>9,.0f} records/s  {entry['jobs']} jobs  "
        f"client peak {entry['peak_rss_mb_after_100k']:,.0f} MB after 100k, "
        f"{entry['peak_rss_mb_after_all']:,.0f} MB after all; server writes "
        f"{entry['server']}",
        flush=True,
    )
    path = ROOT / "benchmarks" / "results" / "salesforce_write.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*runs, entry], indent=2) + "\n")
    print(f"appended to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else COUNT)
