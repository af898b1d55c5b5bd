"""Who receives each send: the audience rules of the programmes, and the imported partner list."""

from __future__ import annotations

import datetime as dt

import polars as pl

from ierkit import reasons, schema
from ierkit.demo._params import Params, at
from ierkit.demo._random import index_pick
from ierkit.demo._schedule import Send
from ierkit.demo._words import FIRST_NAMES, LAST_NAMES


def audience(
    params: Params, people: pl.DataFrame, members: pl.DataFrame, send: Send
) -> pl.DataFrame:
    """Recipients of one send: people rows plus ``batch_id``, ``date_sent``, ``member_id``.

    Args:
        params: The generation's parameters.
        people: The people as of this send (``suppressed_at`` set by earlier sends).
        members: Campaign members with person row ``p`` and ``campaign_key``.
        send: The send.
    """
    if send.audience == "welcome":
        # New records get the Welcome Email in the daily batch after their creation.
        first = params.window_start.date()
        people = people.filter(pl.col("welcome_batch").is_not_null()).with_columns(
            batch_id=pl.col("welcome_batch"),
            date_sent=pl.lit(at(first, 13)) + pl.duration(days=pl.col("welcome_batch")),
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
    # Drawn per address holder: people sharing an address fall in the same audiences.
    u = params.u(pl.col("address_p"), "audience", send.job_id)
    member_id = pl.lit(None, dtype=pl.String).alias("member_id")
    if send.audience == "everyone":
        frame = people.filter(alive).with_columns(member_id)
    elif send.audience == "nurture":
        pool = pl.col("lifecycle_stage").is_in(["Subscriber", "Lead", "MQL", "SQL"])
        frac = 3000 * params.scale / max(1, people.filter(pool).height)
        frame = people.filter(alive & pool & (u < frac)).with_columns(member_id)
    elif send.audience == "journey":
        pool = pl.col("lifecycle_stage") == "Customer"
        frac = 500 * params.scale / max(1, people.filter(pool).height)
        frame = people.filter(alive & pool & (u < frac)).with_columns(member_id)
    elif send.audience == "event":
        frac = 5000 * params.scale / people.height
        frame = people.filter(alive & (u < frac)).with_columns(member_id)
    elif send.audience == "webinar":
        frac = 2000 * params.scale / people.height
        frame = people.filter(alive & (u < frac)).with_columns(member_id)
    elif send.audience == "members":
        chosen = (
            members.join(people.select("p", "address_p"), on="p", how="left")
            .filter(
                (pl.col("campaign_key") == send.campaign_key)
                & (params.u(pl.col("address_p"), "audience", send.job_id) < send.audience_arg)
            )
            .select("p", member_id=pl.col("id"))
        )
        frame = people.join(chosen, on="p", how="inner", maintain_order="left").filter(alive)
    elif send.audience == "welcome":
        frame = people.filter(
            alive & (pl.col("date_sent") < pl.lit(params.now - dt.timedelta(hours=20)))
        ).with_columns(member_id)
        # Ordered by batch so the sync queue sees each day's batch in turn.
        return frame.sort(["batch_id", "p"])
    elif send.audience == "csv":
        return csv_audience(params, send)
    else:  # pragma: no cover - the schedule only uses the names above
        raise ValueError(send.audience)
    return frame.with_columns(batch_id=pl.lit(0, dtype=pl.Int64), date_sent=sent)


def csv_audience(params: Params, send: Send) -> pl.DataFrame:
    """An imported list of partner contacts: email addresses as keys, nobody in the org."""
    n = max(1, round(1500 * params.scale))
    q = pl.col("q")
    frame = pl.DataFrame({"q": pl.int_range(0, n, eager=True)}).with_columns(
        first_name=index_pick(params.u(q, "csv-first"), list(FIRST_NAMES)),
        last_name=index_pick(params.u(q, "csv-last"), list(LAST_NAMES)),
        partner=index_pick(
            params.u(q, "csv-partner"), [f"partner{i:02d}.example" for i in range(40)]
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
        engage=0.4 + 1.2 * params.u(q, "csv-engage"),
        base_reason=pl.lit(reasons.NOT_SALESFORCE_AUDIENCE),
        mc_deleted_at=pl.lit(None, dtype=schema.UTC_DATETIME),
        subscriber_id=pl.col("q") + 88_000_000,
        member_id=pl.lit(None, dtype=pl.String),
        batch_id=pl.lit(0, dtype=pl.Int64),
        date_sent=pl.lit(send.date_sent),
    ).with_columns(mc_key=pl.col("email"), address_p=pl.col("p"))
