"""The demo's fixed facts (company, sizes, rates) and the frozen values every step reads.

``Params`` is what one generation is asked for (scale, seed, as-of date) plus what follows from
it; ``Counters`` hands out Salesforce Id counters. Both are frozen: a step that takes Ids
returns the advanced ``Counters`` with its result instead of changing shared state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Final

import polars as pl

from ierkit.clock import UTC
from ierkit.demo._random import counter_start, salt, uniform

DEMO_SEED: Final = 42
DEMO_AS_OF: Final = dt.date(2026, 11, 20)
#: Engine for the many small per-send queries (start-up cost matters more than parallelism).
ENGINE: Final = "in-memory"

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

#: The Id counters a generation advances (contacts and leads number their own rows).
COUNTER_NAMES: Final = ("ier", "link", "task", "member", "send", "user", "campaign")


def as_of_instant(as_of: dt.date) -> dt.datetime:
    """The demo's "now": the as-of date at 12:00 UTC."""
    return dt.datetime(as_of.year, as_of.month, as_of.day, 12, tzinfo=UTC)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """``day`` at ``hour:minute`` UTC."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def secs(expr: pl.Expr) -> pl.Expr:
    """A duration of ``expr`` whole seconds (fractions dropped)."""
    return pl.duration(seconds=expr.floor().cast(pl.Int64))


@dataclasses.dataclass(frozen=True)
class Params:
    """What one generation is asked for, and the instants that follow from it."""

    scale: float
    seed: int
    as_of: dt.date

    @property
    def now(self) -> dt.datetime:
        """The demo's "now" (``as_of_instant``)."""
        return as_of_instant(self.as_of)

    @property
    def window_start(self) -> dt.datetime:
        """Start of the six months of sends."""
        return self.now - dt.timedelta(days=WINDOW_DAYS)

    def u(self, key: pl.Expr, *stream: object) -> pl.Expr:
        """A uniform draw per row of ``key`` from the random stream named ``stream``."""
        return uniform(key, salt(self.seed, *stream))


@dataclasses.dataclass(frozen=True)
class Counters:
    """Where each object's next Salesforce Id counter is."""

    next: Mapping[str, int]

    @classmethod
    def start(cls, seed: int) -> Counters:
        """The first counter of every object, from the seed."""
        return cls({name: counter_start(seed, name) for name in COUNTER_NAMES})

    def __getitem__(self, name: str) -> int:
        return self.next[name]

    def take(self, name: str, n: int) -> tuple[int, Counters]:
        """Reserve ``n`` counters of ``name``: the first of them, and the advanced counters."""
        start = self.next[name]
        return start, Counters({**self.next, name: start + n})
