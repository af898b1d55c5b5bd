"""The demo org: a deterministic synthetic mid-size B2B company with Marketing Cloud Connect.

``generate`` writes a local org folder (readable by ``ierkit.orgs.LocalOrg``): the ten canonical
tables as ``<table>.parquet``, ``ground_truth.parquet`` (why each recipient of each send has or
lacks an IER), ``tracking_extract.zip`` (a Marketing Cloud Tracking Extract of the same sends)
and ``demo.json`` (parameters, counts, the list of sends). ``ensure_demo`` keeps one generated
copy per parameter set in the cache folder.

Six months of sends from seven programmes (see ``PROGRAMMES``), plus three one-off sends that
plant send-level failure modes; person-level failure modes are planted at fixed rates
(``ierkit.reasons`` codes). Everything is generated with polars expressions over hash-based
randomness (``ierkit.demo_random``), one send (or one block of up to ``BLOCK_ROWS`` recipients)
at a time, so memory stays bounded at any scale.

Determinism: the same seed, as-of date and scale give byte-identical files (Parquet tables,
ground truth, ``demo.json`` and the extract zip) in the same environment. polars' ``hash`` is
not promised stable across polars versions, so another polars version may give other data.

Modelling choices a reader of the data should know:
- ``date_opened`` is the first open (Salesforce does not document first or last).
- A ``Block bounce`` sets ``soft_bounce`` (Marketing Cloud treats block bounces like soft ones);
  ``Hard bounce`` sets ``hard_bounce``.
- Send totals (``number_sent``, ...) are Marketing Cloud's view: they count every recipient,
  also those whose IER is missing, so totals minus IERs reveal the gap.
- The tracking sync runs hourly at minute ``SYNC_MINUTE`` and writes at most
  ``throughput_per_cycle`` IERs per cycle, first come first served; the IERs of a large send
  therefore spread over several cycles. Events after the last cycle before the as-of instant do
  not exist yet (neither in the org nor in the extract).
- Unsubscribes and hard bounces suppress the person from later sends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import random
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import polars as pl

from ierkit import reasons, schema
from ierkit.demo_random import (
    counter_start,
    exponential,
    geometric_extra,
    index_pick,
    pick,
    salt,
    sf_id,
    sf_ids,
    uniform,
)
from ierkit.errors import IerkitError

DEMO_SEED: Final = 42
#: Engine for the many small per-send queries (start-up cost matters more than parallelism).
ENGINE: Final = "in-memory"
DEMO_AS_OF: Final = dt.date(2026, 11, 20)

UTC: Final = dt.UTC
#: Marketing Cloud keeps time in Central Standard Time without daylight saving (domain.md).
MC_TIME_ZONE: Final = "Etc/GMT+6"
#: Tracking Extract EventDate format, e.g. ``1/15/2021 10:05:12 AM``.
MC_DATE_FORMAT: Final = "%-m/%-d/%Y %-I:%M:%S %p"
EXTRACT_FILES: Final = (
    "SendJobs.csv",
    "Sent.csv",
    "Opens.csv",
    "Clicks.csv",
    "Bounces.csv",
    "Unsubs.csv",
)
EVENT_COLUMNS: Final = (
    "ClientID",
    "SendID",
    "SubscriberKey",
    "EmailAddress",
    "SubscriberID",
    "ListID",
    "EventDate",
    "EventType",
    "BatchID",
    "TriggeredSendExternalKey",
)
CLICK_COLUMNS: Final = (*EVENT_COLUMNS, "SendURLID", "URLID", "URL", "Alias")
BOUNCE_COLUMNS: Final = (*EVENT_COLUMNS, "BounceCategory", "SMTPCode", "BounceReason")
SENDJOB_COLUMNS: Final = (
    "ClientID",
    "SendID",
    "FromName",
    "FromEmail",
    "SchedTime",
    "SentTime",
    "Subject",
    "EmailName",
    "TriggeredSendExternalKey",
    "SendDefinitionExternalKey",
    "JobStatus",
    "PreviewURL",
    "IsMultipart",
    "Additional",
)
GROUND_TRUTH_SCHEMA: Final = pl.Schema(
    {
        "job_id": pl.Int64,
        "batch_id": pl.Int64,
        "subscriber_key": pl.String,
        "recipient_id": pl.String,
        "email": pl.String,
        "reason": pl.String,
        "has_ier": pl.Boolean,
        "ier_id": pl.String,
    }
)

# --- the company ----------------------------------------------------------------------------

COMPANY: Final = "Northbeam Software"
COMPANY_DOMAIN: Final = "northbeam.example"
CLIENT_ID: Final = 100023456  # the Marketing Cloud business unit (MID)
N_REPS: Final = 25
BASE_CONTACTS: Final = 20_000
BASE_LEADS: Final = 6_000
WINDOW_DAYS: Final = 182
#: Recipients per generated block: bounds memory at any scale.
BLOCK_ROWS: Final = 250_000
#: Tracking sync: hourly, at this minute past the hour; IERs written per cycle at scale 1.
SYNC_MINUTE: Final = 15
SYNC_THROUGHPUT: Final = 5_000
#: A cycle writes its records over this many minutes.
SYNC_WRITE_MINUTES: Final = 45
#: A send joins the sync queue this long after it went out.
SYNC_LAG: Final = dt.timedelta(minutes=5)

# Planted person-level failure modes (fractions of contacts / leads).
RATE_EMAIL_KEY: Final = 0.005
RATE_ID15_KEY: Final = 0.003
RATE_UNKNOWN_ID: Final = 0.002
RATE_DELETED_IN_MC: Final = 0.003
RATE_LEAD_CONVERTED: Final = 0.03
# Engagement.
BOUNCE_RATE: Final = 0.015
BOUNCE_CATEGORIES: Final = ("Hard bounce", "Soft bounce", "Block bounce")
BOUNCE_WEIGHTS: Final = (0.45, 0.40, 0.15)
SMTP_CODES: Final = {"Hard bounce": 550, "Soft bounce": 452, "Block bounce": 554}
BOUNCE_REASONS: Final = {
    "Hard bounce": "550 5.1.1 The email account that you tried to reach does not exist",
    "Soft bounce": "452 4.2.2 The email account that you tried to reach is over quota",
    "Block bounce": "554 5.7.1 Message rejected due to content or sender reputation",
}
UNSUB_GIVEN_OPEN: Final = 0.012

FIRST_NAMES: Final = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Paul",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Timothy",
    "Stephanie",
    "Ronald",
    "Rebecca",
    "Priya",
    "Wei",
    "Aisha",
    "Mateo",
    "Sofia",
    "Lukas",
    "Yuki",
    "Omar",
    "Chloe",
    "Ravi",
]
LAST_NAMES: Final = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Kim",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Tanaka",
    "Kowalski",
    "Silva",
    "Okafor",
    "Larsen",
]
COMPANY_FIRST: Final = [
    "Northwind",
    "Bluepeak",
    "Ironwood",
    "Silverline",
    "Brightpath",
    "Cedar",
    "Harbor",
    "Summit",
    "Pinecrest",
    "Redstone",
    "Clearwater",
    "Evergreen",
    "Granite",
    "Lakeshore",
    "Meridian",
    "Oakridge",
    "Riverbend",
    "Stonegate",
    "Sunrise",
    "Westfield",
    "Crescent",
    "Highland",
    "Keystone",
    "Lighthouse",
    "Maple",
    "Orion",
    "Pioneer",
    "Quartz",
    "Sterling",
    "Vantage",
]
COMPANY_SECOND: Final = [
    "Analytics",
    "Systems",
    "Logistics",
    "Health",
    "Capital",
    "Robotics",
    "Foods",
    "Energy",
    "Labs",
    "Media",
    "Networks",
    "Partners",
    "Solutions",
    "Dynamics",
    "Manufacturing",
    "Retail",
    "Learning",
    "Insurance",
    "Biotech",
    "Freight",
    "Software",
    "Devices",
    "Materials",
    "Ventures",
    "Consulting",
    "Outfitters",
    "Pharma",
    "Telecom",
    "Holdings",
    "Studios",
]
COMPANY_SUFFIX: Final = ("Inc", "LLC", "Group", "Ltd", "Corp")
INDUSTRIES: Final = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Logistics",
    "Media",
)
LIFECYCLE_STAGES: Final = ("Subscriber", "Lead", "MQL", "SQL", "Opportunity", "Customer")
LEAD_SOURCES: Final = (
    "Web",
    "Webinar",
    "Trade Show",
    "Partner Referral",
    "Content Download",
    "Paid Search",
    "Outbound",
)
REP_NAMES: Final = (
    "Avery Collins",
    "Jordan Blake",
    "Morgan Reyes",
    "Taylor Brooks",
    "Casey Morgan",
    "Riley Chen",
    "Jamie Foster",
    "Quinn Harper",
    "Drew Patel",
    "Cameron Diaz",
    "Skyler Novak",
    "Reese Walsh",
    "Peyton Greer",
    "Rowan Ellis",
    "Dakota Shaw",
    "Hayden Park",
    "Emerson Lane",
    "Finley Stone",
    "Sawyer Quinn",
    "Parker Lowe",
    "Logan Hart",
    "Charlie Voss",
    "Sydney Cole",
    "Alex Moreno",
    "Jesse Okafor",
)


@dataclasses.dataclass(frozen=True)
class Programme:
    """A recurring kind of send: how often, to whom, how people engage, and who follows up."""

    name: str
    campaign_type: str
    open_rate: float
    click_rate: float
    #: Fraction of engaged recipients (see ``follow_on``) whose owner logs a follow-up Task.
    follow_rate: float
    #: "opened" or "clicked": which engagement prompts a follow-up.
    follow_on: str
    #: Follow-up delay after the engagement, in days (min, max).
    follow_days: tuple[float, float]
    list_id: int


PROGRAMMES: Final[dict[str, Programme]] = {
    p.name: p
    for p in (
        Programme("Monthly Newsletter", "Newsletter", 0.22, 0.025, 0.01, "opened", (0.5, 10), 2101),
        Programme("Product Nurture", "Nurture", 0.27, 0.045, 0.20, "clicked", (0.5, 7), 2102),
        Programme("Sales Outreach", "Sales Outreach", 0.40, 0.08, 0.55, "opened", (1, 5), 2103),
        Programme("Journey Onboarding", "Journey", 0.45, 0.07, 0.05, "clicked", (1, 7), 2104),
        Programme("Event Invite", "Event", 0.30, 0.05, 0.10, "clicked", (1, 7), 2105),
        Programme("Welcome Email", "Welcome", 0.45, 0.06, 0.03, "opened", (1, 7), 2106),
        Programme(
            "Product Announcement", "Announcement", 0.30, 0.04, 0.10, "clicked", (0.5, 3), 2107
        ),
        Programme("Webinar Follow-up", "Webinar", 0.38, 0.07, 0.30, "clicked", (1, 5), 2108),
        Programme("Partner Update", "Partner", 0.25, 0.03, 0.0, "opened", (1, 5), 2109),
    )
}
#: The recurring programmes (the other two are the one-off planted sends plus the CSV send).
RECURRING: Final = (
    "Monthly Newsletter",
    "Product Nurture",
    "Sales Outreach",
    "Journey Onboarding",
    "Event Invite",
    "Welcome Email",
)
WELCOME_TS_KEY: Final = "welcome_email_ts"

LINK_POOL: Final = (
    ("https://www.example.com/pricing", "Pricing"),
    ("https://www.example.com/customers/case-study", "Case Study"),
    ("https://www.example.com/webinars/signup", "Webinar Signup"),
    ("https://www.example.com/blog/latest", "Read the Blog"),
    ("https://www.example.com/demo", "Book a Demo"),
    ("https://www.example.com/product/whats-new", "What's New"),
    ("https://www.example.com/docs/getting-started", "Getting Started"),
    ("https://www.example.com/events", "Events"),
    ("https://www.example.com/contact-sales", "Contact Sales"),
    ("https://www.example.com/preferences", "Email Preferences"),
)
NURTURE_TOPICS: Final = (
    "Data Quality Basics",
    "Automating Reports",
    "Pipeline Forecasting",
    "Integrations Tour",
    "Security Checklist",
    "Admin Tips",
    "ROI Calculator",
    "Customer Story",
)
JOURNEY_STEPS: Final = (
    "Step 1: Welcome Aboard",
    "Step 2: Connect Your Data",
    "Step 3: Invite Your Team",
    "Step 4: First Dashboard",
)
EVENTS: Final = ("Northbeam Summit", "Data Leaders Roundtable", "Partner Day")
OUTREACH_THEMES: Final = (
    "Renewal Check-in",
    "Expansion Offer",
    "Executive Briefing",
    "Quarter-End Promotion",
    "Reference Program",
    "Upgrade Path",
    "Pilot Invitation",
    "Pricing Update",
)
UNRELATED_TASK_SUBJECTS: Final = (
    "Call",
    "Quarterly check-in",
    "Send proposal",
    "Prepare renewal quote",
    "Discovery call",
    "Update account plan",
)


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


def as_of_instant(as_of: dt.date) -> dt.datetime:
    """The demo's "now": the as-of date at 12:00 UTC."""
    return dt.datetime(as_of.year, as_of.month, as_of.day, 12, tzinfo=UTC)


# --- generation context ------------------------------------------------------------------------


@dataclasses.dataclass
class _Send:
    """One send (job) of the demo, before its recipients are generated."""

    programme: str
    email_name: str
    subject: str
    date_sent: dt.datetime
    kind: str  # "list", "triggered" or "csv"
    campaign_key: str | None
    audience: str  # how recipients are chosen (see _Generator.audience)
    audience_arg: Any = None
    tracking_disabled: bool = False
    status: str = "Completed"
    job_id: int = 0
    links: tuple[tuple[str, str], ...] = ()
    send_url_base: int = 0
    email_send_number: int = 0
    totals: dict[str, int] = dataclasses.field(default_factory=dict)
    tracking_as_of: dt.datetime | None = None
    recipients: int = 0


class _Sync:
    """The hourly tracking sync: a first-come-first-served queue with a per-cycle throughput."""

    def __init__(self, throughput: int, cutoff: dt.datetime) -> None:
        self.throughput = throughput
        self.cutoff = cutoff
        self.used: dict[int, int] = {}
        self.base = dt.datetime(2000, 1, 1, 0, SYNC_MINUTE, tzinfo=UTC)
        self.base_lit = pl.lit(self.base)

    def cycle_index(self, t: dt.datetime) -> int:
        """Index of the first cycle at or after ``t``."""
        seconds = (t - self.base).total_seconds()
        return int(-(-seconds // 3600))

    def cycle_time(self, index: int) -> dt.datetime:
        return self.base + dt.timedelta(hours=index)

    def allocate(self, sent: dt.datetime, n: int, *, queue: bool = True) -> pl.DataFrame:
        """Assign ``n`` IERs of a send to cycles.

        Returns:
            One row per cycle used: ``start`` (first IER ordinal in it), ``cycle`` (time),
            ``slot`` (position of the first of them in the cycle), ``count``. IERs whose cycle
            would come after the cutoff are not allocated: they are still in the sync window.
        """
        starts, cycles, slots, counts = [], [], [], []
        c = self.cycle_index(sent + SYNC_LAG)
        done = 0
        last = self.cycle_index(self.cutoff)
        if self.cycle_time(last) > self.cutoff:
            last -= 1
        while done < n and c <= last:
            used = self.used.get(c, 0) if queue else 0
            take = min(self.throughput - used, n - done)
            if take > 0:
                starts.append(done)
                cycles.append(self.cycle_time(c))
                slots.append(used)
                counts.append(take)
                if queue:
                    self.used[c] = used + take
                done += take
            c += 1
        return pl.DataFrame(
            {"start": starts, "cycle": cycles, "slot": slots, "count": counts},
            schema={
                "start": pl.Int64,
                "cycle": schema.UTC_DATETIME,
                "slot": pl.Int64,
                "count": pl.Int64,
            },
        )

    def ceil_expr(self, t: pl.Expr) -> pl.Expr:
        """The first cycle at or after each time (when the sync picks an update up)."""
        seconds = (t - self.base_lit).dt.total_seconds()
        hours = (seconds + 3599) // 3600
        return self.base_lit + pl.duration(hours=hours)


def _secs(expr: pl.Expr) -> pl.Expr:
    return pl.duration(seconds=expr.floor().cast(pl.Int64))


class _Writer:
    """Collects generated chunks: Parquet parts per table, CSV files per extract file.

    Small chunks are buffered in memory and written once ``FLUSH_ROWS`` rows have gathered, so
    the many small sends do not each cost a file.
    """

    FLUSH_ROWS: Final = 200_000

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.parts: dict[str, list[Path]] = {}
        self.buffers: dict[str, list[pl.DataFrame]] = {}
        self.buffered: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.columns: dict[str, tuple[str, ...]] = {}
        (folder / "parts").mkdir(parents=True)
        (folder / "extract").mkdir(parents=True)

    def _add(self, name: str, frame: pl.DataFrame) -> None:
        self.buffers.setdefault(name, []).append(frame)
        self.buffered[name] = self.buffered.get(name, 0) + frame.height
        self.rows[name] = self.rows.get(name, 0) + frame.height
        if self.buffered[name] >= self.FLUSH_ROWS:
            self._flush(name)

    def _flush(self, name: str) -> None:
        frames = self.buffers.pop(name, [])
        self.buffered[name] = 0
        if not frames:
            return
        frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        if name.endswith(".csv"):
            path = self.folder / "extract" / name
            with open(path, "ab") as handle:
                frame.write_csv(handle, include_header=False)
        else:
            paths = self.parts.setdefault(name, [])
            path = self.folder / "parts" / f"{name}-{len(paths):06d}.parquet"
            # Parts are read back once by ``merge``: fast compression is enough.
            frame.write_parquet(path, compression="lz4")
            paths.append(path)

    def part(self, name: str, frame: pl.DataFrame) -> None:
        """Append rows to a table."""
        if frame.height:
            self._add(name, frame)

    def csv(self, name: str, frame: pl.DataFrame) -> None:
        """Append rows to an extract file (the header is written with the first call)."""
        if name not in self.columns:
            self.columns[name] = tuple(frame.columns)
            (self.folder / "extract" / name).write_bytes((",".join(frame.columns) + "\n").encode())
            self.rows.setdefault(name, 0)
        if frame.height:
            self._add(name, frame)

    def finish(self) -> None:
        """Write what is still buffered."""
        for name in list(self.buffers):
            self._flush(name)

    def merge(self, name: str, target: Path, empty: pl.DataFrame) -> int:
        """Concatenate the parts of ``name`` into ``target`` (streaming, order kept)."""
        paths = self.parts.get(name, [])
        if not paths:
            empty.write_parquet(target)
            return 0
        pl.scan_parquet(paths).sink_parquet(target)
        return self.rows[name]


class _Generator:
    """Builds the whole demo into ``folder``; one instance per ``generate`` call."""

    def __init__(self, folder: Path, *, scale: float, seed: int, as_of: dt.date) -> None:
        self.folder = folder
        self.scale = scale
        self.seed = seed
        self.as_of = as_of
        self.now = as_of_instant(as_of)
        self.window_start = self.now - dt.timedelta(days=WINDOW_DAYS)
        self.rng = random.Random(salt(seed, "schedule"))
        throughput = max(200, round(SYNC_THROUGHPUT * scale))
        self.sync = _Sync(throughput, self.now)
        # Events after the last sync cycle before "now" have not happened yet in this demo.
        last = self.sync.cycle_index(self.now)
        if self.sync.cycle_time(last) > self.now:
            last -= 1
        self.cutoff = self.sync.cycle_time(last)
        self.cutoff_lit = pl.lit(self.cutoff)
        self.now_lit = pl.lit(self.now)
        self.writer = _Writer(folder / "_work")
        self.counters = {
            name: counter_start(seed, name)
            for name in ("ier", "link", "task", "member", "send", "user", "campaign")
        }
        self.sends: list[_Send] = []
        self.planted: dict[str, int] = {r: 0 for r in reasons.ALL if r != reasons.UNEXPLAINED}

    # --- helpers ---------------------------------------------------------------------------

    def u(self, key: pl.Expr, *stream: object) -> pl.Expr:
        return uniform(key, salt(self.seed, *stream))

    def take_counter(self, name: str, n: int) -> int:
        start = self.counters[name]
        self.counters[name] += n
        return start

    # --- users, people, campaigns -------------------------------------------------------------

    def build_users(self) -> pl.DataFrame:
        names = list(REP_NAMES[:N_REPS])
        names += ["Marketing Ops", "MC Connect Integration"]
        start = self.take_counter("user", len(names))
        ids = [sf_id("005", start + i) for i in range(len(names))]
        emails = [n.lower().replace(" ", ".") + "@" + COMPANY_DOMAIN for n in names]
        created = [self.now - dt.timedelta(days=900 + 17 * i) for i in range(len(names))]
        users = pl.DataFrame(
            {
                "id": ids,
                "name": names,
                "email": emails,
                "is_active": [i != 7 for i in range(len(names))],  # one rep has left
                "created_date": created,
                "system_modstamp": created,
            }
        )
        self.rep_ids = ids[:N_REPS]
        self.marketing_ops_id = ids[N_REPS]
        self.integration_id = ids[N_REPS + 1]
        return schema.validate("users", users)

    def build_people(self) -> None:
        """Contacts and leads (one frame, ``p`` = row index), with their planted traits."""
        n_contacts = max(1, round(BASE_CONTACTS * self.scale))
        n_leads = max(1, round(BASE_LEADS * self.scale))
        n = n_contacts + n_leads
        now = pl.lit(self.now)
        p = pl.col("p")
        is_contact = p < n_contacts
        u_reason = self.u(p, "reason")
        u_new = self.u(p, "new")
        days_ago = (
            pl.when(u_new < pl.when(is_contact).then(0.10).otherwise(0.20))
            .then(self.u(p, "age") * WINDOW_DAYS)
            .otherwise(WINDOW_DAYS + self.u(p, "age") * 1280)
        )
        n_companies = max(50, n // 8)
        base = pl.DataFrame({"p": pl.int_range(0, n, eager=True)}).with_columns(
            kind=pl.when(is_contact).then(pl.lit("contact")).otherwise(pl.lit("lead")),
            created_date=(now - _secs(days_ago * 86400)).dt.truncate("1s"),
            company_ix=(self.u(p, "company") * n_companies).floor().cast(pl.Int64),
            first_name=index_pick(self.u(p, "first"), list(FIRST_NAMES)),
            last_name=index_pick(self.u(p, "last"), list(LAST_NAMES)),
            owner_id=index_pick(self.u(p, "owner"), self.rep_ids),
            engage=0.4 + 1.2 * self.u(p, "engage"),
            lifecycle_stage=pl.when(is_contact)
            .then(pick(self.u(p, "stage"), list(LIFECYCLE_STAGES), [5, 2, 2, 1, 3, 7]))
            .otherwise(
                pick(self.u(p, "stage"), list(LIFECYCLE_STAGES), [5, 6, 3, 2, 0.0001, 0.0001])
            ),
            lead_source=pick(self.u(p, "source"), list(LEAD_SOURCES), [5, 3, 2, 1, 3, 2, 2]),
            base_reason=pl.when(is_contact)
            .then(
                pl.when(u_reason < RATE_EMAIL_KEY)
                .then(pl.lit(reasons.EMAIL_KEY))
                .when(u_reason < RATE_EMAIL_KEY + RATE_ID15_KEY)
                .then(pl.lit(reasons.ID15_KEY))
                .when(u_reason < RATE_EMAIL_KEY + RATE_ID15_KEY + RATE_UNKNOWN_ID)
                .then(pl.lit(reasons.UNKNOWN_ID))
                .when(
                    u_reason < RATE_EMAIL_KEY + RATE_ID15_KEY + RATE_UNKNOWN_ID + RATE_DELETED_IN_MC
                )
                .then(pl.lit(reasons.DELETED_IN_MARKETING_CLOUD))
                .otherwise(pl.lit(reasons.HEALTHY))
            )
            .otherwise(
                pl.when((u_reason < RATE_LEAD_CONVERTED) & (days_ago > 150))
                .then(pl.lit(reasons.LEAD_CONVERTED))
                .when(u_reason < RATE_LEAD_CONVERTED + RATE_DELETED_IN_MC)
                .then(pl.lit(reasons.DELETED_IN_MARKETING_CLOUD))
                .otherwise(pl.lit(reasons.HEALTHY))
            ),
        )
        company = self.company_names(n_companies)
        base = base.with_columns(
            company=pl.lit(company["name"]).gather(pl.col("company_ix")),
            domain=pl.lit(company["domain"]).gather(pl.col("company_ix")),
            industry=pl.lit(company["industry"]).gather(pl.col("company_ix")),
        ).with_columns(
            email=pl.concat_str(
                [
                    pl.col("first_name").str.to_lowercase(),
                    pl.lit("."),
                    pl.col("last_name").str.to_lowercase(),
                    pl.col("p").cast(pl.String),
                    pl.lit("@"),
                    pl.col("domain"),
                ]
            ),
            converted_at=pl.when(pl.col("base_reason") == reasons.LEAD_CONVERTED)
            .then((now - _secs((2 + self.u(p, "convert") * 148) * 86400)).dt.truncate("1s"))
            .otherwise(None),
            mc_deleted_at=pl.when(pl.col("base_reason") == reasons.DELETED_IN_MARKETING_CLOUD)
            .then((now - _secs((1 + self.u(p, "mcdelete") * 119) * 86400)).dt.truncate("1s"))
            .otherwise(None),
        )
        # Contacts created when a lead converted (their own rows, after all leads).
        converted = base.filter(pl.col("converted_at").is_not_null())
        conv = converted.select(
            pl.int_range(n, n + converted.height, dtype=pl.Int64).alias("p"),
            pl.lit("contact").alias("kind"),
            pl.col("converted_at").alias("created_date"),
            "company_ix",
            "first_name",
            "last_name",
            "owner_id",
            "engage",
            pl.lit("Opportunity").alias("lifecycle_stage"),
            "lead_source",
            pl.lit(reasons.HEALTHY).alias("base_reason"),
            "company",
            "domain",
            "industry",
            "email",
            pl.lit(None, dtype=schema.UTC_DATETIME).alias("converted_at"),
            pl.lit(None, dtype=schema.UTC_DATETIME).alias("mc_deleted_at"),
            pl.col("p").alias("converted_from"),
        )
        people = pl.concat(
            [base.with_columns(converted_from=pl.lit(None, dtype=pl.Int64)), conv], how="vertical"
        )
        # Ids follow creation order, as Salesforce's do.
        order = pl.col("created_date").rank("ordinal").over("kind").cast(pl.Int64)
        self.counters["contact"] = counter_start(self.seed, "contact")
        self.counters["lead"] = counter_start(self.seed, "lead")
        people = people.with_columns(
            id=pl.when(pl.col("kind") == "contact")
            .then(sf_ids("003", pl.lit(self.counters["contact"]) + order))
            .otherwise(sf_ids("00Q", pl.lit(self.counters["lead"]) + order)),
            subscriber_id=pl.col("p") + 31_000_000,
            in_sf=pl.col("base_reason") != reasons.UNKNOWN_ID,
            # Welcome Email: new records get it the day after they were created.
            welcome_batch=pl.when(
                pl.col("converted_from").is_null()
                & (pl.col("created_date") >= pl.lit(self.window_start))
            ).then(
                ((pl.col("created_date") - pl.lit(self.window_start)).dt.total_days() + 1).cast(
                    pl.Int64
                )
            ),
        )
        people = people.with_columns(
            mc_key=pl.when(pl.col("base_reason") == reasons.EMAIL_KEY)
            .then(pl.col("email"))
            .when(pl.col("base_reason") == reasons.ID15_KEY)
            .then(pl.col("id").str.slice(0, 15))
            .when(pl.col("base_reason") == reasons.DELETED_IN_MARKETING_CLOUD)
            .then(pl.lit(None, dtype=pl.String))
            .otherwise(pl.col("id")),
        )
        conv_ids = people.filter(pl.col("converted_from").is_not_null()).select(
            p=pl.col("converted_from"), converted_contact_id=pl.col("id")
        )
        self.people = people.join(conv_ids, on="p", how="left", maintain_order="left").sort("p")
        self.people = self.people.with_columns(
            suppressed_at=pl.lit(None, dtype=schema.UTC_DATETIME)
        )
        self.n_contacts = n_contacts
        self.n_leads = n_leads

    def company_names(self, n: int) -> dict[str, pl.Series]:
        ix = pl.int_range(0, n, eager=True).alias("ix").to_frame()
        a, b, c = len(COMPANY_FIRST), len(COMPANY_SECOND), len(COMPANY_SUFFIX)
        frame = ix.with_columns(
            first=pl.lit(pl.Series(COMPANY_FIRST)).gather((pl.col("ix") * 7 + 3) % a),
            second=pl.lit(pl.Series(COMPANY_SECOND)).gather(
                (pl.col("ix") // a * 11 + pl.col("ix")) % b
            ),
            suffix=pl.lit(pl.Series(COMPANY_SUFFIX)).gather((pl.col("ix") // (a * b)) % c),
            industry=index_pick(self.u(pl.col("ix"), "industry"), list(INDUSTRIES)),
        ).with_columns(
            name=pl.concat_str(["first", "second", "suffix"], separator=" "),
            domain=pl.concat_str(
                [
                    pl.col("first").str.to_lowercase(),
                    pl.col("second").str.to_lowercase(),
                    pl.lit(".example"),
                ]
            ),
        )
        return {k: frame[k] for k in ("name", "domain", "industry")}

    def build_campaigns(self) -> pl.DataFrame:
        start_date = self.window_start.date() - dt.timedelta(days=10)
        rows: list[dict[str, Any]] = []

        def add(
            key: str, name: str, ctype: str, owner: str, start: dt.date, status: str = "In Progress"
        ) -> None:
            rows.append(
                {
                    "key": key,
                    "name": name,
                    "type": ctype,
                    "owner_id": owner,
                    "start_date": start,
                    "status": status,
                }
            )

        mo = self.marketing_ops_id
        add("newsletter", f"Monthly Newsletter {self.as_of.year}", "Newsletter", mo, start_date)
        add("nurture-core", "Product Nurture - Core Track", "Nurture", mo, start_date)
        add("nurture-adv", "Product Nurture - Advanced Track", "Nurture", mo, start_date)
        for i, theme in enumerate(OUTREACH_THEMES):
            owner = self.rep_ids[(3 * i) % N_REPS]
            add(
                f"outreach-{i}",
                f"Sales Outreach - {theme}",
                "Sales Outreach",
                owner,
                start_date + dt.timedelta(days=3 * i),
            )
        add("journey", "Customer Onboarding Journey", "Journey", mo, start_date)
        for i, event in enumerate(EVENTS):
            add(
                f"event-{i}",
                f"{event} {self.as_of.year}",
                "Event",
                mo,
                start_date + dt.timedelta(days=40 * i),
            )
        add("welcome", "Welcome Program", "Welcome", mo, start_date)
        add(
            "announcement",
            "Northbeam 5.0 Launch",
            "Announcement",
            mo,
            self.as_of - dt.timedelta(days=14),
        )
        add(
            "webinar",
            "Pipeline Analytics Webinar",
            "Webinar",
            mo,
            self.as_of - dt.timedelta(days=60),
        )
        add("partner", "Partner Program Update", "Partner", mo, self.as_of - dt.timedelta(days=70))
        add(
            "tradeshow",
            f"Trade Show Leads {self.as_of.year}",
            "Trade Show",
            mo,
            start_date,
            "Completed",
        )
        assert len(rows) == 20
        start = self.take_counter("campaign", len(rows))
        frame = (
            pl.DataFrame(rows)
            .with_columns(
                id=sf_ids("701", pl.int_range(start, start + len(rows), dtype=pl.Int64)),
                created_date=pl.col("start_date")
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone("UTC")
                - pl.duration(days=7),
            )
            .with_columns(system_modstamp=pl.col("created_date"))
        )
        self.campaign_ids = dict(zip(frame["key"], frame["id"], strict=True))
        self.campaign_owner = dict(zip(frame["key"], frame["owner_id"], strict=True))
        self.campaign_start = dict(zip(frame["key"], frame["created_date"], strict=True))
        return schema.validate("campaigns", frame)

    def build_members(self) -> pl.DataFrame:
        """Members of the Sales Outreach campaigns: about 300 of the owner's records each."""
        frames = []
        for i in range(len(OUTREACH_THEMES)):
            key = f"outreach-{i}"
            owner = self.campaign_owner[key]
            pool = self.people.filter(
                (pl.col("owner_id") == owner)
                & pl.col("in_sf")
                & pl.col("converted_from").is_null()
                & (pl.col("created_date") < pl.lit(self.campaign_start[key]))
            )
            share = min(1.0, 300 * self.scale / max(1, pool.height))
            members = pool.filter(self.u(pl.col("p"), "member", key) < share).select(
                "p",
                "kind",
                person_id="id",
                campaign_key=pl.lit(key),
                created_date=pl.lit(self.campaign_start[key])
                + _secs(self.u(pl.col("p"), "mtime", key) * 86400 * 5),
            )
            frames.append(members)
        members = pl.concat(frames)
        start = self.take_counter("member", members.height)
        members = members.with_columns(
            id=sf_ids("00v", pl.int_range(start, start + members.height, dtype=pl.Int64)),
            campaign_id=pl.col("campaign_key").replace_strict(
                self.campaign_ids, return_dtype=pl.String
            ),
        )
        self.members = members
        return schema.validate(
            "campaign_members",
            members.select(
                "id",
                "campaign_id",
                contact_id=pl.when(pl.col("kind") == "contact").then(pl.col("person_id")),
                lead_id=pl.when(pl.col("kind") == "lead").then(pl.col("person_id")),
                status=pl.lit("Sent"),
                created_date=pl.col("created_date").dt.truncate("1s"),
                system_modstamp=pl.col("created_date").dt.truncate("1s"),
            ),
        )

    # --- the schedule -------------------------------------------------------------------------

    def at(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)

    def build_schedule(self) -> None:
        rng = self.rng
        start = self.window_start.date() + dt.timedelta(days=1)
        last_day = self.as_of - dt.timedelta(days=1)
        sends: list[_Send] = []
        # Newsletter: monthly, to everyone.
        for k in range(6):
            day = start + dt.timedelta(days=30 * k + 4)
            when = self.at(day, 14, rng.randrange(0, 30))
            sends.append(
                _Send(
                    "Monthly Newsletter",
                    f"Monthly Newsletter - {day:%B %Y}",
                    f"Northbeam News: {day:%B} highlights",
                    when,
                    "list",
                    "newsletter",
                    "everyone",
                )
            )
        # Product Nurture: weekly, ~3,000 in the early stages.
        week = 0
        day = start + dt.timedelta(days=2)
        while day <= last_day:
            topic = NURTURE_TOPICS[week % len(NURTURE_TOPICS)]
            sends.append(
                _Send(
                    "Product Nurture",
                    f"Product Nurture - {topic}",
                    f"{topic}: a 5-minute guide",
                    self.at(day, 15, rng.randrange(0, 60)),
                    "list",
                    "nurture-core" if week % 2 == 0 else "nurture-adv",
                    "nurture",
                )
            )
            week += 1
            day += dt.timedelta(days=7)
        # Sales Outreach: about twice a week, from rep-owned campaigns.
        day = start
        touch: dict[int, int] = {}
        while day <= last_day:
            if day.weekday() in (1, 3) and rng.random() < 0.95:
                i = rng.randrange(len(OUTREACH_THEMES))
                touch[i] = touch.get(i, 0) + 1
                sends.append(
                    _Send(
                        "Sales Outreach",
                        f"Sales Outreach - {OUTREACH_THEMES[i]} (touch {touch[i]})",
                        f"Quick question about your {OUTREACH_THEMES[i].lower()}",
                        self.at(day, 16, rng.randrange(0, 60)),
                        "list",
                        f"outreach-{i}",
                        "members",
                        audience_arg=rng.uniform(0.2, 1.0),
                    )
                )
            day += dt.timedelta(days=1)
        # Journey Onboarding: weekly, ~500 customers.
        day = start + dt.timedelta(days=(7 - start.weekday()) % 7)
        step = 0
        while day <= last_day:
            title = JOURNEY_STEPS[step % len(JOURNEY_STEPS)]
            sends.append(
                _Send(
                    "Journey Onboarding",
                    f"Journey Onboarding - {title}",
                    f"Getting started: {title.split(': ')[1]}",
                    self.at(day, 10, rng.randrange(0, 60)),
                    "list",
                    "journey",
                    "journey",
                )
            )
            step += 1
            day += dt.timedelta(days=7)
        # Event Invite: about monthly, ~5,000, an invitation and a reminder per event.
        for k in range(6):
            day = start + dt.timedelta(days=30 * k + 12)
            event = EVENTS[k // 2]
            label = "Invitation" if k % 2 == 0 else "Reminder"
            sends.append(
                _Send(
                    "Event Invite",
                    f"Event Invite - {event} {label}",
                    f"You're invited: {event}",
                    self.at(day, 13, rng.randrange(0, 60)),
                    "list",
                    f"event-{k // 2}",
                    "event",
                )
            )
        # Planted one-off sends.
        sends.append(
            _Send(
                "Webinar Follow-up",
                "Webinar Follow-up - Pipeline Analytics Recording",
                "The recording you asked for",
                self.at(self.as_of - dt.timedelta(days=40), 17),
                "list",
                "webinar",
                "webinar",
                tracking_disabled=True,
            )
        )
        sends.append(
            _Send(
                "Partner Update",
                "Partner Update - Q4 Partner Program",
                "What's new for partners",
                self.at(self.as_of - dt.timedelta(days=60), 15, 30),
                "csv",
                "partner",
                "csv",
            )
        )
        sends.append(
            _Send(
                "Product Announcement",
                "Product Announcement - Northbeam 5.0",
                "Introducing Northbeam 5.0",
                self.now - dt.timedelta(hours=3),
                "list",
                "announcement",
                "everyone",
                status="Sending",
            )
        )
        sends.sort(key=lambda s: s.date_sent)
        # The triggered Welcome Email: one job, one batch a day.
        welcome = _Send(
            "Welcome Email",
            "Welcome Email - Getting Started",
            "Welcome to Northbeam",
            self.at(start, 13),
            "triggered",
            "welcome",
            "welcome",
        )
        sends.insert(0, welcome)
        job = 1_350_000 + rng.randrange(0, 5000)
        number = 100 + rng.randrange(0, 50)
        for send in sends:
            job += rng.randrange(40, 900)
            send.job_id = job
            n_links = rng.randrange(3, 7)
            picks = rng.sample(range(1, len(LINK_POOL)), n_links - 1)
            # Every send carries the pricing link; /pricing clicks matter to sales.
            send.links = tuple(LINK_POOL[i] for i in [0, *picks])
            send.send_url_base = job * 10
            if send.kind == "list":
                number += 1
                send.email_send_number = number
        self.sends = sends

    # --- audiences ---------------------------------------------------------------------------

    def audience(self, send: _Send) -> pl.DataFrame:
        """Recipients of one send: people rows plus ``batch_id``, ``date_sent``, ``member_id``."""
        people = self.people
        p = pl.col("p")
        if send.audience == "welcome":
            # New records get the Welcome Email in the daily batch after their creation.
            first = self.window_start.date()
            people = people.filter(pl.col("welcome_batch").is_not_null()).with_columns(
                batch_id=pl.col("welcome_batch"),
                date_sent=pl.lit(self.at(first, 13)) + pl.duration(days=pl.col("welcome_batch")),
            )
            sent = pl.col("date_sent")
        else:
            sent = pl.lit(send.date_sent)
        alive = (
            (pl.col("created_date") < sent)
            & (pl.col("converted_at").is_null() | (pl.col("converted_at") > sent))
            & (pl.col("mc_deleted_at").is_null() | (pl.col("mc_deleted_at") > sent))
            & (pl.col("suppressed_at").is_null() | (pl.col("suppressed_at") > sent))
        )
        u = self.u(p, "audience", send.job_id)
        member_id = pl.lit(None, dtype=pl.String).alias("member_id")
        if send.audience == "everyone":
            frame = people.filter(alive).with_columns(member_id)
        elif send.audience == "nurture":
            pool = pl.col("lifecycle_stage").is_in(["Subscriber", "Lead", "MQL", "SQL"])
            frac = 3000 * self.scale / max(1, people.filter(pool).height)
            frame = people.filter(alive & pool & (u < frac)).with_columns(member_id)
        elif send.audience == "journey":
            pool = pl.col("lifecycle_stage") == "Customer"
            frac = 500 * self.scale / max(1, people.filter(pool).height)
            frame = people.filter(alive & pool & (u < frac)).with_columns(member_id)
        elif send.audience == "event":
            frac = 5000 * self.scale / people.height
            frame = people.filter(alive & (u < frac)).with_columns(member_id)
        elif send.audience == "webinar":
            frac = 2000 * self.scale / people.height
            frame = people.filter(alive & (u < frac)).with_columns(member_id)
        elif send.audience == "members":
            members = self.members.filter(
                (pl.col("campaign_key") == send.campaign_key)
                & (self.u(pl.col("p"), "audience", send.job_id) < send.audience_arg)
            ).select("p", member_id=pl.col("id"))
            frame = people.join(members, on="p", how="inner", maintain_order="left").filter(alive)
        elif send.audience == "welcome":
            frame = people.filter(
                alive & (pl.col("date_sent") < pl.lit(self.now - dt.timedelta(hours=20)))
            ).with_columns(member_id)
            # Ordered by batch so the sync queue sees each day's batch in turn.
            return frame.sort(["batch_id", "p"])
        elif send.audience == "csv":
            return self.csv_audience(send)
        else:  # pragma: no cover - the schedule only uses the names above
            raise ValueError(send.audience)
        return frame.with_columns(batch_id=pl.lit(0, dtype=pl.Int64), date_sent=sent)

    def csv_audience(self, send: _Send) -> pl.DataFrame:
        """An imported list of partner contacts: email addresses as keys, nobody in the org."""
        n = max(1, round(1500 * self.scale))
        q = pl.col("q")
        frame = pl.DataFrame({"q": pl.int_range(0, n, eager=True)}).with_columns(
            first_name=index_pick(self.u(q, "csv-first"), list(FIRST_NAMES)),
            last_name=index_pick(self.u(q, "csv-last"), list(LAST_NAMES)),
            partner=index_pick(
                self.u(q, "csv-partner"), [f"partner{i:02d}.example" for i in range(40)]
            ),
        )
        return frame.select(
            p=(pl.col("q") + (1 << 27)).cast(pl.Int64),
            kind=pl.lit("csv"),
            id=pl.lit(None, dtype=pl.String),
            email=pl.concat_str(
                [
                    pl.col("first_name").str.to_lowercase(),
                    pl.lit("."),
                    pl.col("last_name").str.to_lowercase(),
                    pl.col("q").cast(pl.String),
                    pl.lit("@"),
                    pl.col("partner"),
                ]
            ),
            owner_id=pl.lit(None, dtype=pl.String),
            engage=0.4 + 1.2 * self.u(q, "csv-engage"),
            base_reason=pl.lit(reasons.NOT_SALESFORCE_AUDIENCE),
            mc_deleted_at=pl.lit(None, dtype=schema.UTC_DATETIME),
            subscriber_id=pl.col("q") + 88_000_000,
            member_id=pl.lit(None, dtype=pl.String),
            batch_id=pl.lit(0, dtype=pl.Int64),
            date_sent=pl.lit(send.date_sent),
        ).with_columns(mc_key=pl.col("email"))

    # --- one send ----------------------------------------------------------------------------

    def run_send(self, send: _Send) -> None:
        """Generate one send, block by block, and record its totals."""
        programme = PROGRAMMES[send.programme]
        # Row-level reason before the sync: send-level modes first, then the person's.
        reason = pl.lit(reasons.TRACKING_OFF) if send.tracking_disabled else pl.col("base_reason")
        would = pl.col("reason").is_in(
            [reasons.HEALTHY, reasons.LEAD_CONVERTED, reasons.DELETED_IN_MARKETING_CLOUD]
        )
        rows = (
            self.audience(send)
            .lazy()
            .select(
                "p",
                "kind",
                pl.col("id").alias("recipient_id"),
                "email",
                "mc_key",
                "owner_id",
                "engage",
                "base_reason",
                "mc_deleted_at",
                "subscriber_id",
                "member_id",
                "batch_id",
                "date_sent",
                reason=reason,
            )
            .with_columns(would_have_ier=would)
            .with_columns(
                sync_ordinal=pl.when(pl.col("would_have_ier")).then(
                    pl.col("would_have_ier").cast(pl.Int64).cum_sum() - 1
                )
            )
            .collect(engine=ENGINE)
        )
        n_ier = int(rows["would_have_ier"].sum())
        if send.kind == "triggered":
            allocation = self.allocate_batches(rows)
        else:
            allocation = self.sync.allocate(send.date_sent, n_ier)
        send.recipients = rows.height
        totals = dict.fromkeys(
            (
                "number_sent",
                "number_hard_bounces",
                "number_soft_bounces",
                "number_unique_opens",
                "number_unique_clicks",
                "number_unsubscribed",
            ),
            0,
        )
        tracking_as_of: dt.datetime | None = None
        for offset in range(0, rows.height, BLOCK_ROWS):
            block = rows.slice(offset, BLOCK_ROWS)
            block_totals, block_tracking = self.simulate(send, programme, block, allocation)
            for key, value in block_totals.items():
                totals[key] += value
            if block_tracking is not None:
                tracking_as_of = max(tracking_as_of or block_tracking, block_tracking)
        send.totals = totals
        send.tracking_as_of = tracking_as_of

    def allocate_batches(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Sync allocation for a triggered send: each daily batch joins the queue when sent."""
        batches = (
            rows.lazy()
            .filter(pl.col("would_have_ier"))
            .group_by("batch_id")
            .agg(pl.col("date_sent").first(), pl.col("sync_ordinal").min().alias("first"), pl.len())
            .sort("batch_id")
            .collect(engine=ENGINE)
        )
        frames = []
        for first, sent, n in zip(
            batches["first"], batches["date_sent"], batches["len"], strict=True
        ):
            part = self.sync.allocate(sent, n)
            frames.append(part.with_columns(pl.col("start") + first))
        if not frames:
            return self.sync.allocate(self.now, 0)
        return pl.concat(frames)

    def simulate(
        self, send: _Send, programme: Programme, rows: pl.DataFrame, allocation: pl.DataFrame
    ) -> tuple[dict[str, int], dt.datetime | None]:
        """Engagement, IERs, links, tasks, extract rows and ground truth for a block of rows.

        Returns:
            The block's send totals and its latest IER ``tracking_as_of``.
        """
        job = send.job_id
        n_links = len(send.links)
        cutoff = self.cutoff_lit
        deleted = pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD
        rk = pl.col("rk")
        u = self.u
        open_p = (programme.open_rate * pl.col("engage")).clip(0, 0.95)
        rows = (
            rows.lazy()
            .with_columns(rk=pl.lit(job, dtype=pl.Int64) * (1 << 28) + pl.col("p"))
            .with_columns(
                bounce_cat=pl.when((u(rk, "bounce") < BOUNCE_RATE) & ~deleted).then(
                    pick(u(rk, "bcat"), list(BOUNCE_CATEGORIES), list(BOUNCE_WEIGHTS))
                ),
                first_open=pl.col("date_sent")
                + _secs(
                    60 + exponential(rk, salt(self.seed, "odelay"), 8 * 3600).clip(0, 10 * 86400)
                ),
                n_opens=1 + geometric_extra(rk, salt(self.seed, "ocount"), 0.9, 11),
                open_gap=exponential(rk, salt(self.seed, "ogap"), 20 * 3600) + 60,
                u_open=u(rk, "open"),
                u_click=u(rk, "click"),
                n_clicked=(1 + geometric_extra(rk, salt(self.seed, "nlinks"), 0.6, n_links - 1)),
                link_start=(u(rk, "lstart") * n_links).floor().cast(pl.Int64),
                u_unsub=u(rk, "unsub"),
                unsub_delay=60 + u(rk, "unsub-delay") * 1800,
                bounce_delay=30 + u(rk, "bdelay") * 900,
            )
            .with_columns(
                date_bounced=pl.when(pl.col("bounce_cat").is_not_null()).then(
                    pl.col("date_sent") + _secs(pl.col("bounce_delay"))
                ),
                opened_any=pl.col("bounce_cat").is_null() & (pl.col("u_open") < open_p),
            )
            .with_columns(
                # What happened (Marketing Cloud's view) by the cutoff.
                mc_opened=pl.col("opened_any") & (pl.col("first_open") <= cutoff),
                clicker=pl.col("opened_any")
                & (pl.col("u_click") < programme.click_rate / programme.open_rate),
                date_unsub=pl.when(
                    pl.col("opened_any") & (pl.col("u_unsub") < UNSUB_GIVEN_OPEN) & ~deleted
                ).then(pl.col("first_open") + _secs(pl.col("unsub_delay"))),
            )
            .with_columns(
                date_unsub=pl.when(pl.col("date_unsub") <= cutoff).then(pl.col("date_unsub")),
                # IERs see events up to the cutoff; for people deleted in Marketing Cloud only
                # those before the deletion.
                ier_cut=pl.when(deleted)
                .then(pl.min_horizontal(cutoff, pl.col("mc_deleted_at")))
                .otherwise(cutoff),
                ier_created=self.sync_created(allocation),
            )
            .with_columns(
                reason=pl.when(pl.col("would_have_ier") & pl.col("ier_created").is_null())
                .then(pl.lit(reasons.IN_SYNC_WINDOW))
                .otherwise(pl.col("reason")),
                has_ier=pl.col("would_have_ier") & pl.col("ier_created").is_not_null(),
            )
            .with_columns(
                ier_id=pl.when(pl.col("has_ier")).then(
                    sf_ids(
                        "a0R",
                        pl.lit(self.counters["ier"], dtype=pl.Int64)
                        + pl.col("has_ier").cast(pl.Int64).cum_sum()
                        - 1,
                    )
                )
            )
            .collect(engine=ENGINE)
        )
        self.counters["ier"] += int(rows["has_ier"].sum())
        lazy = rows.lazy()
        # Opens: one event row per open.
        opens = (
            lazy.filter(pl.col("opened_any"))
            .select("rk", "first_open", "open_gap", j=pl.int_ranges(0, pl.col("n_opens")))
            .explode("j")
            .with_columns(
                t=pl.col("first_open")
                + _secs(
                    pl.col("j") * pl.col("open_gap")
                    + pl.when(pl.col("j") > 0)
                    .then(u(rk * 16 + pl.col("j"), "ojit") * 3600)
                    .otherwise(0)
                )
            )
            .filter(pl.col("t") <= cutoff)
            .select("rk", "t")
        )
        # Clicks: per clicked link, one event row per click.
        clicks = (
            lazy.filter(pl.col("clicker"))
            .select("rk", "first_open", "link_start", m=pl.int_ranges(0, pl.col("n_clicked")))
            .explode("m")
            .with_columns(link=(pl.col("link_start") + pl.col("m")) % n_links)
            .with_columns(lk=pl.col("rk") * 8 + pl.col("link"))
            .with_columns(n=1 + geometric_extra(pl.col("lk"), salt(self.seed, "nclick"), 0.7, 7))
            .with_columns(k=pl.int_ranges(0, pl.col("n")))
            .explode("k")
            .with_columns(
                t=pl.col("first_open")
                + _secs(
                    20
                    + pl.col("m") * 40
                    + u(pl.col("lk"), "cfirst") * 240
                    + pl.col("k")
                    * exponential(
                        pl.col("lk") * 16 + pl.col("k"), salt(self.seed, "cgap"), 12 * 3600
                    )
                )
            )
            .filter(pl.col("t") <= cutoff)
            .select("rk", "link", "t")
        )
        # Each event frame is used several times below: materialise once.
        opens, clicks = pl.collect_all([opens, clicks], engine=ENGINE)
        # The IER view of the engagement.
        ier_rows = lazy.filter(pl.col("has_ier"))
        ier_links = (
            clicks.lazy()
            .join(
                ier_rows.select("rk", "ier_cut", "ier_created", "ier_id"),
                on="rk",
                how="inner",
                maintain_order="left",
            )
            .filter(pl.col("t") <= pl.col("ier_cut"))
            .group_by(["rk", "link"])
            .agg(
                total_clicks=pl.len().cast(pl.Int32),
                first_clicked=pl.col("t").min(),
                last_clicked=pl.col("t").max(),
                ier_id=pl.col("ier_id").first(),
                ier_created=pl.col("ier_created").first(),
            )
            .sort(["rk", "link"])
        ).collect(engine=ENGINE)
        per_ier = (
            ier_links.lazy()
            .group_by("rk")
            .agg(
                total_clicks=pl.col("total_clicks").sum().cast(pl.Int32),
                unique_clicks=pl.len().cast(pl.Int32),
                last_click=pl.col("last_clicked").max(),
                first_click=pl.col("first_clicked").min(),
            )
        )
        last_event = pl.max_horizontal(
            pl.when(pl.col("ier_opened")).then(pl.col("first_open")),
            pl.col("last_click"),
            pl.col("date_bounced"),
            pl.col("ier_unsub"),
        )
        iers = (
            ier_rows.join(per_ier, on="rk", how="left", maintain_order="left")
            .with_columns(
                pl.col("total_clicks").fill_null(0),
                pl.col("unique_clicks").fill_null(0),
                ier_opened=pl.col("opened_any") & (pl.col("first_open") <= pl.col("ier_cut")),
                ier_unsub=pl.when(pl.col("date_unsub") <= pl.col("ier_cut")).then(
                    pl.col("date_unsub")
                ),
            )
            .with_columns(
                tracking_as_of=pl.max_horizontal(
                    pl.col("ier_created"), self.sync.ceil_expr(last_event)
                )
            )
        )
        outputs: dict[str, pl.LazyFrame] = {
            "individual_email_results": self.ier_frame(send, programme, iers),
            "tasks": self.task_frame(send, programme, iers),
            "ground_truth": self.ground_truth_frame(send, lazy),
            "_totals": self.totals_frame(lazy, clicks.lazy()),
            "_tracking": iers.select(pl.col("tracking_as_of").max()),
            "_suppress": self.suppress_frame(lazy),
            **self.extract_frames(send, lazy, opens.lazy(), clicks.lazy()),
        }
        if ier_links.height:
            outputs["individual_links"] = self.link_frame(send, ier_links.lazy())
        frames = dict(
            zip(outputs, pl.collect_all(list(outputs.values()), engine=ENGINE), strict=True)
        )
        self.counters["link"] += ier_links.height
        self.counters["task"] += frames["tasks"].height
        for name, frame in frames.items():
            if name.endswith(".csv"):
                self.writer.csv(name, frame)
            elif not name.startswith("_"):
                self.writer.part(name, frame)
        counts = frames["ground_truth"].group_by("reason").len()
        for reason, n in zip(counts["reason"], counts["len"], strict=True):
            self.planted[reason] += int(n)
        self.apply_suppression(frames["_suppress"])
        totals = {k: int(v) for k, v in frames["_totals"].row(0, named=True).items()}
        return totals, frames["_tracking"].item()

    def sync_created(self, allocation: pl.DataFrame) -> pl.Expr:
        """``ier_created`` per row from its sync ordinal; null where no cycle took it yet."""
        if allocation.height == 0:
            return pl.lit(None, dtype=schema.UTC_DATETIME)
        starts = allocation["start"]
        ordinal = pl.col("sync_ordinal")
        idx = (pl.lit(starts).search_sorted(ordinal, side="right").cast(pl.Int64) - 1).clip(0)
        within = ordinal - pl.lit(starts).gather(idx)
        slot = pl.lit(allocation["slot"]).gather(idx) + within
        cycle = pl.lit(allocation["cycle"]).gather(idx)
        in_range = ordinal.is_not_null() & (within < pl.lit(allocation["count"]).gather(idx))
        per_record = SYNC_WRITE_MINUTES * 60.0 / self.sync.throughput
        created = cycle + _secs(slot.cast(pl.Float64) * per_record)
        return pl.when(in_range).then(created)

    def totals_frame(self, rows: pl.LazyFrame, clicks: pl.LazyFrame) -> pl.LazyFrame:
        """Marketing Cloud's send totals for the block (every recipient counts)."""
        return rows.select(
            number_sent=pl.len().cast(pl.Int64),
            number_hard_bounces=(pl.col("bounce_cat") == "Hard bounce").sum().cast(pl.Int64),
            number_soft_bounces=pl.col("bounce_cat")
            .is_in(["Soft bounce", "Block bounce"])
            .sum()
            .cast(pl.Int64),
            number_unique_opens=pl.col("mc_opened").sum().cast(pl.Int64),
            number_unsubscribed=pl.col("date_unsub").is_not_null().sum().cast(pl.Int64),
        ).join(
            clicks.select(number_unique_clicks=pl.col("rk").n_unique().cast(pl.Int64)),
            how="cross",
        )

    def send_record_ids(self, send: _Send) -> tuple[str | None, str | None]:
        if send.kind == "triggered":
            return None, self.triggered_send_id
        if send.kind == "list":
            return self.email_send_ids[send.job_id], None
        return None, None

    def ier_frame(self, send: _Send, programme: Programme, ier: pl.LazyFrame) -> pl.LazyFrame:
        email_send_id, triggered_id = self.send_record_ids(send)
        frame = ier.select(
            id=pl.col("ier_id"),
            name=pl.lit(send.email_name),
            contact_id=pl.when(pl.col("kind") == "contact").then(pl.col("recipient_id")),
            lead_id=pl.when(pl.col("kind") == "lead").then(pl.col("recipient_id")),
            email_send_id=pl.lit(email_send_id, dtype=pl.String),
            triggered_send_id=pl.lit(triggered_id, dtype=pl.String),
            campaign_member_id=pl.col("member_id"),
            merge_id=pl.concat_str(
                [
                    pl.lit(str(send.job_id)),
                    pl.col("batch_id").cast(pl.String),
                    pl.col("subscriber_id").cast(pl.String),
                ],
                separator="-",
            ),
            job_id=pl.lit(send.job_id, dtype=pl.Int64),
            batch_id=pl.col("batch_id"),
            list_id=pl.lit(programme.list_id, dtype=pl.Int64),
            subscriber_id=pl.col("subscriber_id").cast(pl.Int64),
            subscriber_key=pl.lit(None, dtype=pl.String),
            from_name=pl.lit(COMPANY),
            from_address=pl.lit(f"news@{COMPANY_DOMAIN}"),
            subject_line=pl.lit(send.subject),
            date_sent=pl.col("date_sent"),
            opened=pl.col("ier_opened"),
            date_opened=pl.when(pl.col("ier_opened")).then(pl.col("first_open")),
            open_count=pl.lit(None, dtype=pl.Int32),
            last_opened=pl.lit(None, dtype=schema.UTC_DATETIME),
            total_clicks=pl.col("total_clicks"),
            unique_clicks=pl.col("unique_clicks"),
            clicked=pl.col("unique_clicks") > 0,
            hard_bounce=(pl.col("bounce_cat") == "Hard bounce").fill_null(False),
            soft_bounce=pl.col("bounce_cat")
            .is_in(["Soft bounce", "Block bounce"])
            .fill_null(False),
            date_bounced=pl.col("date_bounced"),
            unsubscribed=pl.col("ier_unsub").is_not_null(),
            date_unsubscribed=pl.col("ier_unsub"),
            tracking_as_of=pl.col("tracking_as_of"),
            created_date=pl.col("ier_created"),
            system_modstamp=pl.col("tracking_as_of"),
        )
        return schema.validate("individual_email_results", frame)

    def link_frame(self, send: _Send, links: pl.LazyFrame) -> pl.LazyFrame:
        start = self.counters["link"]
        urls = pl.Series([url for url, _ in send.links], dtype=pl.String)
        names = pl.Series([name for _, name in send.links], dtype=pl.String)
        send_url_id = pl.lit(send.send_url_base, dtype=pl.Int64) + pl.col("link")
        ceil = self.sync.ceil_expr
        frame = links.select(
            id=sf_ids("a0L", pl.int_range(start, start + pl.len(), dtype=pl.Int64)),
            individual_email_result_id=pl.col("ier_id"),
            job_id=pl.lit(send.job_id, dtype=pl.Int64),
            batch_id=pl.lit(None, dtype=pl.Int64),
            subscriber_key=pl.lit(None, dtype=pl.String),
            link_url=pl.lit(urls).gather(pl.col("link")),
            link_name=pl.lit(names).gather(pl.col("link")),
            total_clicks=pl.col("total_clicks"),
            last_clicked=pl.col("last_clicked"),
            exact_target_link_id=send_url_id.cast(pl.String),
            unique_link_id=pl.concat_str(
                [pl.col("ier_id"), send_url_id.cast(pl.String)], separator="-"
            ),
            created_date=pl.max_horizontal(pl.col("ier_created"), ceil(pl.col("first_clicked"))),
            system_modstamp=pl.max_horizontal(pl.col("ier_created"), ceil(pl.col("last_clicked"))),
        )
        return schema.validate("individual_links", frame)

    def task_frame(self, send: _Send, programme: Programme, ier: pl.LazyFrame) -> pl.LazyFrame:
        """Follow-up Tasks the record owners logged after seeing the engagement on the IER."""
        if programme.follow_on == "opened":
            engaged, moment = pl.col("ier_opened"), pl.col("first_open")
        else:
            engaged, moment = pl.col("unique_clicks") > 0, pl.col("first_click")
        lo, hi = programme.follow_days
        rk = pl.col("rk")
        created = (
            pl.max_horizontal(moment, pl.col("ier_created"))
            + _secs((lo + self.u(rk, "tdelay") * (hi - lo)) * 86400)
        ).dt.truncate("1s")
        start = self.counters["task"]
        campaign_id = self.campaign_ids.get(send.campaign_key or "")
        frame = (
            ier.filter(engaged & (self.u(rk, "task") < programme.follow_rate))
            .with_columns(created=created)
            .filter(pl.col("created") < self.now_lit)
            .select(
                id=sf_ids("00T", pl.int_range(start, start + pl.len(), dtype=pl.Int64)),
                who_id=pl.col("recipient_id"),
                # Salesforce allows no WhatId on a Task whose WhoId is a Lead.
                what_id=pl.when(pl.col("kind") == "contact").then(
                    pl.lit(campaign_id, dtype=pl.String)
                ),
                owner_id=pl.col("owner_id"),
                subject=pl.lit(f"Follow up: {send.email_name}"),
                status=pl.when(pl.col("created") < pl.lit(self.now - dt.timedelta(days=3)))
                .then(pl.lit("Completed"))
                .otherwise(pl.lit("Open")),
                type=pick(self.u(rk, "ttype"), ["Call", "Email"], [0.6, 0.4]),
                activity_date=pl.col("created").dt.date(),
                created_date=pl.col("created"),
                system_modstamp=pl.col("created"),
            )
        )
        return schema.validate("tasks", frame)

    def mc_date(self, expr: pl.Expr) -> pl.Expr:
        return expr.dt.convert_time_zone(MC_TIME_ZONE).dt.strftime(MC_DATE_FORMAT)

    def extract_frames(
        self, send: _Send, rows: pl.LazyFrame, opens: pl.LazyFrame, clicks: pl.LazyFrame
    ) -> dict[str, pl.LazyFrame]:
        """The block's rows of each Tracking Extract event file."""
        deleted = pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD
        ts_key = WELCOME_TS_KEY if send.kind == "triggered" else ""
        list_id = PROGRAMMES[send.programme].list_id
        info = rows.select(
            "rk",
            ClientID=pl.lit(CLIENT_ID, dtype=pl.Int64),
            SendID=pl.lit(send.job_id, dtype=pl.Int64),
            # A subscriber deleted in Marketing Cloud: blank key and address on later events.
            SubscriberKey=pl.when(~deleted).then(pl.col("mc_key")),
            EmailAddress=pl.when(~deleted).then(pl.col("email")),
            SubscriberID=pl.col("subscriber_id").cast(pl.Int64),
            ListID=pl.lit(list_id, dtype=pl.Int64),
            BatchID=pl.col("batch_id"),
            TriggeredSendExternalKey=pl.lit(ts_key),
        )

        def with_info(events: pl.LazyFrame, columns: tuple[str, ...]) -> pl.LazyFrame:
            return events.join(info, on="rk", how="left", maintain_order="left").select(columns)

        if send.kind == "triggered":
            sent_date = self.mc_date(pl.col("date_sent"))
        else:
            # One date for the whole send: format it once, not per row.
            sent_date = pl.lit(pl.select(self.mc_date(pl.lit(send.date_sent))).item())
        sent = rows.filter(~deleted).select("rk", EventDate=sent_date, EventType=pl.lit("Sent"))
        o = opens.select("rk", EventDate=self.mc_date(pl.col("t")), EventType=pl.lit("Open"))
        urls = pl.Series([url for url, _ in send.links], dtype=pl.String)
        names = pl.Series([name for _, name in send.links], dtype=pl.String)
        pool = [url for url, _ in LINK_POOL]
        url_ids = pl.Series([1000 + pool.index(url) for url, _ in send.links], dtype=pl.Int64)
        c = clicks.select(
            "rk",
            EventDate=self.mc_date(pl.col("t")),
            EventType=pl.lit("Click"),
            SendURLID=pl.lit(send.send_url_base, dtype=pl.Int64) + pl.col("link"),
            URLID=pl.lit(url_ids).gather(pl.col("link")),
            URL=pl.lit(urls).gather(pl.col("link")),
            Alias=pl.lit(names).gather(pl.col("link")),
        )
        b = rows.filter(pl.col("bounce_cat").is_not_null()).select(
            "rk",
            EventDate=self.mc_date(pl.col("date_bounced")),
            EventType=pl.lit("Bounce"),
            BounceCategory=pl.col("bounce_cat"),
            SMTPCode=pl.col("bounce_cat").replace_strict(SMTP_CODES, return_dtype=pl.Int64),
            BounceReason=pl.col("bounce_cat").replace_strict(
                BOUNCE_REASONS, return_dtype=pl.String
            ),
        )
        un = rows.filter(pl.col("date_unsub").is_not_null()).select(
            "rk", EventDate=self.mc_date(pl.col("date_unsub")), EventType=pl.lit("Unsub")
        )
        return {
            "Sent.csv": with_info(sent, EVENT_COLUMNS),
            "Opens.csv": with_info(o, EVENT_COLUMNS),
            "Clicks.csv": with_info(c, CLICK_COLUMNS),
            "Bounces.csv": with_info(b, BOUNCE_COLUMNS),
            "Unsubs.csv": with_info(un, EVENT_COLUMNS),
        }

    def ground_truth_frame(self, send: _Send, rows: pl.LazyFrame) -> pl.LazyFrame:
        deleted = pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD
        return rows.select(
            job_id=pl.lit(send.job_id, dtype=pl.Int64),
            batch_id=pl.col("batch_id").cast(pl.Int64),
            subscriber_key=pl.when(~deleted).then(pl.col("mc_key")),
            recipient_id=pl.col("recipient_id"),
            email=pl.col("email"),
            reason=pl.col("reason"),
            has_ier=pl.col("has_ier"),
            ier_id=pl.col("ier_id"),
        )

    def suppress_frame(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """People who unsubscribed or hard-bounced in this block, and when."""
        return (
            rows.filter(pl.col("p") < self.people.height)
            .select(
                "p",
                t=pl.min_horizontal(
                    pl.col("date_unsub"),
                    pl.when(pl.col("bounce_cat") == "Hard bounce").then(pl.col("date_bounced")),
                ),
            )
            .filter(pl.col("t").is_not_null())
        )

    def apply_suppression(self, gone: pl.DataFrame) -> None:
        """Keep those people out of later sends."""
        if gone.height == 0:
            return
        current = self.people["suppressed_at"].gather(gone["p"])
        new = pl.DataFrame({"a": current, "b": gone["t"]}).select(pl.min_horizontal("a", "b"))
        column = self.people["suppressed_at"].clone().scatter(gone["p"], new.to_series())
        self.people = self.people.with_columns(column.alias("suppressed_at"))

    # --- finishing ---------------------------------------------------------------------------

    def assign_send_records(self) -> None:
        list_sends = [s for s in self.sends if s.kind == "list"]
        start = self.take_counter("send", len(list_sends) + 1)
        self.email_send_ids = {s.job_id: sf_id("a0S", start + i) for i, s in enumerate(list_sends)}
        self.triggered_send_id = sf_id("a0T", start + len(list_sends))

    def email_sends_table(self) -> pl.DataFrame:
        rows = []
        for s in self.sends:
            if s.kind != "list":
                continue
            tracking = s.tracking_as_of or self.sync.cycle_time(
                self.sync.cycle_index(s.date_sent + SYNC_LAG)
            )
            rows.append(
                {
                    "id": self.email_send_ids[s.job_id],
                    "name": f"SD-{s.email_send_number:07d}",
                    "job_id": s.job_id,
                    "campaign_id": self.campaign_ids[s.campaign_key],
                    "date_sent": s.date_sent,
                    "email_name": s.email_name,
                    "subject_line": s.subject,
                    "send_status": s.status,
                    "individual_tracking_disabled": s.tracking_disabled,
                    "tracking_as_of": tracking,
                    **s.totals,
                    "created_date": s.date_sent,
                    "system_modstamp": tracking,
                }
            )
        return schema.validate("email_sends", pl.DataFrame(rows).sort("id"))

    def triggered_sends_table(self) -> pl.DataFrame:
        s = next(s for s in self.sends if s.kind == "triggered")
        created = s.date_sent - dt.timedelta(days=30)
        frame = pl.DataFrame(
            [
                {
                    "id": self.triggered_send_id,
                    "name": s.email_name,
                    "individual_tracking_disabled": False,
                    "tracking_as_of": s.tracking_as_of,
                    **s.totals,
                    "created_date": created,
                    "system_modstamp": s.tracking_as_of or created,
                }
            ]
        )
        return schema.validate("triggered_sends", frame)

    def send_jobs(self) -> pl.DataFrame:
        rows = []
        for s in self.sends:
            rows.append(
                {
                    "ClientID": CLIENT_ID,
                    "SendID": s.job_id,
                    "FromName": COMPANY,
                    "FromEmail": f"news@{COMPANY_DOMAIN}",
                    "sent": s.date_sent,
                    "Subject": s.subject,
                    "EmailName": s.email_name,
                    "TriggeredSendExternalKey": WELCOME_TS_KEY if s.kind == "triggered" else "",
                    "SendDefinitionExternalKey": "" if s.kind == "triggered" else f"sd-{s.job_id}",
                    "JobStatus": "Sending" if s.status == "Sending" else "Complete",
                    "PreviewURL": f"https://view.example.com/?j={s.job_id}",
                    "IsMultipart": "True",
                    "Additional": "",
                }
            )
        frame = pl.DataFrame(rows).with_columns(
            SchedTime=self.mc_date(pl.col("sent") - pl.duration(minutes=10)),
            SentTime=self.mc_date(pl.col("sent")),
        )
        return frame.select(SENDJOB_COLUMNS)

    def unrelated_tasks(self) -> None:
        n = max(1, round(2000 * self.scale))
        people = self.people.filter(pl.col("in_sf"))
        i = pl.col("i")
        picks = pl.DataFrame({"i": pl.int_range(0, n, eager=True)}).with_columns(
            row=(self.u(i, "utask-who") * people.height).floor().cast(pl.Int64),
            created=(
                pl.lit(self.now) - _secs(self.u(i, "utask-when") * WINDOW_DAYS * 86400)
            ).dt.truncate("1s"),
            subject=index_pick(self.u(i, "utask-subject"), list(UNRELATED_TASK_SUBJECTS)),
            type=pick(self.u(i, "utask-type"), ["Call", "Email", "Meeting"], [5, 3, 2]),
        )
        who = people.select("id", "owner_id", "kind")[picks["row"]]
        start = self.take_counter("task", n)
        frame = pl.concat([picks, who], how="horizontal").select(
            id=sf_ids("00T", pl.int_range(start, start + pl.len(), dtype=pl.Int64)),
            who_id=pl.col("id"),
            what_id=pl.lit(None, dtype=pl.String),
            owner_id=pl.col("owner_id"),
            subject=pl.col("subject"),
            status=pl.when(pl.col("created") < pl.lit(self.now - dt.timedelta(days=3)))
            .then(pl.lit("Completed"))
            .otherwise(pl.lit("Open")),
            type=pl.col("type"),
            activity_date=pl.col("created").dt.date(),
            created_date=pl.col("created"),
            system_modstamp=pl.col("created"),
        )
        self.writer.part("tasks", schema.validate("tasks", frame))

    def contacts_table(self) -> pl.DataFrame:
        people = self.people.filter((pl.col("kind") == "contact") & pl.col("in_sf"))
        return schema.validate(
            "contacts",
            people.select(
                "id",
                "first_name",
                "last_name",
                "email",
                "company",
                "industry",
                "lifecycle_stage",
                "lead_source",
                "owner_id",
                "created_date",
                system_modstamp=pl.col("created_date"),
            ).sort("id"),
        )

    def leads_table(self) -> pl.DataFrame:
        people = self.people.filter(pl.col("kind") == "lead")
        converted = pl.col("converted_at").is_not_null()
        return schema.validate(
            "leads",
            people.select(
                "id",
                "first_name",
                "last_name",
                "email",
                "company",
                "industry",
                "lifecycle_stage",
                "lead_source",
                status=pl.when(converted)
                .then(pl.lit("Closed - Converted"))
                .otherwise(
                    pick(
                        self.u(pl.col("p"), "lead-status"),
                        ["Open - Not Contacted", "Working - Contacted", "Closed - Not Converted"],
                        [4, 4, 2],
                    )
                ),
                owner_id="owner_id",
                is_converted=converted,
                converted_contact_id="converted_contact_id",
                converted_date=pl.col("converted_at").dt.date(),
                created_date="created_date",
                system_modstamp=pl.coalesce("converted_at", "created_date"),
            ).sort("id"),
        )

    def run(self) -> dict[str, Any]:
        users = self.build_users()
        self.build_people()
        campaigns = self.build_campaigns()
        members = self.build_members()
        self.build_schedule()
        self.assign_send_records()
        for send in self.sends:
            self.run_send(send)
        self.unrelated_tasks()
        self.writer.csv("SendJobs.csv", self.send_jobs())
        self.writer.finish()
        out = self.folder
        small = {
            "users": users,
            "contacts": self.contacts_table(),
            "leads": self.leads_table(),
            "campaigns": campaigns,
            "campaign_members": members.sort("id"),
            "email_sends": self.email_sends_table(),
            "triggered_sends": self.triggered_sends_table(),
        }
        # The zip is written by a second thread while this one merges the big tables.
        zip_members = [(n, self.writer.folder / "extract" / n) for n in EXTRACT_FILES]
        with ThreadPoolExecutor(max_workers=1) as pool:
            zipped = pool.submit(_write_zip, out / "tracking_extract.zip", zip_members)
            counts = self.write_tables(small)
            zipped.result()
        extract_rows = {name: self.writer.rows.get(name, 0) for name in EXTRACT_FILES}
        planted = {k: v for k, v in self.planted.items()}
        return {"counts": counts, "extract_rows": extract_rows, "planted": planted}

    def write_tables(self, small: dict[str, pl.DataFrame]) -> dict[str, int]:
        """Write the ten tables and the ground truth; return their row counts."""
        out = self.folder
        counts: dict[str, int] = {}
        for name, frame in small.items():
            frame.write_parquet(out / f"{name}.parquet")
            counts[name] = frame.height
        for name in ("individual_email_results", "individual_links", "tasks"):
            counts[name] = self.writer.merge(
                name, out / f"{name}.parquet", schema.table(name).empty()
            )
        counts["ground_truth"] = self.writer.merge(
            "ground_truth", out / "ground_truth.parquet", pl.DataFrame(schema=GROUND_TRUTH_SCHEMA)
        )
        return {name: counts[name] for name in [*schema.TABLES, "ground_truth"]}

    def manifest(self, result: dict[str, Any]) -> dict[str, Any]:
        return {
            "generator": "ierkit.demo",
            "format": 1,
            "scale": self.scale,
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "as_of_instant": self.now.isoformat(),
            "polars_version": pl.__version__,
            "sync": {
                "frequency": "Hourly",
                "minute": SYNC_MINUTE,
                "throughput_per_cycle": self.sync.throughput,
                "last_cycle": self.cutoff.isoformat(),
            },
            "programmes": list(PROGRAMMES),
            "counts": result["counts"],
            "planted": result["planted"],
            "extract_rows": result["extract_rows"],
            "sends": [
                {
                    "job_id": s.job_id,
                    "email_name": s.email_name,
                    "programme": s.programme,
                    "kind": s.kind,
                    "date_sent": s.date_sent.isoformat(),
                    "recipients": s.recipients,
                    "tracking_disabled": s.tracking_disabled,
                    "status": s.status,
                }
                for s in self.sends
            ],
        }


def _write_zip(path: Path, members: list[tuple[str, Path]]) -> None:
    """A zip whose bytes depend only on the members' bytes: fixed dates, order and level."""
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        for name, source in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            # Level 1: the extract is large and mostly repetitive text; speed matters more.
            # The attribute is ``compress_level`` from Python 3.13 on, ``_compresslevel`` before.
            level_attr = "compress_level" if hasattr(info, "compress_level") else "_compresslevel"
            setattr(info, level_attr, 1)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            # Known up front, so zipfile's ZIP64 decision is the same on every run.
            info.file_size = source.stat().st_size
            with open(source, "rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)


# --- public entry points -------------------------------------------------------------------------


def _is_demo_folder(path: Path) -> bool:
    manifest = path / "demo.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("generator") == "ierkit.demo"
    except (OSError, ValueError):
        return False


def _check_scale(scale: float) -> None:
    if not (scale > 0) or scale > 500:
        raise DemoError(f"scale must be above 0 and at most 500, got {scale}")


def _generate_into(folder: Path, *, scale: float, seed: int, as_of: dt.date) -> DemoSummary:
    """Generate into ``folder`` (which must not exist)."""
    started = time.perf_counter()
    folder.mkdir(parents=True)
    generator = _Generator(folder, scale=scale, seed=seed, as_of=as_of)
    try:
        result = generator.run()
    finally:
        shutil.rmtree(folder / "_work", ignore_errors=True)
    (folder / "demo.json").write_text(json.dumps(generator.manifest(result), indent=2) + "\n")
    return DemoSummary(
        path=folder,
        scale=scale,
        seed=seed,
        as_of=as_of,
        counts=result["counts"],
        planted=result["planted"],
        extract_rows=result["extract_rows"],
        sends=len(generator.sends),
        seconds=time.perf_counter() - started,
    )


def generate(
    out: str | os.PathLike[str],
    *,
    scale: float = 1.0,
    seed: int = DEMO_SEED,
    as_of: dt.date = DEMO_AS_OF,
) -> DemoSummary:
    """Generate the demo org into the folder ``out``.

    The org is written into a temporary sibling folder and then moved into place; a previous
    demo output at ``out`` is replaced, anything else is refused.

    Args:
        out: Folder to write; must be absent, empty, or a previous demo output.
        scale: Size multiplier for contacts, leads and recipients (users and campaigns stay).
        seed: Random seed; the same seed, as-of date and scale give byte-identical files.
        as_of: The demo's today: sends cover the six months before it.

    Returns:
        A summary with the counts of every table, planted reason and extract file.

    Raises:
        DemoError: When ``out`` holds something other than a previous demo output, or the scale
            is out of range.
    """
    _check_scale(scale)
    target = Path(out).expanduser().absolute()
    if target.exists():
        if not target.is_dir():
            raise DemoError(f"{target} exists and is not a folder; choose another --out")
        if any(target.iterdir()) and not _is_demo_folder(target):
            raise DemoError(
                f"{target} is not empty and holds no previous demo (no demo.json from ierkit demo);"
                " refusing to overwrite it"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        summary = _generate_into(tmp, scale=scale, seed=seed, as_of=as_of)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dataclasses.replace(summary, path=target)


def fingerprint(*, scale: float = 1.0, seed: int = DEMO_SEED, as_of: dt.date = DEMO_AS_OF) -> str:
    """Hash of the generator's source, the polars version and the parameters."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for source in sorted(here.glob("demo*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    digest.update(f"{pl.__version__}|{scale!r}|{seed}|{as_of.isoformat()}".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_demo(*, scale: float = 1.0, seed: int = DEMO_SEED, as_of: dt.date = DEMO_AS_OF) -> Path:
    """The folder of a cached demo org, generated on first use.

    Cached under ``ierkit._files.cache_dir() / f"demo-{fingerprint}"``; the fingerprint covers the
    generator's source, so a changed generator never serves a stale cache. Safe when several
    processes ask at once: one generates (others wait on a lock file), and the result is
    generated into a temporary folder and renamed into place.
    """
    from ierkit._files import cache_dir

    _check_scale(scale)
    root = cache_dir()
    final = root / f"demo-{fingerprint(scale=scale, seed=seed, as_of=as_of)}"
    if _is_demo_folder(final):
        return final
    with _locked(root / f".{final.name}.lock"):
        if _is_demo_folder(final):
            return final
        tmp = root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _generate_into(tmp, scale=scale, seed=seed, as_of=as_of)
            try:
                os.rename(tmp, final)
            except OSError:
                # Another process (without the lock, e.g. on another host) won: keep theirs.
                if not _is_demo_folder(final):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
