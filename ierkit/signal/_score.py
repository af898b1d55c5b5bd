"""The engagement score per Contact and Lead: a transparent formula, explained in words.

score = sum over human-clicked links of
            ``click_weight`` x intent weight of the link x min(total clicks, 3) x decay(last click)
      + sum over human-opened IERs of ``open_weight`` x decay(date sent)

where decay(t) = 0.5 ** (days from t to as-of / ``half_life_days``). Suspected automated clicks
and possible machine opens count nothing (they are listed in the explanation as not counted).
Clicks on one link are capped at three so that reloading a page does not outrank a second
interest. The score is rounded to two decimals; the same tables and as-of give the same score.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ierkit.signal._params import SignalParams


def intent_weight(params: SignalParams) -> pl.Expr:
    """The intent weight of each link row (``link_name``, ``link_url``), first pattern wins."""
    text = pl.concat_str(
        [pl.col("link_name").fill_null(""), pl.col("link_url").fill_null("")], separator=" "
    ).str.to_lowercase()
    expr: pl.Expr = pl.lit(params.default_link_weight)
    for pattern, weight in reversed(list(params.link_weights.items())):
        expr = pl.when(text.str.contains("(?i)" + pattern)).then(pl.lit(weight)).otherwise(expr)
    return expr


def _times(n: pl.Expr) -> pl.Expr:
    return (
        pl.when(n == 1)
        .then(pl.lit("once"))
        .when(n == 2)
        .then(pl.lit("twice"))
        .otherwise(n.cast(pl.String) + pl.lit(" times"))
    )


def _ago(days: pl.Expr) -> pl.Expr:
    d = days.floor().cast(pl.Int64)
    return (
        pl.when(d == 0)
        .then(pl.lit("today"))
        .when(d == 1)
        .then(pl.lit("yesterday"))
        .otherwise(d.cast(pl.String) + pl.lit(" days ago"))
    )


def engagement_score(
    signal: pl.LazyFrame,
    links: pl.LazyFrame,
    *,
    as_of: dt.datetime,
    params: SignalParams | None = None,
) -> pl.LazyFrame:
    """The engagement score of every recipient with an IER, and why, in words.

    Args:
        signal: ``classify_iers`` output (facts and flags per IER).
        links: Individual link details in the canonical schema.
        as_of: The instant the decay counts from (UTC); later events are left out.
        params: Weights and half-life; the defaults when None.

    Returns:
        ``recipient_id``, ``engagement_score`` (rounded to 0.01), ``score_explanation`` (the
        links and opens that drove it, and what was not counted), ``human_clicks``,
        ``human_opens``, ``automated_clicks``, ``machine_opens``; sorted by score (highest
        first), then ``recipient_id``.
    """
    p = params or SignalParams()
    end = pl.lit(as_of)
    day_us = 86_400 * 1_000_000

    def age(col: str) -> pl.Expr:
        return ((end - pl.col(col)).dt.total_microseconds() / day_us).clip(lower_bound=0.0)

    def decay(col: str) -> pl.Expr:
        return pl.lit(0.5).pow(age(col) / p.half_life_days)

    clicked_links = (
        links.filter(pl.col("individual_email_result_id").is_not_null())
        .join(
            signal.select("ier_id", "recipient_id", "human_clicked", "automated_clicks"),
            left_on="individual_email_result_id",
            right_on="ier_id",
            how="inner",
        )
        .filter(pl.col("recipient_id").is_not_null() & (pl.col("last_clicked") <= end))
        .with_columns(
            n=pl.col("total_clicks").fill_null(1).clip(1, None).cast(pl.Int64),
            link=pl.coalesce("link_name", "link_url", pl.lit("a link")),
            w=intent_weight(p),
        )
    )
    human_links = (
        clicked_links.filter("human_clicked")
        .with_columns(
            part=p.click_weight * pl.col("w") * pl.col("n").clip(None, 3) * decay("last_clicked")
        )
        .group_by("recipient_id", "link")
        .agg(
            part=pl.col("part").sum(),
            n=pl.col("n").sum(),
            first=pl.col("last_clicked").min(),
            last=pl.col("last_clicked").max(),
            w=pl.col("w").max(),
        )
        .with_columns(
            words=pl.lit("clicked ")
            + pl.col("link")
            + pl.lit(" ")
            + _times(pl.col("n"))
            + pl.when(pl.col("n") > 1)
            .then(
                pl.lit(" in ")
                + ((pl.col("last").dt.date() - pl.col("first").dt.date()).dt.total_days() + 1).cast(
                    pl.String
                )
                + pl.lit(" days")
            )
            .otherwise(pl.lit(""))
            + pl.lit(", last ")
            + _ago(age("last"))
            + pl.lit(" (intent ")
            + pl.col("w").round(1).cast(pl.String)
            + pl.lit(")")
        )
        .sort(["recipient_id", "part", "link"], descending=[False, True, False])
        .group_by("recipient_id", maintain_order=True)
        .agg(
            click_score=pl.col("part").sum(),
            human_clicks=pl.col("n").sum(),
            click_words=pl.col("words").head(3).str.join("; "),
            more_links=(pl.len().cast(pl.Int64) - 3).clip(0, None),
        )
    )
    opens = (
        signal.filter(pl.col("recipient_id").is_not_null() & (pl.col("date_sent") <= end))
        .with_columns(opened_at=pl.col("date_sent"))
        .group_by("recipient_id")
        .agg(
            open_score=(p.open_weight * decay("opened_at")).filter("human_opened").sum(),
            human_opens=pl.col("human_opened").sum().cast(pl.Int64),
            machine_opens=pl.col("machine_open").sum().cast(pl.Int64),
        )
    )
    automated = (
        clicked_links.filter("automated_clicks")
        .group_by("recipient_id")
        .agg(automated_clicks=pl.col("n").sum().cast(pl.Int64))
    )
    not_counted = pl.concat_str(
        [
            pl.when(pl.col("automated_clicks") > 0).then(
                pl.col("automated_clicks").cast(pl.String) + pl.lit(" suspected automated clicks")
            ),
            pl.when(pl.col("machine_opens") > 0).then(
                pl.col("machine_opens").cast(pl.String) + pl.lit(" possible machine opens")
            ),
        ],
        separator=", ",
        ignore_nulls=True,
    )
    return (
        opens.join(human_links, on="recipient_id", how="full", coalesce=True)
        .join(automated, on="recipient_id", how="left")
        .with_columns(
            pl.col("click_score", "open_score").fill_null(0.0),
            pl.col("human_clicks", "human_opens", "machine_opens", "automated_clicks")
            .fill_null(0)
            .cast(pl.Int64),
        )
        .with_columns(
            engagement_score=(pl.col("click_score") + pl.col("open_score")).round(2),
            score_explanation=pl.concat_str(
                [
                    pl.col("click_words"),
                    pl.when(pl.col("more_links") > 0).then(
                        pl.lit("and ")
                        + pl.col("more_links").cast(pl.String)
                        + pl.lit(" more links")
                    ),
                    pl.when(pl.col("human_opens") > 0).then(
                        pl.lit("opened ")
                        + pl.col("human_opens").cast(pl.String)
                        + pl.when(pl.col("human_opens") == 1)
                        .then(pl.lit(" email"))
                        .otherwise(pl.lit(" emails"))
                    ),
                    pl.when(not_counted != "").then(pl.lit("not counted: ") + not_counted),
                ],
                separator="; ",
                ignore_nulls=True,
            ),
        )
        .with_columns(
            score_explanation=pl.when(pl.col("score_explanation") == "")
            .then(pl.lit("no engagement"))
            .otherwise(pl.col("score_explanation"))
        )
        .select(
            "recipient_id",
            "engagement_score",
            "score_explanation",
            "human_clicks",
            "human_opens",
            "automated_clicks",
            "machine_opens",
        )
        .sort(["engagement_score", "recipient_id"], descending=[True, False])
    )
