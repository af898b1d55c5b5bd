"""The org tables written once the sends have run: send records, contacts, leads, other Tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from ierkit import schema
from ierkit.demo._params import SYNC_LAG, WINDOW_DAYS, Counters, Params, secs
from ierkit.demo._random import index_pick, pick, sf_ids
from ierkit.demo._schedule import Send, SendRecords
from ierkit.demo._simulation import SendOutcome
from ierkit.demo._sync import Sync
from ierkit.demo._words import UNRELATED_TASK_SUBJECTS


def email_sends_table(
    sends: tuple[Send, ...],
    outcomes: tuple[SendOutcome, ...],
    records: SendRecords,
    campaign_ids: Mapping[str, str],
) -> pl.DataFrame:
    """One Email Send record per list send, with Marketing Cloud's totals."""
    rows = []
    for s, outcome in zip(sends, outcomes, strict=True):
        if s.kind != "list":
            continue
        tracking = outcome.tracking_as_of or Sync.cycle_time(
            Sync.cycle_index(s.date_sent + SYNC_LAG)
        )
        rows.append(
            {
                "id": records.email_send_ids[s.job_id],
                "name": f"SD-{s.email_send_number:07d}",
                "job_id": s.job_id,
                "campaign_id": campaign_ids[s.campaign_key or ""],
                "date_sent": s.date_sent,
                "email_name": s.email_name,
                "subject_line": s.subject,
                "send_status": s.status,
                "individual_tracking_disabled": s.tracking_disabled,
                "dedupe_subscribers": s.dedupe,
                "tracking_as_of": tracking,
                **outcome.totals,
                "created_date": s.date_sent,
                "system_modstamp": tracking,
            }
        )
    return schema.validate("email_sends", pl.DataFrame(rows).sort("id"))


def triggered_sends_table(
    sends: tuple[Send, ...], outcomes: tuple[SendOutcome, ...], records: SendRecords
) -> pl.DataFrame:
    """The one Triggered Send record (the Welcome Email)."""
    s, outcome = next((s, o) for s, o in zip(sends, outcomes, strict=True) if s.kind == "triggered")
    created = s.date_sent - dt.timedelta(days=30)
    frame = pl.DataFrame(
        [
            {
                "id": records.triggered_send_id,
                "name": s.email_name,
                "individual_tracking_disabled": False,
                "tracking_as_of": outcome.tracking_as_of,
                **outcome.totals,
                "created_date": created,
                "system_modstamp": outcome.tracking_as_of or created,
            }
        ]
    )
    return schema.validate("triggered_sends", frame)


def unrelated_tasks(
    params: Params, people: pl.DataFrame, counters: Counters
) -> tuple[pl.DataFrame, Counters]:
    """Tasks the reps logged for other reasons (calls, proposals): noise for the matching."""
    n = max(1, round(2000 * params.scale))
    people = people.filter(pl.col("in_sf"))
    i = pl.col("i")
    picks = pl.DataFrame({"i": pl.int_range(0, n, eager=True)}).with_columns(
        row=(params.u(i, "utask-who") * people.height).floor().cast(pl.Int64),
        created=(
            pl.lit(params.now) - secs(params.u(i, "utask-when") * WINDOW_DAYS * 86400)
        ).dt.truncate("1s"),
        subject=index_pick(params.u(i, "utask-subject"), list(UNRELATED_TASK_SUBJECTS)),
        type=pick(params.u(i, "utask-type"), ["Call", "Email", "Meeting"], [5, 3, 2]),
    )
    who = people.select("id", "owner_id", "kind")[picks["row"]]
    start, counters = counters.take("task", n)
    frame = pl.concat([picks, who], how="horizontal").select(
        id=sf_ids("00T", pl.int_range(start, start + pl.len(), dtype=pl.Int64)),
        who_id=pl.col("id"),
        what_id=pl.lit(None, dtype=pl.String),
        owner_id=pl.col("owner_id"),
        subject=pl.col("subject"),
        status=pl.when(pl.col("created") < pl.lit(params.now - dt.timedelta(days=3)))
        .then(pl.lit("Completed"))
        .otherwise(pl.lit("Open")),
        type=pl.col("type"),
        activity_date=pl.col("created").dt.date(),
        created_date=pl.col("created"),
        system_modstamp=pl.col("created"),
    )
    return schema.validate("tasks", frame), counters


def contacts_table(people: pl.DataFrame) -> pl.DataFrame:
    """The contacts in Salesforce, by Id."""
    people = people.filter((pl.col("kind") == "contact") & pl.col("in_sf"))
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


def leads_table(params: Params, people: pl.DataFrame) -> pl.DataFrame:
    """The leads, converted ones closed, by Id."""
    people = people.filter(pl.col("kind") == "lead")
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
                    params.u(pl.col("p"), "lead-status"),
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
