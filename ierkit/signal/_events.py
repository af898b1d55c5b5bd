"""Automated clicks and machine opens from tracking-extract events (exact times).

Each event keeps every column it came with; classification only adds columns beside it.
Delivery is the recipient's own Sent event (per send, batch and Subscriber Key), so each
daily batch of a triggered send is timed from its own delivery.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from ierkit.signal._params import SignalParams

#: The recipient of an event within a send: a Sent row and its opens and clicks share it.
RECIPIENT_KEYS: Final = ("job_id", "batch_id", "subscriber_key")

#: Columns ``classify_events`` adds.
EVENT_SIGNAL_SCHEMA: Final = pl.Schema(
    {
        "delivered_at": pl.Datetime("us", "UTC"),
        "seconds_after_delivery": pl.Float64(),
        "automated": pl.Boolean(),
        "machine_open": pl.Boolean(),
        "signal_reason": pl.String(),
    }
)


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds().cast(pl.Float64) / 1e6


def _fmt(expr: pl.Expr) -> pl.Expr:
    """Whole seconds as text (``4``), for the reasons in words."""
    return expr.round(0).cast(pl.Int64).cast(pl.String)


def classify_events(events: pl.LazyFrame, params: SignalParams | None = None) -> pl.LazyFrame:
    """Every event, with whether a machine made it and why, in words.

    Rules (windows from ``SignalParams``):

    - A click at most ``scanner_seconds`` after the recipient's delivery: automated.
    - ``burst_min_links`` or more different links of one email clicked by one recipient, each
      within ``burst_seconds`` of the previous click: every click of that burst is automated.
    - ``domain_min_recipients`` or more recipients of one email domain clicking one send in the
      same second: automated (a gateway scanning every mailbox it protects).
    - An open at most ``scanner_seconds`` after delivery, by a recipient whose clicks on the
      send include automated ones: automated (the scanner rendered the email).
    - Any other open at most ``machine_open_seconds`` after delivery with no later open and no
      later human click: a possible machine open (``machine_open``; Apple Mail Privacy
      Protection).
    - Everything else stays human, including a click long after an automated burst.

    Args:
        events: Tracking events in ``ierkit.extract.EVENT_SCHEMA`` (e.g. ``store.scan_events``).
        params: Windows and counts; the defaults when None.

    Returns:
        The events with ``delivered_at``, ``seconds_after_delivery`` (null without a Sent row),
        ``automated``, ``machine_open`` and ``signal_reason`` (null for human events), sorted by
        send, batch, Subscriber Key, time, event type and link.
    """
    p = params or SignalParams()
    keyed = events.with_columns(pl.col("batch_id").fill_null(0).alias("_batch"))
    keys = ["job_id", "_batch", "subscriber_key"]
    delivered = (
        keyed.filter((pl.col("event_type") == "Sent") & pl.col("subscriber_key").is_not_null())
        .group_by(keys)
        .agg(delivered_at=pl.col("event_time").min())
    )
    is_click = pl.col("event_type") == "Click"
    is_open = pl.col("event_type") == "Open"
    link = pl.coalesce(pl.col("link_id").cast(pl.String), pl.col("url"), pl.col("link_name"))
    frame = (
        keyed.join(delivered, on=keys, how="left")
        .with_columns(
            seconds_after_delivery=_seconds(pl.col("event_time") - pl.col("delivered_at")),
            _link=link,
            _domain=pl.col("email").str.to_lowercase().str.split("@").list.get(1, null_on_oob=True),
        )
        .sort([*keys, "event_time", "event_type", "_link"], nulls_last=True)
    )
    fast = (
        is_click
        & pl.col("seconds_after_delivery").is_not_null()
        & (pl.col("seconds_after_delivery") <= p.scanner_seconds)
    )
    frame = frame.with_row_index("_row")
    # Bursts: a recipient's clicks chained by gaps of at most burst_seconds.
    clicks = (
        frame.filter(is_click)
        .with_columns(
            _gap=_seconds(pl.col("event_time") - pl.col("event_time").shift(1).over(keys))
        )
        .with_columns(
            _burst_id=(pl.col("_gap").is_null() | (pl.col("_gap") > p.burst_seconds))
            .cast(pl.Int64)
            .cum_sum()
            .over(keys)
        )
        .select(
            "_row",
            _burst_links=pl.col("_link").n_unique().over([*keys, "_burst_id"]),
            _burst_span=_seconds(
                pl.col("event_time").max().over([*keys, "_burst_id"])
                - pl.col("event_time").min().over([*keys, "_burst_id"])
            ),
            _domain_count=pl.when(pl.col("_domain").is_not_null()).then(
                pl.col("subscriber_key")
                .n_unique()
                .over(["job_id", "_domain", pl.col("event_time").dt.truncate("1s")])
            ),
        )
    )
    frame = frame.join(clicks, on="_row", how="left").sort("_row")
    burst = is_click & (pl.col("_burst_links") >= p.burst_min_links)
    domain = is_click & (pl.col("_domain_count") >= p.domain_min_recipients)
    automated_click = fast | burst | domain
    click_reason = pl.concat_str(
        [
            pl.when(fast).then(
                pl.lit("clicked ")
                + _fmt(pl.col("seconds_after_delivery"))
                + pl.lit(f" s after delivery (a person needs more than {p.scanner_seconds:g} s)")
            ),
            pl.when(burst).then(
                _fmt(pl.col("_burst_links").cast(pl.Float64))
                + pl.lit(" different links clicked within ")
                + _fmt(pl.col("_burst_span"))
                + pl.lit(" s")
            ),
            pl.when(domain).then(
                _fmt(pl.col("_domain_count").cast(pl.Float64))
                + pl.lit(" recipients at ")
                + pl.col("_domain")
                + pl.lit(" clicked in the same second")
            ),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    frame = frame.with_columns(_auto_click=automated_click.fill_null(False)).with_columns(
        _recipient_auto=pl.col("_auto_click").any().over(keys),
        _last_human=pl.when((is_click & ~pl.col("_auto_click")) | is_open)
        .then(pl.col("event_time"))
        .max()
        .over(keys),
    )
    in_scanner_window = pl.col("seconds_after_delivery") <= p.scanner_seconds
    scanner_open = (is_open & in_scanner_window & pl.col("_recipient_auto")).fill_null(False)
    later = pl.col("_last_human") > pl.col("event_time")
    machine = (
        is_open
        & ~scanner_open
        & (pl.col("seconds_after_delivery") <= p.machine_open_seconds)
        & ~later
    ).fill_null(False)
    return frame.with_columns(
        automated=(pl.col("_auto_click") | scanner_open),
        machine_open=machine,
        signal_reason=pl.when(pl.col("_auto_click"))
        .then(click_reason)
        .when(scanner_open)
        .then(
            pl.lit("opened ")
            + _fmt(pl.col("seconds_after_delivery"))
            + pl.lit(" s after delivery, with the scanner's clicks")
        )
        .when(machine)
        .then(
            pl.lit("opened ")
            + _fmt(pl.col("seconds_after_delivery"))
            + pl.lit(" s after delivery and nothing after: possibly Apple Mail Privacy Protection")
        ),
    ).drop(
        "_row",
        "_batch",
        "_link",
        "_domain",
        "_burst_links",
        "_burst_span",
        "_domain_count",
        "_auto_click",
        "_recipient_auto",
        "_last_human",
    )


def recipient_signal(classified: pl.LazyFrame) -> pl.LazyFrame:
    """Per recipient of each send: human and machine opens and clicks, and the reasons.

    Args:
        classified: ``classify_events`` output.

    Returns:
        ``job_id``, ``batch_id``, ``subscriber_key``, ``opens``, ``human_opens``,
        ``machine_opens`` (automated or possible machine opens), ``clicks``, ``human_clicks``,
        ``automated_clicks``, ``human_links`` (distinct links clicked by a person),
        ``signal_reason`` (the distinct reasons, "; "-joined; null when all human); sorted by
        the three keys. Recipients with no open or click are left out.
    """
    is_click = pl.col("event_type") == "Click"
    is_open = pl.col("event_type") == "Open"
    link = pl.coalesce(pl.col("link_id").cast(pl.String), pl.col("url"), pl.col("link_name"))
    non_human = pl.col("automated") | pl.col("machine_open")
    return (
        classified.filter(is_click | is_open)
        .with_columns(pl.col("batch_id").fill_null(0))
        .group_by(RECIPIENT_KEYS)
        .agg(
            opens=is_open.sum().cast(pl.Int64),
            human_opens=(is_open & ~non_human).sum().cast(pl.Int64),
            machine_opens=(is_open & non_human).sum().cast(pl.Int64),
            clicks=is_click.sum().cast(pl.Int64),
            human_clicks=(is_click & ~pl.col("automated")).sum().cast(pl.Int64),
            automated_clicks=(is_click & pl.col("automated")).sum().cast(pl.Int64),
            human_links=link.filter(is_click & ~pl.col("automated")).n_unique().cast(pl.Int64),
            signal_reason=pl.col("signal_reason").drop_nulls().unique().sort().str.join("; "),
        )
        .with_columns(
            signal_reason=pl.when(pl.col("signal_reason") != "").then(pl.col("signal_reason"))
        )
        .sort(RECIPIENT_KEYS, nulls_last=True)
    )
