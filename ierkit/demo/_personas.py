"""Who engages how: the planted engagement personas and shared email addresses.

- *Gateway*: every recipient at a company whose security gateway scans mail (``GATEWAY_RATE``
  of email domains): a scanner opens each delivered email (1-2 s) and clicks every link 2-10 s
  after delivery (Salesforce KB 000271790); the person behind it still opens and clicks as
  anyone does, later.
- *Apple Mail*: ``APPLE_RATE`` of people: Mail Privacy Protection opens each delivered email
  5-55 s after delivery (KB 000389505); they never click.
- *Fast human*: ``FAST_RATE`` of people: when they click, the first click is on one link
  30-58 s after delivery, and they come back hours later.
- Everyone else engages as the programme's rates say.
- *Shared address*: ``SHARED_RATE`` of healthy Contacts and Leads take the email address of the
  first person of the same company, kind and lifecycle stage; on a send with "Dedupe
  Subscribers" on, only the first of them is sent to.

The truth of each recipient goes to ``signal_truth.parquet`` (``SIGNAL_TRUTH_SCHEMA``).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from ierkit import reasons
from ierkit.demo._params import Params

GATEWAY_RATE: Final = 0.02
APPLE_RATE: Final = 0.08
FAST_RATE: Final = 0.06
SHARED_RATE: Final = 0.04

GATEWAY: Final = "gateway"
APPLE: Final = "apple_mail"
FAST: Final = "fast_human"
ORDINARY: Final = "ordinary"

SIGNAL_TRUTH_SCHEMA: Final = pl.Schema(
    {
        "job_id": pl.Int64,
        "batch_id": pl.Int64,
        "subscriber_key": pl.String,
        "recipient_id": pl.String,
        "ier_id": pl.String,
        "persona": pl.String,
        "scanner_clicks": pl.Int64,
        "human_clicks": pl.Int64,
        "ier_scanner_clicks": pl.Int64,
        "ier_human_clicks": pl.Int64,
        "machine_open": pl.Boolean,
    }
)


def persona(params: Params) -> pl.Expr:
    """The persona of each recipient row (``p``, ``email``)."""
    domain = pl.col("email").str.split("@").list.get(1, null_on_oob=True).fill_null("")
    return (
        pl.when(params.u(domain, "gateway") < GATEWAY_RATE)
        .then(pl.lit(GATEWAY))
        .when(params.u(pl.col("p"), "apple") < APPLE_RATE)
        .then(pl.lit(APPLE))
        .when(params.u(pl.col("p"), "fast") < FAST_RATE)
        .then(pl.lit(FAST))
        .otherwise(pl.lit(ORDINARY))
    )


def share_addresses(params: Params, people: pl.DataFrame) -> pl.DataFrame:
    """The people with some email addresses shared, and ``address_p``: the first holder's ``p``.

    A sharer takes the address of the first healthy person (lowest ``p``) of the same company,
    kind and lifecycle stage, so both fall in the same audiences.
    """
    eligible = (
        (pl.col("base_reason") == reasons.HEALTHY)
        & pl.col("converted_from").is_null()
        & pl.col("converted_at").is_null()
        & pl.col("mc_deleted_at").is_null()
    )
    group = ["company_ix", "kind", "lifecycle_stage"]
    holders = (
        people.filter(eligible)
        .group_by(group)
        .agg(holder_p=pl.col("p").min(), holder_email=pl.col("email").sort_by("p").first())
    )
    shared = (
        people.join(holders, on=group, how="left", maintain_order="left")
        .with_columns(
            sharer=eligible
            & (pl.col("p") != pl.col("holder_p"))
            & (params.u(pl.col("p"), "share-address") < SHARED_RATE)
        )
        .with_columns(
            address_p=pl.when("sharer").then(pl.col("holder_p")).otherwise(pl.col("p")),
            email=pl.when("sharer").then(pl.col("holder_email")).otherwise(pl.col("email")),
        )
        .drop("holder_p", "holder_email", "sharer")
    )
    return shared.sort("p")
