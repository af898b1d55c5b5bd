"""Benchmark: tracking events to IERs (ierkit.aggregate) against its floor, DuckDB and pandas.

Run on demand (not by pytest), one heavy job at a time on the shared machine, after installing
the benchmark extra (numpy, pandas, duckdb):

    .venv/bin/pip install -q -e ".[bench]"
    flock /tmp/ierkit-bench.lock nice .venv/bin/python benchmarks/aggregate.py --sizes demo 10M
    flock /tmp/ierkit-bench.lock nice .venv/bin/python benchmarks/aggregate.py --sizes 1Mx10 1Mx1000

Sizes: ``demo`` is the demo org's own Tracking Extract (``ierkit demo``: about 400,000 events
over 119 sends); ``10M``, ``100M`` are synthetic events with the demo's distribution;
``1Mx10`` and ``1Mx1000`` are one million synthetic events spread evenly over 10 and over 1,000
sends (issue 17: the cost of a send and of a file must stay small next to its events; the
ratio is recorded as ``many_sends``).

Data: events synthesised with the demo org's distribution (``ierkit.demo`` programmes: monthly
newsletter to everyone, weekly nurture of ~3,000, sales outreach of 50-300, weekly journey of
500, monthly event invite of 5,000, one daily-batched triggered welcome send; opens ~30% with
repeat opens, clicks ~4% over 3-6 links with repeat clicks and ~10% of clickers without a
tracked open, bounces ~1.5% across Hard/Soft/Block/Technical, unsubscribes ~0.5%, ~0.2% of
recipients deleted in Marketing Cloud: opens and clicks with a blank key and no Sent row),
scaled up by the size of the audience (the number of sends stays as in the demo, so a
100-million-event run has newsletter sends of ~6 million recipients). The same events are
written as the canonical event store (Parquet, one folder per send) and as a Tracking Extract
zip (CSV, ``M/D/YYYY h:mm:ss AM`` in UTC-6).

Cases, each in its own subprocess (seconds and peak memory of that process), over the same data:
- ``bare_count``: ``group_by(job_id, batch_id, subscriber_key).len()`` sunk to Parquet: the floor.
- ``plain_query``: the plainest single polars query computing the same IER columns as ierkit
  writes (one group_by, then the derived columns), sunk to Parquet with default options. At
  10M its output is compared with ierkit's (``plain_query_output_equals_ierkit``).
- ``plain_query_links``: the same plus link details (two sinks sharing the scan).
- ``plain_query_core``: a narrower plain query: only the event-derived columns (dates, counts,
  flags; no Ids, no Contact/Lead check, no empty canonical columns). Shown for scale: it is not
  the same output as ierkit's.
- ``ierkit_parquet``: ``aggregate_store``: IERs and link details in the full canonical schema,
  lazy schema validation, contact/lead Ids, chunks of ``CHUNK_EVENTS`` events (bounded memory),
  each output in IER key order, atomic writes. The store is in store order, as
  ``land_events`` writes it (the ``ierkit_csv`` case pays for that order when landing).
- ``ierkit_csv``: ``aggregate_extracts`` from the CSV zip into an empty store: unzip, strict
  parsing with validation, landing (lock, journal, staging, flushes, dedup where sends can
  overlap), aggregation and writes.
- ``ierkit_csv_signal``: ``ierkit_csv`` that also writes the engagement signal per recipient
  (``ierkit.signal.write_engagement_signal``, as ``ierkit aggregate`` does by default;
  ``ierkit_csv`` runs with it off). Ratio ``signal_overhead``: the share it adds (issue 14:
  at most 0.2).
- ``duckdb_peer``: ``benchmarks/duckdb_peer.py``, the query a data engineer would write instead
  of ierkit, from the same zip (unzip included) to the same two tables. At ``demo`` and ``10M``
  its output is compared with ierkit's (``duckdb_peer_output_equals_ierkit``);
  ``tests/test_duckdb_peer.py`` checks the same on every test run.
- ``pandas``: pandas computing the same IER and link columns as ierkit (contact/lead Ids, the
  synthetic Ids, send-level fields, sorted) on the first 10 million events; only the
  computation is timed, not building the frame. Compare events/second with ierkit's.

Each case runs ``--repeat`` times (2 by default), round robin, and keeps the fastest; every case
records wall and CPU seconds (CPU is steadier on a shared machine), peak memory (the child's
VmHWM) and the 1-minute load average before and after.
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
import zipfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from duckdb_peer import duckdb_peer, peer_equals  # noqa: E402  (this script's folder)

from ierkit import aggregate, extract, schema  # noqa: E402
from ierkit.store import EVENT_ORDER, events_dir, job_folder, scan_events  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "aggregate.json"
EVENTS_PER_SCALE = 450_000  # about what the demo at scale 1 writes
KEY = ["job_id", "batch_id", "subscriber_key"]
IER_KEY = list(aggregate.IER_KEY)
START = dt.datetime(2026, 5, 20, 14, 0)
PANDAS_ROWS = 10_000_000
#: Marks a complete data folder; the name changes when the synthetic data does.
READY = "ready-store-order"


# --- synthetic data -----------------------------------------------------------------------


def _sends(scale: float) -> list[tuple[int, int, int, int, float]]:
    """(job_id, batch_id, recipients, audience offset, hours after START) per send."""
    import numpy as np

    rng = np.random.default_rng(7)
    population = int(26_000 * scale)
    sends = []
    job = 100_000

    def add(batch: int, n: int, hours: float) -> None:
        sends.append((job, batch, max(1, n), int(rng.integers(0, population)), hours))

    for week in range(26):
        hours = week * 168.0
        if week % 4 == 0:
            job += 1
            add(0, population, hours + 2)  # Monthly Newsletter: everyone
            job += 1
            add(0, int(5_000 * scale), hours + 50)  # Event Invite
        job += 1
        add(0, int(3_000 * scale), hours + 26)  # Product Nurture
        job += 1
        add(0, int(500 * scale), hours + 74)  # Journey Onboarding
        for day in (1, 3):  # Sales Outreach, twice a week
            job += 1
            add(0, int(rng.integers(50, 300) * scale), hours + day * 24 + 5)
    job += 1
    for day in range(182):  # Welcome Email: one triggered send, daily batches
        add(day + 1, int(30 * scale), day * 24.0 + 9)
    return sends


#: Events per recipient of a send in the synthetic data (Sent, ~0.5 opens, clicks, bounces).
EVENTS_PER_RECIPIENT = 1.6


def _even_sends(n_events: int, n_sends: int) -> list[tuple[int, int, int, int, float]]:
    """``n_sends`` sends of one size, a day apart, about ``n_events`` events in all."""
    recipients = max(1, round(n_events / EVENTS_PER_RECIPIENT / n_sends))
    return [(200_000 + i, 0, recipients, 0, 24.0 * i) for i in range(n_sends)]


def synthesise(n_events: int, store: Path, *, n_sends: int | None = None) -> int:
    """Write about ``n_events`` events into an event store folder; returns the exact count.

    With ``n_sends``, the events are spread evenly over that many sends (the many-sends case);
    otherwise over the demo's programmes.
    """
    import numpy as np

    scale = n_events / EVENTS_PER_SCALE
    sends = _sends(scale) if n_sends is None else _even_sends(n_events, n_sends)
    population = int(26_000 * scale) if n_sends is None else max(n for _, _, n, _, _ in sends)
    rng = np.random.default_rng(42)
    base = events_dir(store)
    total = 0
    chunk_rows = 2_000_000
    for job_id, batch_id, n, offset, hours in sends:
        parts = []
        for first in range(0, n, chunk_rows):
            m = min(chunk_rows, n - first)
            who = (offset + first + np.arange(m)) % population
            sent_at = START + dt.timedelta(hours=hours)
            parts.append(_events_for(rng, who, population, job_id, batch_id, sent_at, job_id % 7))
        # As ierkit.store.land_events writes the store: in store order, one file per batch.
        frame = pl.concat(parts).sort(EVENT_ORDER, nulls_last=True)
        folder = job_folder(base, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(folder / f"b{batch_id:04d}.parquet")
        total += frame.height
    return total


def _events_for(rng, who, population, job_id, batch_id, sent_at, link_seed) -> pl.DataFrame:
    import numpy as np

    m = len(who)
    deleted = rng.random(m) < 0.002
    opens = np.where(rng.random(m) < 0.30, rng.geometric(0.6, m), 0)
    clickers = rng.random(m) < 0.04
    # Most clickers opened; ~10% clicked with images blocked (no tracked open).
    opens = np.where(clickers & (opens == 0) & (rng.random(m) < 0.9), 1, opens)
    clicks = np.where(clickers, rng.geometric(0.55, m), 0)
    bounced = (~deleted) & (rng.random(m) < 0.015) & (opens == 0) & ~clickers
    unsub = (~deleted) & (~bounced) & (rng.random(m) < 0.005)

    parts = []
    sent_idx = np.nonzero(~deleted)[0]
    parts.append((sent_idx, np.zeros(len(sent_idx)), 0))
    open_idx = np.repeat(np.arange(m), opens)
    parts.append((open_idx, rng.exponential(20 * 3600, len(open_idx)) + 60, 1))
    click_idx = np.repeat(np.arange(m), clicks)
    parts.append((click_idx, rng.exponential(20 * 3600, len(click_idx)) + 120, 2))
    bounce_idx = np.nonzero(bounced)[0]
    parts.append((bounce_idx, rng.exponential(600, len(bounce_idx)) + 5, 3))
    unsub_idx = np.nonzero(unsub)[0]
    parts.append((unsub_idx, rng.exponential(30 * 3600, len(unsub_idx)) + 300, 4))
    idx = np.concatenate([p[0] for p in parts])
    seconds = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kind = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    n_links = 3 + link_seed % 4
    link = rng.integers(0, n_links, len(idx))
    category = rng.choice(4, len(idx), p=[0.4, 0.3, 0.2, 0.1])
    subscriber = who[idx]
    frame = pl.DataFrame(
        {
            "subscriber": subscriber,
            "seconds": seconds,
            "kind": kind,
            "link": link,
            "category": category,
            "deleted": deleted[idx],
        }
    )
    is_lead = pl.col("subscriber") % 13 >= 10  # ~23% leads, as in the demo
    digits = pl.col("subscriber").cast(pl.String).str.zfill(12)
    key = (
        pl.when(is_lead)
        .then(pl.lit("00Q") + digits + pl.lit("EAA"))
        .otherwise(pl.lit("003") + digits + pl.lit("AAA"))
    )
    url = pl.lit(f"https://www.example.com/{job_id % 50}/") + pl.col("link").cast(pl.String)
    link_names = ["Pricing", "Case Study", "Webinar Signup", "Blog", "Demo", "Docs"]
    return frame.select(
        job_id=pl.lit(job_id, pl.Int64),
        batch_id=pl.lit(batch_id, pl.Int64),
        subscriber_key=pl.when(pl.col("deleted")).then(None).otherwise(key),
        subscriber_id=pl.col("subscriber").cast(pl.Int64) + 1_000_000,
        list_id=pl.lit(500 + job_id % 3, pl.Int64),
        email=pl.when(pl.col("deleted"))
        .then(None)
        .otherwise(pl.lit("p") + pl.col("subscriber").cast(pl.String) + pl.lit("@example.org")),
        event_type=pl.col("kind").replace_strict(
            list(range(5)), list(extract.EVENT_TYPES), return_dtype=extract.EventType
        ),
        event_time=pl.lit(sent_at).dt.replace_time_zone("UTC")
        + pl.duration(seconds=pl.col("seconds")),
        url=pl.when(pl.col("kind") == 2).then(url),
        link_name=pl.when(pl.col("kind") == 2).then(
            pl.col("link").replace_strict(list(range(6)), link_names, return_dtype=pl.String)
        ),
        bounce_category=pl.when(pl.col("kind") == 3).then(
            pl.col("category").replace_strict(
                [0, 1, 2, 3], ["Hard", "Soft", "Block", "Technical"], return_dtype=pl.String
            )
        ),
        is_unique=pl.lit(None, pl.Boolean),
    )


_CSV_FILES = {
    "Sent": "Sent.csv",
    "Open": "Opens.csv",
    "Click": "Clicks.csv",
    "Bounce": "Bounces.csv",
    "Unsub": "Unsubs.csv",
}
_CATEGORY_TEXT = {
    "Hard": "Hard bounce",
    "Soft": "Soft bounce",
    "Block": "Block bounce",
    "Technical": "Technical or other bounce",
}


def write_extract_zip(store: Path, target: Path) -> None:
    """The store's events as a Tracking Extract zip (CSV files, dates in UTC-6)."""
    work = target.with_suffix(".parts")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    events = scan_events(store)
    mc_time = (pl.col("event_time").dt.replace_time_zone(None) - pl.duration(hours=6)).dt.strftime(
        "%-m/%-d/%Y %-I:%M:%S %p"
    )
    common = {
        "ClientID": pl.lit(7_000_001),
        "SendID": pl.col("job_id"),
        "SubscriberKey": pl.col("subscriber_key"),
        "EmailAddress": pl.col("email"),
        "SubscriberID": pl.col("subscriber_id"),
        "ListID": pl.col("list_id"),
        "EventDate": mc_time,
        "EventType": pl.col("event_type").cast(pl.String),
        "BatchID": pl.col("batch_id"),
        "TriggeredSendExternalKey": pl.lit(None, pl.String),
    }
    for kind, name in _CSV_FILES.items():
        columns = dict(common)
        if kind == "Click":
            columns |= {
                "SendURLID": pl.lit(1),
                "URLID": pl.lit(2),
                "URL": pl.col("url"),
                "Alias": pl.col("link_name"),
            }
        if kind == "Bounce":
            columns |= {
                "BounceCategory": pl.col("bounce_category").replace_strict(_CATEGORY_TEXT),
                "SMTPCode": pl.lit(550),
                "BounceReason": pl.lit("mailbox unavailable"),
            }
        events.filter(pl.col("event_type") == kind).select(**columns).sink_csv(work / name)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name in _CSV_FILES.values():
            z.write(work / name, name)
    shutil.rmtree(work)


# --- measured cases (each runs in a child process) -----------------------------------------


def _scan(store: Path) -> pl.LazyFrame:
    return scan_events(store)


def _plain_iers(events: pl.LazyFrame) -> pl.LazyFrame:
    """The plainest single query computing the same IER columns as ierkit writes.

    One ``group_by`` with ``filter`` and ``n_unique`` aggregations, then the derived columns
    (the Contact/Lead Id check is ierkit's public ``with_person_ids``: spelling it out per
    character would make this baseline slower, not plainer). No sort, no validation, no
    bounded memory, default Parquet options.
    """
    kind, t = pl.col("event_type"), pl.col("event_time")
    rolled = events.group_by(IER_KEY).agg(
        list_id=pl.col("list_id").max(),
        date_sent=t.filter(kind == "Sent").min(),
        opens=(kind == "Open").sum(),
        date_opened=t.filter((kind == "Open") | (kind == "Click")).min(),
        last_open=t.filter(kind == "Open").max(),
        total_clicks=(kind == "Click").sum(),
        unique_clicks=pl.col("url").filter(kind == "Click").n_unique(),
        hard_bounce=((kind == "Bounce") & (pl.col("bounce_category") == "Hard")).any(),
        date_bounced=t.filter(kind == "Bounce").min(),
        date_unsubscribed=t.filter(kind == "Unsub").min(),
        tracking_as_of=t.max(),
    )
    implied = (pl.col("opens") == 0) & (pl.col("total_clicks") > 0)
    key = pl.coalesce("subscriber_key", pl.lit("#") + pl.col("subscriber_id").cast(pl.String))
    derived = aggregate.with_person_ids(rolled).with_columns(
        id=pl.concat_str([pl.col("job_id"), pl.col("batch_id"), key], separator="-"),
        opened=(pl.col("opens") + pl.col("total_clicks")) > 0,
        open_count=pl.when(implied).then(1).otherwise(pl.col("opens")),
        last_opened=pl.when(implied).then(pl.col("date_opened")).otherwise(pl.col("last_open")),
        clicked=pl.col("unique_clicks") > 0,
        soft_bounce=pl.col("date_bounced").is_not_null() & ~pl.col("hard_bounce"),
        unsubscribed=pl.col("date_unsubscribed").is_not_null(),
        created_date=pl.col("date_sent"),
    )
    return schema.conform(aggregate.IER_TABLE, derived)


def _plain_core(events: pl.LazyFrame) -> pl.LazyFrame:
    """The event-derived IER columns only (no Ids, no Contact/Lead check, no empty columns)."""
    kind, t = pl.col("event_type"), pl.col("event_time")
    return events.group_by(IER_KEY).agg(
        date_sent=t.filter(kind == "Sent").min(),
        open_count=(kind == "Open").sum(),
        date_opened=t.filter((kind == "Open") | (kind == "Click")).min(),
        last_opened=t.filter(kind == "Open").max(),
        total_clicks=(kind == "Click").sum(),
        unique_clicks=pl.col("url").filter(kind == "Click").n_unique(),
        hard_bounce=((kind == "Bounce") & (pl.col("bounce_category") == "Hard")).any(),
        soft_bounce=((kind == "Bounce") & (pl.col("bounce_category") != "Hard")).any(),
        date_bounced=t.filter(kind == "Bounce").min(),
        date_unsubscribed=t.filter(kind == "Unsub").min(),
    )


def _plain_links(events: pl.LazyFrame) -> pl.LazyFrame:
    """The plainest query computing the same link detail columns as ierkit writes."""
    key = pl.coalesce("subscriber_key", pl.lit("#") + pl.col("subscriber_id").cast(pl.String))
    ier_id = pl.concat_str([pl.col("job_id"), pl.col("batch_id"), key], separator="-")
    rolled = (
        events.filter(pl.col("event_type") == "Click")
        .group_by(*IER_KEY, "url")
        .agg(
            link_name=pl.col("link_name").max(),
            total_clicks=pl.len(),
            last_clicked=pl.col("event_time").max(),
            created_date=pl.col("event_time").min(),
        )
        .with_columns(
            individual_email_result_id=ier_id,
            id=pl.concat_str([ier_id, pl.col("url").fill_null("")], separator="|"),
            link_url=pl.col("url"),
        )
        .with_columns(unique_link_id=pl.col("id"))
    )
    return schema.conform(aggregate.LINK_TABLE, rolled)


def verify_plain(data: Path) -> bool:
    """Whether the plain queries' output equals ierkit's (same rows and values, any order)."""
    out = data / "verify"
    shutil.rmtree(out, ignore_errors=True)
    (out / "store").mkdir(parents=True)
    os.symlink(events_dir(data / "store"), events_dir(out / "store"))
    aggregate.aggregate_store(out / "store", out)
    events = _scan(data / "store")
    same = True
    for name, plain in ((aggregate.IER_TABLE, _plain_iers), (aggregate.LINK_TABLE, _plain_links)):
        ours = pl.read_parquet(out / f"{name}.parquet")
        theirs = plain(events).collect()
        same &= ours.sort("id").equals(theirs.sort("id"))
    shutil.rmtree(out, ignore_errors=True)
    return same


def verify_peer(data: Path) -> bool:
    """Whether the DuckDB peer's tables equal ierkit's from the same zip (rows and values)."""
    ours, theirs = data / "verify-ierkit", data / "verify-peer"
    for folder in (ours, theirs):
        shutil.rmtree(folder, ignore_errors=True)
    try:
        aggregate.aggregate_extracts([data / "tracking_extract.zip"], ours)
        duckdb_peer(data / "tracking_extract.zip", theirs)
        return peer_equals(ours, theirs)
    finally:
        for folder in (ours, theirs):
            shutil.rmtree(folder, ignore_errors=True)


def _peak_kib() -> int:
    """Peak resident memory of this process since it started (VmHWM).

    Not ``ru_maxrss``: Linux keeps that across fork and exec, so a child of a large parent
    would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (steadier than wall time on a shared machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _chunk_events() -> int:
    """Events per roll-up chunk: ierkit's default, or IERKIT_BENCH_CHUNK_EVENTS to compare."""
    return int(os.environ.get("IERKIT_BENCH_CHUNK_EVENTS", aggregate.CHUNK_EVENTS))


def run_case(case: str, data: Path, out: Path) -> dict[str, object]:
    store = data / "store"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    rows: int | None = None
    if case == "bare_count":
        _scan(store).group_by(KEY).len().sink_parquet(out / "count.parquet")
    elif case == "plain_query_core":
        _plain_core(_scan(store)).sink_parquet(out / "iers.parquet")
    elif case == "plain_query":
        _plain_iers(_scan(store)).sink_parquet(out / "iers.parquet")
    elif case == "plain_query_links":
        events = _scan(store)
        pl.collect_all(
            [
                _plain_iers(events).sink_parquet(out / "iers.parquet", lazy=True),
                _plain_links(events).sink_parquet(out / "links.parquet", lazy=True),
            ]
        )
    elif case == "ierkit_parquet":
        # The store is the landed Parquet event table; results go into a copy's folders.
        work = out / "store"
        work.mkdir()
        os.symlink(events_dir(store), events_dir(work))
        result = aggregate.aggregate_store(work, out, limit=_chunk_events())
        rows = result.iers
    elif case in ("ierkit_csv", "ierkit_csv_signal"):
        # ierkit_csv writes no engagement signal, so that it stays comparable with the peer.
        _landed, result = aggregate.aggregate_extracts(
            [data / "tracking_extract.zip"], out, write_signal=case == "ierkit_csv_signal"
        )
        rows = result.iers
    elif case == "duckdb_peer":
        duckdb_peer(data / "tracking_extract.zip", out)
        rows = (
            pl.scan_parquet(out / f"{aggregate.IER_TABLE}.parquet")
            .select(pl.len())
            .collect()
            .item()
        )
    elif case == "pandas":
        import pandas as pd

        sample = _scan(store).head(PANDAS_ROWS).collect()
        frame = pd.DataFrame(
            {c: sample.get_column(c).to_numpy() for c in sample.columns if c not in ("event_type",)}
        )
        frame["event_type"] = sample.get_column("event_type").cast(pl.String).to_numpy()
        del sample
        started = time.perf_counter()
        cpu_started = _cpu_seconds()
        _pandas_iers(frame)
    else:
        raise SystemExit(f"unknown case {case}")
    seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds() - cpu_started
    peak_kib = _peak_kib()
    return {
        "case": case,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024),
        "iers": rows,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
    }


def _pandas_iers(frame):
    """What ``aggregate_store`` computes, in pandas: IER and link rows with every column."""
    import numpy as np
    import pandas as pd

    kind = frame["event_type"]
    t = frame["event_time"]
    is_click = kind == "Click"
    frame = frame.assign(
        sent_t=t.where(kind == "Sent"),
        open_n=(kind == "Open"),
        open_t=t.where(kind == "Open"),
        click_n=is_click,
        openclick_t=t.where(kind.isin(["Open", "Click"])),
        hard=(kind == "Bounce") & (frame["bounce_category"] == "Hard"),
        bounce_t=t.where(kind == "Bounce"),
        unsub_t=t.where(kind == "Unsub"),
        subscriber_id=frame["subscriber_id"],
    )
    key = [*KEY, "subscriber_id"]
    iers = (
        frame.groupby(key, dropna=False, sort=False)
        .agg(
            list_id=("list_id", "max"),
            date_sent=("sent_t", "min"),
            opens=("open_n", "sum"),
            date_opened=("openclick_t", "min"),
            last_open=("open_t", "max"),
            total_clicks=("click_n", "sum"),
            hard_bounce=("hard", "any"),
            date_bounced=("bounce_t", "min"),
            date_unsubscribed=("unsub_t", "min"),
            tracking_as_of=("event_time", "max"),
        )
        .reset_index()
    )
    clicks = frame[is_click]
    links = (
        clicks.groupby([*key, "url"], dropna=False, sort=False)
        .agg(
            link_name=("link_name", "max"),
            total_clicks=("url", "size"),
            last_clicked=("event_time", "max"),
            created_date=("event_time", "min"),
        )
        .reset_index()
    )
    per_ier = links.groupby(key, dropna=False, sort=False).size().rename("unique_clicks")
    iers = iers.merge(per_ier.reset_index(), on=key, how="left")
    iers["unique_clicks"] = iers["unique_clicks"].fillna(0).astype("int32")
    iers = iers.sort_values(key, na_position="last", ignore_index=True)
    implied = (iers["opens"] == 0) & (iers["total_clicks"] > 0)
    sk = iers["subscriber_key"]
    ier_key = sk.fillna("#" + iers["subscriber_id"].astype(str))
    iers["id"] = iers["job_id"].astype(str) + "-" + iers["batch_id"].astype(str) + "-" + ier_key
    # Contact/Lead Id check as ierkit does it: shape, then the case-encoding suffix.
    shaped = sk.str.fullmatch(r"(003|00Q)[0-9A-Za-z]{12}[A-Z0-5]{3}", na=False)
    upper = np.zeros(len(sk), dtype=np.int64)
    for i in range(15):
        upper |= sk.str[i].str.isupper().fillna(False).to_numpy(dtype=bool).astype(np.int64) << i
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"))
    suffix = pd.Series(
        alphabet[upper & 31].astype(object)
        + alphabet[(upper >> 5) & 31]
        + alphabet[(upper >> 10) & 31],
        index=sk.index,
    )
    valid = shaped & (sk.str[15:18] == suffix)
    iers["contact_id"] = sk.where(valid & sk.str.startswith("003", na=False))
    iers["lead_id"] = sk.where(valid & sk.str.startswith("00Q", na=False))
    iers = iers.assign(
        opened=iers["opens"] + iers["total_clicks"] > 0,
        open_count=iers["opens"].where(~implied, 1),
        last_opened=iers["last_open"].where(~implied, iers["date_opened"]),
        clicked=iers["unique_clicks"] > 0,
        soft_bounce=iers["date_bounced"].notna() & ~iers["hard_bounce"],
        unsubscribed=iers["date_unsubscribed"].notna(),
        created_date=iers["date_sent"],
    )
    links = links.sort_values([*key, "url"], na_position="last", ignore_index=True)
    link_ier = links["subscriber_key"].fillna("#" + links["subscriber_id"].astype(str))
    links["individual_email_result_id"] = (
        links["job_id"].astype(str) + "-" + links["batch_id"].astype(str) + "-" + link_ier
    )
    links["id"] = links["individual_email_result_id"] + "|" + links["url"].fillna("")
    return iers, links


def _child(case: str, data: Path) -> dict[str, object]:
    """Run a case once in a fresh process."""
    load_before = os.getloadavg()[0]
    command = [sys.executable, __file__, "--child", case, "--data", str(data)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{case} failed:\n{completed.stderr[-3000:]}")
    shutil.rmtree(data / f"out-{case}", ignore_errors=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_average_1min_before"] = round(load_before, 2)
    return result


def _best(runs: list[dict[str, object]]) -> dict[str, object]:
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["all_seconds"] = [r["seconds"] for r in runs]
    best["all_cpu_seconds"] = [r["cpu_seconds"] for r in runs]
    return best


def _ratios(cases: dict[str, dict[str, object]]) -> dict[str, float]:
    """ierkit against each baseline (targets, issue 3: <= 1.2x the plain query, <= 3.5x the
    bare count, >= 10x pandas' events per second), in wall seconds and in CPU seconds."""
    ratios: dict[str, float] = {}
    if "ierkit_csv" in cases and "duckdb_peer" in cases:
        # Issue 17: the CSV/zip path at most as long as the DuckDB peer on the same zip.
        ours, peer = cases["ierkit_csv"], cases["duckdb_peer"]
        ratios["ierkit_csv_vs_duckdb_peer"] = round(ours["seconds"] / peer["seconds"], 2)
        ratios["ierkit_csv_vs_duckdb_peer_cpu"] = round(
            ours["cpu_seconds"] / peer["cpu_seconds"], 2
        )
    if "ierkit_csv" in cases and "ierkit_csv_signal" in cases:
        # Issue 14: writing the engagement signal adds at most 20% to the CSV roll-up.
        plain, flagged = cases["ierkit_csv"], cases["ierkit_csv_signal"]
        ratios["signal_overhead"] = round(flagged["seconds"] / plain["seconds"] - 1, 3)
        ratios["signal_overhead_cpu"] = round(flagged["cpu_seconds"] / plain["cpu_seconds"] - 1, 3)
    ours = cases.get("ierkit_parquet")
    if ours is None:
        return ratios
    for base in ("plain_query", "plain_query_links", "plain_query_core", "bare_count"):
        if base in cases:
            ratios[f"ierkit_vs_{base}"] = round(ours["seconds"] / cases[base]["seconds"], 2)
            ratios[f"ierkit_vs_{base}_cpu"] = round(
                ours["cpu_seconds"] / cases[base]["cpu_seconds"], 2
            )
    if "pandas" in cases:
        ratios["ierkit_vs_pandas_events_per_second"] = round(
            ours["events_per_second"] / cases["pandas"]["events_per_second"], 2
        )
    return ratios


def _size(text: str) -> int:
    text = text.upper().split("X")[0]
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * factor)


def _sends_of(size: str) -> int | None:
    """The number of sends of a many-sends size (``1Mx1000``: 1,000 sends), else None."""
    _, x, sends = size.lower().partition("x")
    return int(sends) if x else None


#: Cases run at the sizes given by a zip only (the demo's extract, the many-sends cases).
CSV_CASES = ["ierkit_csv", "duckdb_peer"]


def _prepare(size: str, data: Path, *, csv: bool) -> int:
    """Write the size's data once (store and zip, or the demo's zip); returns its events."""
    if (data / READY).exists():
        return int((data / READY).read_text())
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    t0 = time.perf_counter()
    if size == "demo":
        from ierkit import demo

        demo.generate(data / "org")
        shutil.copy(data / "org" / "tracking_extract.zip", data / "tracking_extract.zip")
        events = extract.check_extract(data / "tracking_extract.zip")
    else:
        events = synthesise(_size(size), data / "store", n_sends=_sends_of(size))
        if csv:
            write_extract_zip(data / "store", data / "tracking_extract.zip")
    (data / READY).write_text(str(events))
    print(f"{size}: prepared {events:,} events in {time.perf_counter() - t0:.0f} s", flush=True)
    return events


def _many_sends(runs: list[dict[str, object]]) -> dict[str, object]:
    """Issue 17: 1M events over 1,000 sends at most 1.5x the time of 1M over 10 sends."""
    by_size = {r["size"]: r["cases"] for r in runs}
    few, many = by_size.get("1Mx10", {}), by_size.get("1Mx1000", {})
    result: dict[str, object] = {}
    for case in CSV_CASES:
        if case in few and case in many:
            result[f"{case}_1000_sends_vs_10_sends"] = round(
                many[case]["seconds"] / few[case]["seconds"], 2
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["10M", "100M"])
    parser.add_argument("--data", type=Path, default=Path("/tmp/ierkit-bench-aggregate"))
    parser.add_argument("--cases", nargs="+", default=None)
    parser.add_argument("--no-csv", action="store_true", help="skip the CSV zip and its case")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the best is kept")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_case(args.child, args.data, args.data / f"out-{args.child}")
        print(json.dumps(result))
        return
    report = {
        "benchmark": "aggregate",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "chunk_events": _chunk_events(),
        "command": "flock /tmp/ierkit-bench.lock .venv/bin/python benchmarks/aggregate.py "
        + " ".join(sys.argv[1:]),
        "runs": [],
    }
    if RESULTS.exists():
        previous = json.loads(RESULTS.read_text())
        report["runs"] = [r for r in previous.get("runs", []) if r["size"] not in args.sizes]
    for size in args.sizes:
        n = _size(size) if size != "demo" else 0
        data = args.data / size
        events = _prepare(size, data, csv=not args.no_csv)
        default_cases = [
            "bare_count",
            "plain_query_core",
            "plain_query",
            "plain_query_links",
            "ierkit_parquet",
            "ierkit_csv",
            "ierkit_csv_signal",
            "duckdb_peer",
            "pandas",
        ]
        if size == "demo" or _sends_of(size):
            default_cases = list(CSV_CASES)
        cases = args.cases or default_cases
        if n > PANDAS_ROWS * 1.5 and "pandas" in cases and args.cases is None:
            cases.remove("pandas")  # pandas runs on a 10 million sample only
        if args.no_csv:
            cases = [case for case in cases if case not in [*CSV_CASES, "ierkit_csv_signal"]]
        run = {"size": size, "events": events, "command": report["command"], "cases": {}}
        # Round robin (every case once, then again): a shared machine's slow minutes then
        # fall on all cases alike, and the fastest run of each is kept.
        runs: dict[str, list[dict[str, object]]] = {case: [] for case in cases}
        for _ in range(args.repeat):
            for case in cases:
                runs[case].append(_child(case, data))
                last = runs[case][-1]
                print(
                    f"{size} {case:18s} {last['seconds']:8.2f} s  cpu {last['cpu_seconds']:7.2f} s"
                    f"  peak {last['peak_rss_mib']:>6,} MiB",
                    flush=True,
                )
        for case in cases:
            result = _best(runs[case])
            rows = PANDAS_ROWS if case == "pandas" else events
            result["events_per_second"] = round(min(rows, events) / result["seconds"])
            run["cases"][case] = result
        if 0 < n <= PANDAS_ROWS * 1.5 and "plain_query" in cases:
            # The baseline must compute what ierkit computes, or the ratio means nothing.
            run["plain_query_output_equals_ierkit"] = verify_plain(data)
            print(
                f"{size} plain query output equals ierkit's: "
                f"{run['plain_query_output_equals_ierkit']}",
                flush=True,
            )
        if size in ("demo", "10M") and "duckdb_peer" in cases:
            # The peer must compute what ierkit computes, or the ratio means nothing.
            run["duckdb_peer_output_equals_ierkit"] = verify_peer(data)
            print(f"{size} DuckDB peer equals ierkit: {run['duckdb_peer_output_equals_ierkit']}")
        run["ratios"] = _ratios(run["cases"])
        print(json.dumps(run["ratios"], indent=1))
        report["runs"] = [r for r in report["runs"] if r["size"] != size] + [run]
        report["many_sends"] = _many_sends(report["runs"])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
