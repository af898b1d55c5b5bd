"""Automated clicks and machine opens from the org alone: IERs and their link details.

The org keeps no per-click time: only the IER's ``date_sent`` and ``date_opened`` (the first
open) and each link detail's ``last_clicked``. A later human click moves ``last_clicked`` past
a scanner's sweep, so an IER with any click well after delivery stays human.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from ierkit.signal._params import SignalParams

#: Columns of ``classify_iers``.
IER_SIGNAL_SCHEMA: Final = pl.Schema(
    {
        "ier_id": pl.String(),
        "send_id": pl.String(),
        "recipient_id": pl.String(),
        "date_sent": pl.Datetime("us", "UTC"),
        "opened": pl.Boolean(),
        "clicked": pl.Boolean(),
        "automated_clicks": pl.Boolean(),
        "machine_open": pl.Boolean(),
        "human_opened": pl.Boolean(),
        "human_clicked": pl.Boolean(),
        "signal_reason": pl.String(),
    }
)


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds().cast(pl.Float64) / 1e6


def _fmt(expr: pl.Expr) -> pl.Expr:
    return expr.round(0).cast(pl.Int64).cast(pl.String)


def classify_iers(
    iers: pl.LazyFrame, links: pl.LazyFrame, params: SignalParams | None = None
) -> pl.LazyFrame:
    """Per IER: whether its clicks look automated and its open like a machine's, and why.

    Rules (windows from ``SignalParams``):

    - Automated clicks: every link the IER clicked was last clicked at most
      ``scanner_seconds`` after ``date_sent``, and either every tracked link of the send was
      clicked within ``burst_seconds`` of each other (a scanner follows every link), or the
      IER was opened at most ``scanner_seconds`` after it was sent (the scanner rendered it).
    - Machine open: opened at most ``scanner_seconds`` after sending with automated clicks, or
      opened at most ``machine_open_seconds`` after sending with no human click (Apple Mail
      Privacy Protection opens on delivery).
    - Human opened: opened and not a machine open, or clicked by a person (a click needs an open).

    Args:
        iers: Individual email results in the canonical schema.
        links: Individual link details in the canonical schema.
        params: Windows and counts; the defaults when None.

    Returns:
        ``IER_SIGNAL_SCHEMA``: one row per IER (facts ``opened``/``clicked`` beside the flags;
        nothing is dropped), ``signal_reason`` in words (null when human), sorted by ``ier_id``.
    """
    p = params or SignalParams()
    facts = iers.select(
        ier_id=pl.col("id"),
        send_id=pl.coalesce("email_send_id", "triggered_send_id"),
        recipient_id=pl.coalesce("contact_id", "lead_id"),
        date_sent=pl.col("date_sent"),
        date_opened=pl.col("date_opened"),
        opened=pl.col("opened").fill_null(False) | pl.col("date_opened").is_not_null(),
        clicked=pl.col("clicked").fill_null(False) | (pl.col("unique_clicks").fill_null(0) > 0),
    )
    link_key = pl.coalesce("exact_target_link_id", "link_url", "link_name")
    per_ier = (
        links.filter(pl.col("individual_email_result_id").is_not_null())
        .group_by(ier_id=pl.col("individual_email_result_id"))
        .agg(
            links_clicked=link_key.n_unique().cast(pl.Int64),
            first_last=pl.col("last_clicked").min(),
            last_last=pl.col("last_clicked").max(),
        )
    )
    per_send = (
        links.filter(pl.col("individual_email_result_id").is_not_null())
        .select(ier_id=pl.col("individual_email_result_id"), link=link_key)
        .join(facts.select("ier_id", "send_id"), on="ier_id", how="inner")
        .group_by("send_id")
        .agg(send_links=pl.col("link").n_unique().cast(pl.Int64))
    )
    frame = (
        facts.join(per_ier, on="ier_id", how="left")
        .join(per_send, on="send_id", how="left")
        .with_columns(
            open_after=_seconds(pl.col("date_opened") - pl.col("date_sent")),
            last_after=_seconds(pl.col("last_last") - pl.col("date_sent")),
            spread=_seconds(pl.col("last_last") - pl.col("first_last")),
        )
    )
    within = pl.col("clicked") & (pl.col("last_after") <= p.scanner_seconds)
    every_link = (
        within
        & (pl.col("links_clicked") >= pl.col("send_links"))
        & (pl.col("spread") <= p.burst_seconds)
    ).fill_null(False)
    fast_open = (within & (pl.col("open_after") <= p.scanner_seconds)).fill_null(False)
    automated = every_link | fast_open
    human_clicked = pl.col("clicked") & ~automated
    scanner_open = (
        pl.col("opened") & automated & (pl.col("open_after") <= p.scanner_seconds)
    ).fill_null(False)
    mpp_open = (
        pl.col("opened") & ~human_clicked & (pl.col("open_after") <= p.machine_open_seconds)
    ).fill_null(False)
    machine = scanner_open | mpp_open
    reason = pl.concat_str(
        [
            pl.when(every_link).then(
                pl.lit("every one of the send's ")
                + _fmt(pl.col("send_links").cast(pl.Float64))
                + pl.lit(" links clicked within ")
                + _fmt(pl.col("spread"))
                + pl.lit(" s of each other, the last ")
                + _fmt(pl.col("last_after"))
                + pl.lit(" s after the send")
            ),
            pl.when(fast_open & ~every_link).then(
                pl.lit("opened ")
                + _fmt(pl.col("open_after"))
                + pl.lit(" s after the send and every click within ")
                + _fmt(pl.col("last_after"))
                + pl.lit(" s of it")
            ),
            pl.when(mpp_open & ~automated).then(
                pl.lit("opened ")
                + _fmt(pl.col("open_after"))
                + pl.lit(" s after the send and no click: possibly Apple Mail Privacy Protection")
            ),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    return (
        frame.with_columns(
            automated_clicks=automated,
            machine_open=machine,
            human_opened=(pl.col("opened") & ~machine) | human_clicked,
            human_clicked=human_clicked,
            signal_reason=pl.when(automated | machine).then(reason),
        )
        .select(IER_SIGNAL_SCHEMA.names())
        .cast(IER_SIGNAL_SCHEMA)
        .sort("ier_id")
    )
