"""One generation, end to end: the steps in order, the demo folder, and its summary.

``build`` chains the steps (population, schedule, send records, sends, finishing tables), each
taking and returning frozen values; ``generate`` puts the result in place of a previous demo.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from ierkit import _files, schema
from ierkit.demo._catalogue import PROGRAMMES
from ierkit.demo._chunks import ChunkWriter
from ierkit.demo._extract_writer import EXTRACT_FILES, ExtractFormat, send_jobs, write_zip
from ierkit.demo._params import DEMO_AS_OF, DEMO_SEED, SYNC_MINUTE, Counters, Params
from ierkit.demo._personas import SIGNAL_TRUTH_SCHEMA, share_addresses
from ierkit.demo._population import build_population
from ierkit.demo._records import GROUND_TRUTH_SCHEMA
from ierkit.demo._schedule import Send, assign_send_records, build_schedule
from ierkit.demo._simulation import SendOutcome, SimState, World, run_sends
from ierkit.demo._sync import Sync
from ierkit.demo._tables import (
    contacts_table,
    email_sends_table,
    leads_table,
    triggered_sends_table,
    unrelated_tasks,
)
from ierkit.errors import IerkitError

#: ``generator`` in ``demo.json``: what marks a folder as a demo output.
GENERATOR = "ierkit.demo"


class DemoError(IerkitError):
    """The demo cannot be written where asked; the message names the folder and why."""


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    """What ``generate`` wrote.

    Attributes:
        path: The demo org folder.
        scale: Size multiplier.
        seed: Random seed.
        as_of: The demo's today.
        counts: Rows per canonical table (and ``ground_truth``).
        planted: Ground-truth rows per reason code.
        extract_rows: Rows per Tracking Extract file.
        sends: Sends in the extract (jobs in SendJobs.csv).
        seconds: Wall time of the generation.
    """

    path: Path
    scale: float
    seed: int
    as_of: dt.date
    counts: dict[str, int]
    planted: dict[str, int]
    extract_rows: dict[str, int]
    sends: int
    seconds: float

    def __str__(self) -> str:
        lines = [
            f"Demo org written to {self.path}",
            f"  scale {self.scale:g}, seed {self.seed}, as of {self.as_of.isoformat()}, "
            f"{self.sends} sends, {self.seconds:.1f} s",
            "  tables:",
            *(f"    {name:<26} {rows:>12,}" for name, rows in self.counts.items()),
            "  planted ground truth (recipient rows per reason):",
            *(f"    {name:<26} {rows:>12,}" for name, rows in self.planted.items()),
            "  tracking_extract.zip:",
            *(f"    {name:<26} {rows:>12,}" for name, rows in self.extract_rows.items()),
        ]
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Built:
    """A generation's results, once its files are in the folder."""

    sync: Sync
    sends: tuple[Send, ...]
    outcomes: tuple[SendOutcome, ...]
    counts: dict[str, int]
    planted: dict[str, int]
    extract_rows: dict[str, int]


def build(params: Params, folder: Path, extract_format: ExtractFormat | None = None) -> Built:
    """Generate every table, the ground truth and the extract zip into ``folder``.

    Chunks gather in ``folder / "_work"`` (the caller removes it).
    """
    writer = ChunkWriter(folder / "_work")
    counters = Counters.start(params.seed)
    population, counters = build_population(params, counters)
    population = dataclasses.replace(population, people=share_addresses(params, population.people))
    sends = build_schedule(params)
    records, counters = assign_send_records(sends, counters)
    world = World(params, Sync.for_params(params), population, records)
    outcomes, state = run_sends(world, SimState.start(population, counters), sends, writer)
    tasks, _ = unrelated_tasks(params, population.people, state.counters)
    writer.part("tasks", tasks)
    writer.csv("SendJobs.csv", send_jobs(sends))
    writer.finish()
    small = {
        "users": population.users.table,
        "contacts": contacts_table(population.people),
        "leads": leads_table(params, population.people),
        "campaigns": population.campaigns.table,
        "campaign_members": population.members.table.sort("id"),
        "email_sends": email_sends_table(sends, outcomes, records, population.campaigns.ids),
        "triggered_sends": triggered_sends_table(sends, outcomes, records),
    }
    # The zip is written by a second thread while this one merges the big tables.
    zip_members = [(n, writer.folder / "extract" / n) for n in EXTRACT_FILES]
    with ThreadPoolExecutor(max_workers=1) as pool:
        zipped = pool.submit(
            write_zip, folder / "tracking_extract.zip", zip_members, extract_format
        )
        counts = _write_tables(folder, writer, small)
        zipped.result()
    return Built(
        sync=world.sync,
        sends=sends,
        outcomes=outcomes,
        counts=counts,
        planted=dict(state.planted),
        extract_rows={name: writer.rows.get(name, 0) for name in EXTRACT_FILES},
    )


def _write_tables(
    folder: Path, writer: ChunkWriter, small: dict[str, pl.DataFrame]
) -> dict[str, int]:
    """Write the ten tables and the ground truth; return their row counts."""
    counts: dict[str, int] = {}
    for name, frame in small.items():
        frame.write_parquet(folder / f"{name}.parquet")
        counts[name] = frame.height
    for name in ("individual_email_results", "individual_links", "tasks"):
        counts[name] = writer.merge(name, folder / f"{name}.parquet", schema.table(name).empty())
    counts["ground_truth"] = writer.merge(
        "ground_truth", folder / "ground_truth.parquet", pl.DataFrame(schema=GROUND_TRUTH_SCHEMA)
    )
    writer.merge(
        "signal_truth", folder / "signal_truth.parquet", pl.DataFrame(schema=SIGNAL_TRUTH_SCHEMA)
    )
    return {name: counts[name] for name in [*schema.TABLES, "ground_truth"]}


#: The demo org's My Domain, for record links (``Org.instance_url``).
DEMO_INSTANCE_URL = "https://ierkit-demo.my.salesforce.com"


def manifest(params: Params, built: Built) -> dict[str, Any]:
    """``demo.json``: parameters, sync, counts and the list of sends."""
    return {
        "generator": GENERATOR,
        "format": 1,
        "scale": params.scale,
        "seed": params.seed,
        "as_of": params.as_of.isoformat(),
        "as_of_instant": params.now.isoformat(),
        # A made-up My Domain: record links in the demo's reports are well formed, lead nowhere.
        "instance_url": DEMO_INSTANCE_URL,
        "polars_version": pl.__version__,
        "sync": {
            "frequency": "Hourly",
            "minute": SYNC_MINUTE,
            "throughput_per_cycle": built.sync.throughput,
            "last_cycle": built.sync.cutoff.isoformat(),
        },
        "programmes": list(PROGRAMMES),
        "counts": built.counts,
        "planted": built.planted,
        "extract_rows": built.extract_rows,
        "sends": [
            {
                "job_id": s.job_id,
                "email_name": s.email_name,
                "programme": s.programme,
                "kind": s.kind,
                "date_sent": s.date_sent.isoformat(),
                "recipients": outcome.recipients,
                "tracking_disabled": s.tracking_disabled,
                "status": s.status,
            }
            for s, outcome in zip(built.sends, built.outcomes, strict=True)
        ],
    }


def is_demo_folder(path: Path) -> bool:
    """Whether ``path`` holds a demo output (a ``demo.json`` written by this generator)."""
    manifest_path = path / "demo.json"
    if not manifest_path.is_file():
        return False
    try:
        return bool(json.loads(manifest_path.read_text()).get("generator") == GENERATOR)
    except (OSError, ValueError):
        return False


def check_scale(scale: float) -> None:
    """Refuse a scale outside (0, 500]."""
    if not (scale > 0) or scale > 500:
        raise DemoError(f"scale must be above 0 and at most 500, got {scale}")


def generate_into(
    folder: Path, params: Params, extract_format: ExtractFormat | None = None
) -> DemoSummary:
    """Generate into ``folder`` (which must not exist)."""
    started = time.perf_counter()
    folder.mkdir(parents=True)
    try:
        built = build(params, folder, extract_format)
    finally:
        shutil.rmtree(folder / "_work", ignore_errors=True)
    _files.write_text(folder / "demo.json", json.dumps(manifest(params, built), indent=2) + "\n")
    return DemoSummary(
        path=folder,
        scale=params.scale,
        seed=params.seed,
        as_of=params.as_of,
        counts=built.counts,
        planted=built.planted,
        extract_rows=built.extract_rows,
        sends=len(built.sends),
        seconds=time.perf_counter() - started,
    )


def generate(
    out: str | os.PathLike[str],
    *,
    scale: float = 1.0,
    seed: int = DEMO_SEED,
    as_of: dt.date = DEMO_AS_OF,
    extract_format: ExtractFormat | None = None,
) -> DemoSummary:
    """Generate the demo org into the folder ``out``.

    The org is written into a temporary sibling folder and then moved into place; a previous
    demo output at ``out`` is replaced, anything else is refused.

    Args:
        out: Folder to write; must be absent, empty, or a previous demo output.
        scale: Size multiplier for contacts, leads and recipients (users and campaigns stay).
        seed: Random seed; the same seed, as-of date and scale give byte-identical files.
        as_of: The demo's today: sends cover the six months before it.
        extract_format: Encoding and separator of ``tracking_extract.zip``'s files (UTF-8 and
            commas by default; every other file is the same either way).

    Returns:
        A summary with the counts of every table, planted reason and extract file.

    Raises:
        DemoError: When ``out`` holds something other than a previous demo output, or the scale
            is out of range.
    """
    check_scale(scale)
    target = Path(out).expanduser().absolute()
    if target.exists():
        if not target.is_dir():
            raise DemoError(f"{target} exists and is not a folder; choose another --out")
        if any(target.iterdir()) and not is_demo_folder(target):
            raise DemoError(
                f"{target} is not empty and holds no previous demo (no demo.json from ierkit demo);"
                " refusing to overwrite it"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        summary = generate_into(tmp, Params(scale=scale, seed=seed, as_of=as_of), extract_format)
        _files.replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(summary, path=target)
