"""The people of the demo org: users, contacts and leads (with planted traits), campaigns, members.

Each step takes frozen values and returns a new one (plus the advanced Id ``Counters``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from ierkit import reasons, schema
from ierkit.demo._catalogue import EVENTS, OUTREACH_THEMES
from ierkit.demo._params import (
    BASE_CONTACTS,
    BASE_LEADS,
    COMPANY_DOMAIN,
    N_REPS,
    RATE_DELETED_IN_MC,
    RATE_EMAIL_KEY,
    RATE_ID15_KEY,
    RATE_LEAD_CONVERTED,
    RATE_UNKNOWN_ID,
    WINDOW_DAYS,
    Counters,
    Params,
    secs,
)
from ierkit.demo._random import counter_start, index_pick, pick, sf_id, sf_ids
from ierkit.demo._words import (
    COMPANY_FIRST,
    COMPANY_SECOND,
    COMPANY_SUFFIX,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    LEAD_SOURCES,
    LIFECYCLE_STAGES,
    REP_NAMES,
)


@dataclasses.dataclass(frozen=True)
class Users:
    """The ``users`` table and the roles the other steps need."""

    table: pl.DataFrame
    rep_ids: tuple[str, ...]
    marketing_ops_id: str
    integration_id: str


@dataclasses.dataclass(frozen=True)
class Campaigns:
    """The ``campaigns`` table and, per campaign key, its Id, owner and creation instant."""

    table: pl.DataFrame
    ids: Mapping[str, str]
    owner: Mapping[str, str]
    start: Mapping[str, dt.datetime]


@dataclasses.dataclass(frozen=True)
class Members:
    """The ``campaign_members`` table, and the members with person row (``p``) and campaign key."""

    table: pl.DataFrame
    frame: pl.DataFrame


@dataclasses.dataclass(frozen=True)
class Population:
    """Everyone in the org before any send: users, people (one row per ``p``), campaigns."""

    users: Users
    #: Contacts and leads, one frame (``p`` = row index), with their planted traits.
    people: pl.DataFrame
    campaigns: Campaigns
    members: Members


def build_population(params: Params, counters: Counters) -> tuple[Population, Counters]:
    """Users, people, campaigns and campaign members, in the order their Ids are taken."""
    users, counters = build_users(params, counters)
    people = build_people(params, users)
    campaigns, counters = build_campaigns(params, users, counters)
    members, counters = build_members(params, people, campaigns, counters)
    return Population(users, people, campaigns, members), counters


def build_users(params: Params, counters: Counters) -> tuple[Users, Counters]:
    """The sales reps, Marketing Ops and the Connect integration user."""
    names = list(REP_NAMES[:N_REPS])
    names += ["Marketing Ops", "MC Connect Integration"]
    start, counters = counters.take("user", len(names))
    ids = [sf_id("005", start + i) for i in range(len(names))]
    emails = [n.lower().replace(" ", ".") + "@" + COMPANY_DOMAIN for n in names]
    created = [params.now - dt.timedelta(days=900 + 17 * i) for i in range(len(names))]
    users = pl.DataFrame(
        {
            "id": ids,
            "name": names,
            "email": emails,
            "is_active": [i != 7 for i in range(len(names))],  # one rep has left
            # Two sales teams: the first two reps manage the others, half each.
            "manager_id": [_manager(ids, i) for i in range(len(names))],
            "time_zone": [DEMO_TIME_ZONES[i % len(DEMO_TIME_ZONES)] for i in range(len(names))],
            "created_date": created,
            "system_modstamp": created,
        }
    )
    return Users(
        table=schema.validate("users", users),
        rep_ids=tuple(ids[:N_REPS]),
        marketing_ops_id=ids[N_REPS],
        integration_id=ids[N_REPS + 1],
    ), counters


#: The demo users' time zones (Salesforce TimeZoneSidKey values), taken in turn.
DEMO_TIME_ZONES = ("America/New_York", "America/Chicago", "Europe/London", "America/Los_Angeles")


def _manager(ids: list[str], index: int) -> str | None:
    """The demo's reporting line: reps 0 and 1 lead; the others report to one of them."""
    if index < 2 or index >= N_REPS:
        return None
    return ids[index % 2]


def build_people(params: Params, users: Users) -> pl.DataFrame:
    """Contacts and leads (one frame, ``p`` = row index), with their planted traits."""
    n_contacts = max(1, round(BASE_CONTACTS * params.scale))
    n_leads = max(1, round(BASE_LEADS * params.scale))
    n = n_contacts + n_leads
    now = pl.lit(params.now)
    p = pl.col("p")
    is_contact = p < n_contacts
    u_reason = params.u(p, "reason")
    u_new = params.u(p, "new")
    days_ago = (
        pl.when(u_new < pl.when(is_contact).then(0.10).otherwise(0.20))
        .then(params.u(p, "age") * WINDOW_DAYS)
        .otherwise(WINDOW_DAYS + params.u(p, "age") * 1280)
    )
    n_companies = max(50, n // 8)
    base = pl.DataFrame({"p": pl.int_range(0, n, eager=True)}).with_columns(
        kind=pl.when(is_contact).then(pl.lit("contact")).otherwise(pl.lit("lead")),
        created_date=(now - secs(days_ago * 86400)).dt.truncate("1s"),
        company_ix=(params.u(p, "company") * n_companies).floor().cast(pl.Int64),
        first_name=index_pick(params.u(p, "first"), list(FIRST_NAMES)),
        last_name=index_pick(params.u(p, "last"), list(LAST_NAMES)),
        owner_id=index_pick(params.u(p, "owner"), list(users.rep_ids)),
        engage=0.4 + 1.2 * params.u(p, "engage"),
        lifecycle_stage=pl.when(is_contact)
        .then(pick(params.u(p, "stage"), list(LIFECYCLE_STAGES), [5, 2, 2, 1, 3, 7]))
        .otherwise(
            pick(params.u(p, "stage"), list(LIFECYCLE_STAGES), [5, 6, 3, 2, 0.0001, 0.0001])
        ),
        lead_source=pick(params.u(p, "source"), list(LEAD_SOURCES), [5, 3, 2, 1, 3, 2, 2]),
        base_reason=pl.when(is_contact)
        .then(
            pl.when(u_reason < RATE_EMAIL_KEY)
            .then(pl.lit(reasons.EMAIL_KEY))
            .when(u_reason < RATE_EMAIL_KEY + RATE_ID15_KEY)
            .then(pl.lit(reasons.ID15_KEY))
            .when(u_reason < RATE_EMAIL_KEY + RATE_ID15_KEY + RATE_UNKNOWN_ID)
            .then(pl.lit(reasons.UNKNOWN_ID))
            .when(u_reason < RATE_EMAIL_KEY + RATE_ID15_KEY + RATE_UNKNOWN_ID + RATE_DELETED_IN_MC)
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
    company = company_names(params, n_companies)
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
        .then((now - secs((2 + params.u(p, "convert") * 148) * 86400)).dt.truncate("1s"))
        .otherwise(None),
        mc_deleted_at=pl.when(pl.col("base_reason") == reasons.DELETED_IN_MARKETING_CLOUD)
        .then((now - secs((1 + params.u(p, "mcdelete") * 119) * 86400)).dt.truncate("1s"))
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
    contact_start = counter_start(params.seed, "contact")
    lead_start = counter_start(params.seed, "lead")
    people = people.with_columns(
        id=pl.when(pl.col("kind") == "contact")
        .then(sf_ids("003", pl.lit(contact_start) + order))
        .otherwise(sf_ids("00Q", pl.lit(lead_start) + order)),
        subscriber_id=pl.col("p") + 31_000_000,
        in_sf=pl.col("base_reason") != reasons.UNKNOWN_ID,
        # Welcome Email: new records get it the day after they were created.
        welcome_batch=pl.when(
            pl.col("converted_from").is_null()
            & (pl.col("created_date") >= pl.lit(params.window_start))
        ).then(
            ((pl.col("created_date") - pl.lit(params.window_start)).dt.total_days() + 1).cast(
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
    people = people.join(conv_ids, on="p", how="left", maintain_order="left").sort("p")
    return people.with_columns(suppressed_at=pl.lit(None, dtype=schema.UTC_DATETIME))


def company_names(params: Params, n: int) -> dict[str, pl.Series]:
    ix = pl.int_range(0, n, eager=True).alias("ix").to_frame()
    a, b, c = len(COMPANY_FIRST), len(COMPANY_SECOND), len(COMPANY_SUFFIX)
    frame = ix.with_columns(
        first=pl.lit(pl.Series(COMPANY_FIRST)).gather((pl.col("ix") * 7 + 3) % a),
        second=pl.lit(pl.Series(COMPANY_SECOND)).gather(
            (pl.col("ix") // a * 11 + pl.col("ix")) % b
        ),
        suffix=pl.lit(pl.Series(COMPANY_SUFFIX)).gather((pl.col("ix") // (a * b)) % c),
        industry=index_pick(params.u(pl.col("ix"), "industry"), list(INDUSTRIES)),
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


def build_campaigns(params: Params, users: Users, counters: Counters) -> tuple[Campaigns, Counters]:
    """The twenty campaigns the sends belong to."""
    start_date = params.window_start.date() - dt.timedelta(days=10)
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

    mo = users.marketing_ops_id
    add("newsletter", f"Monthly Newsletter {params.as_of.year}", "Newsletter", mo, start_date)
    add("nurture-core", "Product Nurture - Core Track", "Nurture", mo, start_date)
    add("nurture-adv", "Product Nurture - Advanced Track", "Nurture", mo, start_date)
    for i, theme in enumerate(OUTREACH_THEMES):
        owner = users.rep_ids[(3 * i) % N_REPS]
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
            f"{event} {params.as_of.year}",
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
        params.as_of - dt.timedelta(days=14),
    )
    add(
        "webinar",
        "Pipeline Analytics Webinar",
        "Webinar",
        mo,
        params.as_of - dt.timedelta(days=60),
    )
    add("partner", "Partner Program Update", "Partner", mo, params.as_of - dt.timedelta(days=70))
    add(
        "tradeshow",
        f"Trade Show Leads {params.as_of.year}",
        "Trade Show",
        mo,
        start_date,
        "Completed",
    )
    assert len(rows) == 20
    start, counters = counters.take("campaign", len(rows))
    frame = (
        pl.DataFrame(rows)
        .with_columns(
            id=sf_ids("701", pl.int_range(start, start + len(rows), dtype=pl.Int64)),
            created_date=pl.col("start_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
            - pl.duration(days=7),
        )
        .with_columns(system_modstamp=pl.col("created_date"))
    )
    return Campaigns(
        table=schema.validate("campaigns", frame),
        ids=dict(zip(frame["key"], frame["id"], strict=True)),
        owner=dict(zip(frame["key"], frame["owner_id"], strict=True)),
        start=dict(zip(frame["key"], frame["created_date"], strict=True)),
    ), counters


def build_members(
    params: Params, people: pl.DataFrame, campaigns: Campaigns, counters: Counters
) -> tuple[Members, Counters]:
    """Members of the Sales Outreach campaigns: about 300 of the owner's records each."""
    frames = []
    for i in range(len(OUTREACH_THEMES)):
        key = f"outreach-{i}"
        owner = campaigns.owner[key]
        pool = people.filter(
            (pl.col("owner_id") == owner)
            & pl.col("in_sf")
            & pl.col("converted_from").is_null()
            & (pl.col("created_date") < pl.lit(campaigns.start[key]))
        )
        share = min(1.0, 300 * params.scale / max(1, pool.height))
        members = pool.filter(params.u(pl.col("p"), "member", key) < share).select(
            "p",
            "kind",
            person_id="id",
            campaign_key=pl.lit(key),
            created_date=pl.lit(campaigns.start[key])
            + secs(params.u(pl.col("p"), "mtime", key) * 86400 * 5),
        )
        frames.append(members)
    members = pl.concat(frames)
    start, counters = counters.take("member", members.height)
    members = members.with_columns(
        id=sf_ids("00v", pl.int_range(start, start + members.height, dtype=pl.Int64)),
        campaign_id=pl.col("campaign_key").replace_strict(campaigns.ids, return_dtype=pl.String),
    )
    table = schema.validate(
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
    return Members(table=table, frame=members), counters
