"""The Salesforce records a block of recipients leaves behind.

IERs, Individual Links, follow-up Tasks, and the ground truth of why each recipient has or lacks
an IER.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

import polars as pl

from ierkit import reasons, schema
from ierkit.demo._catalogue import Programme
from ierkit.demo._params import COMPANY, COMPANY_DOMAIN, Params, secs
from ierkit.demo._random import pick, sf_ids
from ierkit.demo._schedule import Send, SendRecords
from ierkit.demo._sync import Sync

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


def ier_frame(
    send: Send, programme: Programme, records: SendRecords, ier: pl.LazyFrame
) -> pl.LazyFrame:
    """The IER rows of a block (recipients the sync has written an IER for)."""
    email_send_id, triggered_id = records.ids(send)
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
        soft_bounce=pl.col("bounce_cat").is_in(["Soft bounce", "Block bounce"]).fill_null(False),
        date_bounced=pl.col("date_bounced"),
        unsubscribed=pl.col("ier_unsub").is_not_null(),
        date_unsubscribed=pl.col("ier_unsub"),
        tracking_as_of=pl.col("tracking_as_of"),
        created_date=pl.col("ier_created"),
        system_modstamp=pl.col("tracking_as_of"),
    )
    return schema.validate("individual_email_results", frame)


def link_frame(send: Send, sync: Sync, start: int, links: pl.LazyFrame) -> pl.LazyFrame:
    """The Individual Link rows of a block, Ids counted from ``start``."""
    urls = pl.Series([url for url, _ in send.links], dtype=pl.String)
    names = pl.Series([name for _, name in send.links], dtype=pl.String)
    send_url_id = pl.lit(send.send_url_base, dtype=pl.Int64) + pl.col("link")
    ceil = sync.ceil_expr
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


def task_frame(
    params: Params,
    send: Send,
    programme: Programme,
    campaign_ids: Mapping[str, str],
    start: int,
    ier: pl.LazyFrame,
) -> pl.LazyFrame:
    """Follow-up Tasks the record owners logged after seeing the engagement on the IER."""
    if programme.follow_on == "opened":
        engaged, moment = pl.col("ier_opened"), pl.col("first_open")
    else:
        engaged, moment = pl.col("unique_clicks") > 0, pl.col("first_click")
    lo, hi = programme.follow_days
    rk = pl.col("rk")
    created = (
        pl.max_horizontal(moment, pl.col("ier_created"))
        + secs((lo + params.u(rk, "tdelay") * (hi - lo)) * 86400)
    ).dt.truncate("1s")
    campaign_id = campaign_ids.get(send.campaign_key or "")
    frame = (
        ier.filter(engaged & (params.u(rk, "task") < programme.follow_rate))
        .with_columns(created=created)
        .filter(pl.col("created") < pl.lit(params.now))
        .select(
            id=sf_ids("00T", pl.int_range(start, start + pl.len(), dtype=pl.Int64)),
            who_id=pl.col("recipient_id"),
            # Salesforce allows no WhatId on a Task whose WhoId is a Lead.
            what_id=pl.when(pl.col("kind") == "contact").then(pl.lit(campaign_id, dtype=pl.String)),
            owner_id=pl.col("owner_id"),
            subject=pl.lit(f"Follow up: {send.email_name}"),
            status=pl.when(pl.col("created") < pl.lit(params.now - dt.timedelta(days=3)))
            .then(pl.lit("Completed"))
            .otherwise(pl.lit("Open")),
            type=pick(params.u(rk, "ttype"), ["Call", "Email"], [0.6, 0.4]),
            activity_date=pl.col("created").dt.date(),
            created_date=pl.col("created"),
            system_modstamp=pl.col("created"),
        )
    )
    return schema.validate("tasks", frame)


def ground_truth_frame(send: Send, rows: pl.LazyFrame) -> pl.LazyFrame:
    """Why each recipient of the block has or lacks an IER."""
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
