"""Benchmark: pull N Individual Email Results from the Salesforce-like test server into Parquet.

Measures records/second of ``SalesforceOrg.table("individual_email_results")`` (Bulk API 2.0
query job, CSV pages of 50,000 records over HTTPS on loopback, each page parsed and written to
Parquet) and the client's peak memory, for 1 million and 5 million IERs: the peak should stay
flat as the count grows. The server runs in its own process, so its memory is not counted.

Run (heavy: take the shared lock):
    flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/salesforce_read.py [N ...]

Writes benchmarks/results/salesforce_read.json.
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

COUNTS = (1_000_000, 5_000_000)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def synthetic_iers(n: int) -> pl.DataFrame:
    """``n`` IERs in the canonical schema: 500 sends, 200,000 contacts, realistic field fill."""
    i = pl.int_range(n, dtype=pl.Int64)

    def sfid(prefix: str, k: pl.Expr) -> pl.Expr:
        return ids.to_18_expr(pl.concat_str(pl.lit(prefix), k.cast(pl.String).str.zfill(12)))

    frame = pl.select(i=i).select(
        id=sfid("a0R", pl.col("i")),
        name=pl.format("Monthly Newsletter - {}", pl.col("i") % 500),
        contact_id=sfid("003", pl.col("i") % 200_000),
        email_send_id=sfid("a0S", pl.col("i") % 500),
        job_id=1_000_000 + pl.col("i") % 500,
        batch_id=pl.lit(0, pl.Int64),
        list_id=pl.lit(123, pl.Int64),
        subscriber_id=pl.col("i") % 200_000,
        from_name=pl.lit("Acme Marketing"),
        from_address=pl.lit("news@example.com"),
        subject_line=pl.lit("Your November update, with a comma"),
        date_sent=pl.lit(T0) + pl.duration(minutes=pl.col("i") % 260_000),
        opened=pl.col("i") % 4 == 0,
        date_opened=pl.when(pl.col("i") % 4 == 0).then(
            pl.lit(T0) + pl.duration(minutes=pl.col("i") % 260_000 + 90)
        ),
        total_clicks=(pl.col("i") % 17 == 0).cast(pl.Int32) * 2,
        unique_clicks=(pl.col("i") % 17 == 0).cast(pl.Int32),
        clicked=pl.col("i") % 17 == 0,
        hard_bounce=pl.col("i") % 101 == 0,
        soft_bounce=pl.lit(False),
        date_unsubscribed=pl.when(pl.col("i") % 997 == 0).then(pl.lit(T0) + pl.duration(days=1)),
        unsubscribed=pl.col("i") % 997 == 0,
        tracking_as_of=pl.lit(T0) + pl.duration(minutes=pl.col("i") % 260_000 + 120),
        created_date=pl.lit(T0) + pl.duration(minutes=pl.col("i") % 260_000 + 60),
        system_modstamp=pl.lit(T0) + pl.duration(minutes=pl.col("i") % 260_000 + 120),
    )
    spec = schema.INDIVIDUAL_EMAIL_RESULTS
    return schema.validate(
        spec.name,
        frame.with_columns(
            pl.lit(None, dtype=c.dtype).alias(c.name)
            for c in spec.columns
            if c.name not in frame.columns
        ),
    )


SERVER = """
import sys, time, json, pathlib
import polars as pl
sys.path.insert(0, {root!r})
from tests.sfserver import FakeSalesforce, serve
org = FakeSalesforce(
    {{"individual_email_results": pl.read_parquet({data!r})}}, password="p", security_token="t"
)
with serve(org, pathlib.Path({work!r})) as running:
    print(json.dumps({{"base_url": running.base_url, "ca": str(running.ca_path)}}), flush=True)
    sys.stdin.read()
"""

CLIENT = """
import sys, time, json
sys.path.insert(0, {root!r})
import polars as pl
from ierkit.orgs.salesforce import SalesforceOrg
from tests.sfserver import LoopbackSession
env = {{"SF_USERNAME": "integration@example.com", "SF_PASSWORD": "p", "SF_SECURITY_TOKEN": "t"}}
org = SalesforceOrg.from_env(env, session=LoopbackSession({base!r}, {ca!r}), cache_dir={cache!r})
start = time.perf_counter()
rows = org.table("individual_email_results").select(pl.len()).collect().item()
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent (which built the
# data), while VmHWM is this process's own peak resident memory.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"rows": rows, "seconds": seconds, "peak_rss_mb": hwm / 1024}}))
"""


def run(n: int, work: Path) -> dict[str, float]:
    data = work / f"iers-{n}.parquet"
    synthetic_iers(n).write_parquet(data)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(root=str(ROOT), data=str(data), work=str(work))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(server.stdout.readline())
        client = subprocess.run(
            [
                sys.executable,
                "-c",
                CLIENT.format(
                    root=str(ROOT),
                    base=info["base_url"],
                    ca=info["ca"],
                    cache=str(work / f"cache-{n}"),
                ),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    size = (work / f"cache-{n}" / "individual_email_results.parquet").stat().st_size
    result.update(
        records_per_second=result["rows"] / result["seconds"],
        parquet_mb=size / 2**20,
    )
    return result


def main(counts: tuple[int, ...]) -> None:
    results = []
    with tempfile.TemporaryDirectory(prefix="ierkit-bench-sf-") as folder:
        for n in counts:
            result = run(n, Path(folder))
            results.append(result)
            print(
                f"{result['rows']:>10,} IERs  {result['seconds']:7.1f} s  "
                f"{result['records_per_second']:>9,.0f} records/s  "
                f"client peak {result['peak_rss_mb']:,.0f} MB  "
                f"parquet {result['parquet_mb']:,.0f} MB",
                flush=True,
            )
    out = {
        "benchmark": "salesforce_read",
        "what": "SalesforceOrg.table('individual_email_results') from tests/sfserver.py over "
        "HTTPS on loopback: Bulk API 2.0 query job, 50,000-record CSV pages, Parquet",
        "cpu_count": os.cpu_count(),
        "polars": pl.__version__,
        "results": results,
        "date": dt.date.today().isoformat(),
    }
    path = ROOT / "benchmarks" / "results" / "salesforce_read.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or COUNTS)
