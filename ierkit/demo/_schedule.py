"""The send schedule: six months of sends from the programmes, plus three planted one-offs.

``build_schedule`` draws every send's time, job id and links from one seeded generator, in a
fixed order; ``assign_send_records`` gives the sends their Salesforce send record Ids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Mapping

from ierkit.demo._catalogue import (
    EVENTS,
    JOURNEY_STEPS,
    LINK_POOL,
    NURTURE_TOPICS,
    OUTREACH_THEMES,
)
from ierkit.demo._params import Counters, Params, at
from ierkit.demo._random import salt, sf_id


@dataclasses.dataclass(frozen=True)
class Send:
    """One send (job) of the demo, before its recipients are generated."""

    programme: str
    email_name: str
    subject: str
    date_sent: dt.datetime
    kind: str  # "list", "triggered" or "csv"
    campaign_key: str | None
    audience: str  # how recipients are chosen (see ``_audience.audience``)
    audience_arg: float | None = None
    tracking_disabled: bool = False
    status: str = "Completed"
    job_id: int = 0
    links: tuple[tuple[str, str], ...] = ()
    send_url_base: int = 0
    email_send_number: int = 0

    @property
    def dedupe(self) -> bool:
        """ "Dedupe Subscribers" on the send: on by default; off for the (personal) event
        invitations; triggered sends never deduplicate."""
        return self.kind == "list" and self.programme != "Event Invite"


@dataclasses.dataclass(frozen=True)
class SendRecords:
    """The Salesforce send records: an Email Send per list send (by job id), one Triggered Send."""

    email_send_ids: Mapping[int, str]
    triggered_send_id: str

    def ids(self, send: Send) -> tuple[str | None, str | None]:
        """The send's (email send Id, triggered send Id); neither for an imported-list send."""
        if send.kind == "triggered":
            return None, self.triggered_send_id
        if send.kind == "list":
            return self.email_send_ids[send.job_id], None
        return None, None


def assign_send_records(
    sends: tuple[Send, ...], counters: Counters
) -> tuple[SendRecords, Counters]:
    """Ids of the send records, in schedule order, the Triggered Send last."""
    list_sends = [s for s in sends if s.kind == "list"]
    start, counters = counters.take("send", len(list_sends) + 1)
    email_send_ids = {s.job_id: sf_id("a0S", start + i) for i, s in enumerate(list_sends)}
    return SendRecords(email_send_ids, sf_id("a0T", start + len(list_sends))), counters


def build_schedule(params: Params) -> tuple[Send, ...]:
    """Every send of the demo, the triggered Welcome Email first, then by time sent."""
    rng = random.Random(salt(params.seed, "schedule"))
    start = params.window_start.date() + dt.timedelta(days=1)
    last_day = params.as_of - dt.timedelta(days=1)
    sends: list[Send] = []
    # Newsletter: monthly, to everyone.
    for k in range(6):
        day = start + dt.timedelta(days=30 * k + 4)
        when = at(day, 14, rng.randrange(0, 30))
        sends.append(
            Send(
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
            Send(
                "Product Nurture",
                f"Product Nurture - {topic}",
                f"{topic}: a 5-minute guide",
                at(day, 15, rng.randrange(0, 60)),
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
                Send(
                    "Sales Outreach",
                    f"Sales Outreach - {OUTREACH_THEMES[i]} (touch {touch[i]})",
                    f"Quick question about your {OUTREACH_THEMES[i].lower()}",
                    at(day, 16, rng.randrange(0, 60)),
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
            Send(
                "Journey Onboarding",
                f"Journey Onboarding - {title}",
                f"Getting started: {title.split(': ')[1]}",
                at(day, 10, rng.randrange(0, 60)),
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
            Send(
                "Event Invite",
                f"Event Invite - {event} {label}",
                f"You're invited: {event}",
                at(day, 13, rng.randrange(0, 60)),
                "list",
                f"event-{k // 2}",
                "event",
            )
        )
    # Planted one-off sends.
    sends.append(
        Send(
            "Webinar Follow-up",
            "Webinar Follow-up - Pipeline Analytics Recording",
            "The recording you asked for",
            at(params.as_of - dt.timedelta(days=40), 17),
            "list",
            "webinar",
            "webinar",
            tracking_disabled=True,
        )
    )
    sends.append(
        Send(
            "Partner Update",
            "Partner Update - Q4 Partner Program",
            "What's new for partners",
            at(params.as_of - dt.timedelta(days=60), 15, 30),
            "csv",
            "partner",
            "csv",
        )
    )
    sends.append(
        Send(
            "Product Announcement",
            "Product Announcement - Northbeam 5.0",
            "Introducing Northbeam 5.0",
            params.now - dt.timedelta(hours=3),
            "list",
            "announcement",
            "everyone",
            status="Sending",
        )
    )
    sends.sort(key=lambda s: s.date_sent)
    # The triggered Welcome Email: one job, one batch a day.
    welcome = Send(
        "Welcome Email",
        "Welcome Email - Getting Started",
        "Welcome to Northbeam",
        at(start, 13),
        "triggered",
        "welcome",
        "welcome",
    )
    sends.insert(0, welcome)
    job = 1_350_000 + rng.randrange(0, 5000)
    number = 100 + rng.randrange(0, 50)
    numbered = []
    for send in sends:
        job += rng.randrange(40, 900)
        n_links = rng.randrange(3, 7)
        picks = rng.sample(range(1, len(LINK_POOL)), n_links - 1)
        if send.kind == "list":
            number += 1
        numbered.append(
            dataclasses.replace(
                send,
                job_id=job,
                # Every send carries the pricing link; /pricing clicks matter to sales.
                links=tuple(LINK_POOL[i] for i in [0, *picks]),
                send_url_base=job * 10,
                email_send_number=number if send.kind == "list" else 0,
            )
        )
    return tuple(numbered)
