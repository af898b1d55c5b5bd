"""Link details from clicks: one per IER per link, a link being its Marketing Cloud id or URL.

A click carries ``link_id``, its SendURLID (else URLID): Marketing Cloud's id of one link of
one email. Two links to the same URL (a logo and a button) have two ids and stay two link
details; a link whose URL varies from click to click (tracking parameters) is one by its id.
Clicks without an id (data-view exports) are told apart by URL. ``unique_clicks`` of an IER
("Links Clicked") counts these links. Used by ``ierkit.aggregate``'s roll-up.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from ierkit import schema

LINK_TABLE: Final = "individual_links"


def link_rows(events: pl.DataFrame, ier_of_row: pl.Series) -> pl.DataFrame:
    """One row per IER (chunk position ``_ier``) and link clicked, sorted by IER, URL and id.

    A link is its id where the click has one, else its URL.
    """
    return (
        events.lazy()
        .with_columns(
            _ier=ier_of_row, _url_key=pl.when(pl.col("link_id").is_null()).then(pl.col("url"))
        )
        .filter(pl.col("event_type") == "Click")
        .group_by("_ier", "link_id", "_url_key")
        .agg(
            url=pl.col("url").max(),
            link_name=pl.col("link_name").max(),
            total_clicks=pl.len().cast(schema.COUNT),
            last_clicked=pl.col("event_time").max(),
            created_date=pl.col("event_time").min(),
        )
        .drop("_url_key")
        .sort("_ier", "url", "link_id", nulls_last=True)
        .collect(engine="in-memory")
    )


def finish_links(rolled: pl.LazyFrame) -> pl.LazyFrame:
    """The canonical link detail columns from rolled-up link rows (row order kept)."""
    frame = rolled.with_columns(
        individual_email_result_id=pl.col("ier_id"),
        id=pl.concat_str(
            [pl.col("ier_id"), pl.col("url").fill_null(""), pl.col("link_id").cast(pl.String)],
            separator="|",
            ignore_nulls=True,
        ),
        link_url=pl.col("url"),
        exact_target_link_id=pl.col("link_id").cast(pl.String),
    ).with_columns(unique_link_id=pl.col("id"))
    return schema.conform(LINK_TABLE, frame)
