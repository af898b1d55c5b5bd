"""Automated clicks and machine opens from tracking-extract events (exact times).

Each event keeps every column it came with; classification only adds columns beside it.
Delivery is the recipient's own Sent event (per send, batch and Subscriber Key), so each
daily batch of a triggered send is timed from its own delivery.

How (``_flag``), and why. Classifying every event with windows over the recipient key (the
first version) sorted all events, joined the deliveries back on the string key and windowed
every row: 20.9 s, 39 CPU-seconds and 3.7 GB for 11.6 million events. Now the events are put
in recipient order (send, batch, Subscriber Key; the event store's files are in that order
already, so this is one comparison per row, not a sort), which makes each recipient a run of
rows numbered 0, 1, ... (``_rid``). Per-recipient facts (delivery, last open, opens) are
aggregated over the rows they need (Sent, Open) by that sorted integer and handed to the rows
by position (``gather``), never by a join on the key. Only clicks, a few percent of the
events, are sorted by time for the burst and domain rules; only opens soon after delivery can
be a machine's, so only those go through the open rules; reasons are written in words only for
the events that have one. Same rows, about 2.6 s, 4 CPU-seconds and 1 GB
(``write_engagement_signal``, a group of sends at a time; ``benchmarks/aggregate.py``, case
``ierkit_csv_signal``).
"""

from __future__ import annotations

from dataclasses import dataclass
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

#: One row per recipient of a send with an open or a click (``recipient_signal``,
#: ``classify_recipients``).
RECIPIENT_SIGNAL_SCHEMA: Final = pl.Schema(
    {
        "job_id": pl.Int64(),
        "batch_id": pl.Int64(),
        "subscriber_key": pl.String(),
        "opens": pl.Int64(),
        "human_opens": pl.Int64(),
        "machine_opens": pl.Int64(),
        "clicks": pl.Int64(),
        "human_clicks": pl.Int64(),
        "automated_clicks": pl.Int64(),
        "human_links": pl.Int64(),
        "signal_reason": pl.String(),
    }
)

#: Event columns the rules read (the others are carried along untouched).
_INPUT_COLUMNS: Final = (
    "job_id",
    "batch_id",
    "subscriber_key",
    "email",
    "event_type",
    "event_time",
    "url",
    "link_name",
    "link_id",
)

# Only Sent (delivery), Open and Click events take part; only clicks need the email address
# and the link. Read for clicks only, these columns cost little (the reader materialises them
# late); read for every event, they more than doubled the read of 11.6 million events.
_KINDS: Final = pl.col("event_type").is_in(["Sent", "Open", "Click"])
_CLICK_ONLY: Final = ("email", "url", "link_name", "link_id")
_INPUT: Final = [
    pl.col(name)
    if name not in _CLICK_ONLY
    else pl.when(pl.col("event_type") == "Click").then(pl.col(name)).alias(name)
    for name in _INPUT_COLUMNS
]

# The recipient key with a missing batch counted as batch 0 (one send, one batch).
_KEYS: Final = ("job_id", "_batch", "subscriber_key")

_IS_CLICK: Final = pl.col("event_type") == "Click"
_IS_OPEN: Final = pl.col("event_type") == "Open"
_TIME: Final = pl.col("event_time")


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds().cast(pl.Float64) / 1e6


def _fmt(expr: pl.Expr) -> pl.Expr:
    """Whole seconds as text (``4``), for the reasons in words."""
    return expr.round(0).cast(pl.Int64).cast(pl.String)


def _link() -> pl.Expr:
    """A click's link: its Marketing Cloud id, else its URL, else its name."""
    return pl.coalesce(pl.col("link_id").cast(pl.String), pl.col("url"), pl.col("link_name"))


def _domain() -> pl.Expr:
    return pl.col("email").str.to_lowercase().str.split("@").list.get(1, null_on_oob=True)


def _numbered(frame: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """``frame`` with ``_rid``, the number of its recipient's run of rows (flagged sorted),
    and whether the rows are in recipient order (each recipient's rows together, keys
    ascending, blanks last)."""
    before: pl.Expr = pl.lit(False)
    same: pl.Expr = pl.lit(True)
    for name in reversed(_KEYS):
        col, prev = pl.col(name), pl.col(f"_prev{name}")
        lower = (col < prev).fill_null(False) | (col.is_not_null() & prev.is_null())
        before = lower | (col.eq_missing(prev) & before)
        same = same & col.eq_missing(prev)
    first = pl.int_range(pl.len()) == 0
    runs = (
        frame.lazy()
        .select(*_KEYS, *[pl.col(name).shift(1).alias(f"_prev{name}") for name in _KEYS])
        .select(_rid=((~same | first).cum_sum() - 1).cast(pl.UInt32), _before=before & ~first)
        .collect()
    )
    ordered = not runs.get_column("_before").any()
    return frame.with_columns(runs.get_column("_rid").set_sorted()), ordered


def _in_recipient_order(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``_batch`` and ``_rid``, each recipient's rows together in key order.

    Already so for the event store's files and for ``classify_events``' sorted input: then
    this is one comparison per row. Anything else is sorted (stably) by the key first.
    """
    keyed = frame.with_columns(_batch=pl.col("batch_id").fill_null(0))
    numbered, ordered = _numbered(keyed)
    if not ordered:
        numbered, _ = _numbered(keyed.sort(_KEYS, nulls_last=True, maintain_order=True))
    return numbered


@dataclass(frozen=True)
class _Flags:
    """The rules applied to events in recipient order.

    Attributes:
        recipients: Per recipient number (``_rid``, row i is recipient i): ``delivered_at``
            (null without a Sent row), ``_opens`` and ``_first`` (its first row).
        clicks: Per click: ``_row`` (its event), ``_rid``, ``_link``, ``automated``.
        opens: Per open soon after delivery (any other is a person's): ``_row``, ``_rid``,
            ``automated``, ``machine_open``.
        reasons: Per automated click and machine open: ``_row``, ``_rid``, ``signal_reason``.
    """

    recipients: pl.DataFrame
    clicks: pl.DataFrame
    opens: pl.DataFrame
    reasons: pl.DataFrame


def _click_flags(clicks: pl.DataFrame, p: SignalParams) -> pl.LazyFrame:
    """Every click with ``automated`` and, for those, ``signal_reason`` (clicks in time order
    per ``_rid``).

    - A click at most ``scanner_seconds`` after the recipient's delivery.
    - ``burst_min_links`` or more different links of one email clicked by one recipient,
      each within ``burst_seconds`` of the previous click: every click of that burst.
    - ``domain_min_recipients`` or more recipients of one email domain clicking one send in
      the same second.
    """
    new_recipient = pl.col("_rid") != pl.col("_rid").shift(1)
    gap = pl.when(~new_recipient).then(_seconds(_TIME - _TIME.shift(1)))
    new_burst = pl.col("_gap").is_null() | (pl.col("_gap") > p.burst_seconds)
    numbered = clicks.with_columns(_gap=gap).with_columns(
        _burst_id=(new_burst.cum_sum() - 1).cast(pl.UInt32).set_sorted()
    )
    # Burst i is row i (a sorted key), handed back by position.
    bursts = (
        numbered.lazy()
        .group_by("_burst_id", maintain_order=True)
        .agg(
            _burst_links=pl.col("_link").n_unique(),
            _burst_span=_seconds(_TIME.max() - _TIME.min()),
        )
        .collect()
    )
    at = numbered.get_column("_burst_id")
    # Distinct recipients per domain and second only where there are enough clicks for it to
    # matter (elsewhere the count is below the threshold, and left null).
    same_second = ["job_id", "_domain", _TIME.dt.truncate("1s")]
    crowded = (
        numbered.with_row_index("_i")
        .filter(
            pl.col("_domain").is_not_null()
            & (pl.len().over(same_second) >= p.domain_min_recipients)
        )
        .select("_i", _count=pl.col("subscriber_key").n_unique().over(same_second))
    )
    flagged = numbered.with_columns(
        bursts.get_column("_burst_links").gather(at),
        bursts.get_column("_burst_span").gather(at),
        _dense(crowded.get_column("_i"), crowded.get_column("_count"), numbered.height).alias(
            "_domain_count"
        ),
    ).lazy()
    fast = pl.col("seconds_after_delivery").is_not_null() & (
        pl.col("seconds_after_delivery") <= p.scanner_seconds
    )
    burst = pl.col("_burst_links") >= p.burst_min_links
    domain = pl.col("_domain_count") >= p.domain_min_recipients
    reason = pl.concat_str(
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
    automated = (fast | burst | domain).fill_null(False)
    return flagged.select(
        "_row",
        "_rid",
        "_link",
        "event_time",
        automated=automated,
        signal_reason=pl.when(automated).then(reason),
    )


def _open_flags(opens: pl.LazyFrame, p: SignalParams) -> pl.LazyFrame:
    """Every open with ``automated`` and ``machine_open``.

    ``opens`` carry ``seconds_after_delivery``, ``_scanned`` (the recipient has automated
    clicks) and ``_last_human`` (the recipient's last open or human click).

    - At most ``scanner_seconds`` after delivery, by a recipient whose clicks include
      automated ones: automated (the scanner rendered the email).
    - Any other open at most ``machine_open_seconds`` after delivery with no later open and
      no later human click: a possible machine open (Apple Mail Privacy Protection).
    """
    after = pl.col("seconds_after_delivery")
    scanner = ((after <= p.scanner_seconds) & pl.col("_scanned")).fill_null(False)
    later = pl.col("_last_human") > _TIME
    machine = (~scanner & (after <= p.machine_open_seconds) & ~later).fill_null(False)
    return opens.select(
        "_row", "_rid", "seconds_after_delivery", automated=scanner, machine_open=machine
    )


def _open_reason() -> pl.Expr:
    """The reason of an automated or machine open, in words (``_open_flags`` columns)."""
    after = _fmt(pl.col("seconds_after_delivery"))
    return (
        pl.when(pl.col("automated"))
        .then(pl.lit("opened ") + after + pl.lit(" s after delivery, with the scanner's clicks"))
        .otherwise(
            pl.lit("opened ")
            + after
            + pl.lit(" s after delivery and nothing after: possibly Apple Mail Privacy Protection")
        )
    )


def _dense(rids: pl.Series, values: pl.Series, n: int) -> pl.Series:
    """``values`` placed at positions ``rids`` of a series of ``n`` nulls (named as ``values``)."""
    return (
        pl.repeat(None, n, dtype=values.dtype, eager=True).scatter(rids, values).alias(values.name)
    )


def _flag(frame: pl.DataFrame, p: SignalParams) -> _Flags:
    """The rules over events in recipient order with ``_rid`` (``_in_recipient_order``)."""
    frame = frame.with_row_index("_row")
    n = frame.get_column("_rid")[-1] + 1 if frame.height else 0
    # Each aggregation over the rows it needs (faster than a conditional one over all rows),
    # handed back by position: recipient i is row i.
    sent = (
        frame.lazy()
        .filter((pl.col("event_type") == "Sent") & pl.col("subscriber_key").is_not_null())
        .group_by("_rid", maintain_order=True)
        .agg(delivered_at=_TIME.min())
        .collect()
    )
    opened = (
        frame.lazy()
        .filter(_IS_OPEN)
        .group_by("_rid", maintain_order=True)
        .agg(_last_open=_TIME.max(), _opens=pl.len().cast(pl.Int64))
        .collect()
    )
    per = pl.DataFrame(
        [
            _dense(sent.get_column("_rid"), sent.get_column("delivered_at"), n),
            _dense(opened.get_column("_rid"), opened.get_column("_last_open"), n),
            _dense(opened.get_column("_rid"), opened.get_column("_opens"), n).fill_null(0),
            frame.select(
                _first=pl.arg_where(pl.col("_rid") != pl.col("_rid").shift(1, fill_value=-1))
            ).to_series(),
        ]
    )

    def of_recipient(name: str) -> pl.Expr:
        return pl.lit(per.get_column(name)).gather(pl.col("_rid"))

    after_delivery = _seconds(_TIME - of_recipient("delivered_at"))
    clicks = (
        _click_flags(
            frame.lazy()
            .filter(_IS_CLICK)
            .select(
                "_row",
                "_rid",
                "job_id",
                "subscriber_key",
                "event_time",
                seconds_after_delivery=after_delivery,
                _link=_link(),
                _domain=_domain(),
            )
            .sort("_rid", "event_time", "_link", nulls_last=True)
            .collect(),
            p,
        )
        .collect()
        .sort("_row")
    )
    by_recipient = (
        clicks.lazy()
        .group_by("_rid")
        .agg(
            _scanned=pl.col("automated").any(),
            _last_human_click=_TIME.filter(~pl.col("automated")).max(),
        )
        .collect()
    )
    rids = by_recipient.get_column("_rid")
    scanned = _dense(rids, by_recipient.get_column("_scanned"), n)
    last_human_click = _dense(rids, by_recipient.get_column("_last_human_click"), n)
    # Only an open soon after delivery can be a machine's: the rules look at those alone.
    soon = max(p.scanner_seconds, p.machine_open_seconds)
    opens = _open_flags(
        frame.lazy()
        .filter(_IS_OPEN)
        .select("_row", "_rid", "event_time", seconds_after_delivery=after_delivery)
        .filter(pl.col("seconds_after_delivery") <= soon)
        .with_columns(
            _scanned=pl.lit(scanned).gather(pl.col("_rid")).fill_null(False),
            _last_human=pl.max_horizontal(
                of_recipient("_last_open"), pl.lit(last_human_click).gather(pl.col("_rid"))
            ),
        ),
        p,
    ).collect()
    # Reasons only where there is one (a few percent of the events): text is costly.
    reasons = pl.concat(
        [
            clicks.lazy().filter("automated").select("_row", "_rid", "signal_reason"),
            opens.lazy()
            .filter(pl.col("automated") | pl.col("machine_open"))
            .select("_row", "_rid", signal_reason=_open_reason()),
        ]
    ).collect()
    return _Flags(
        recipients=per.select("delivered_at", "_opens", "_first"),
        clicks=clicks.drop("event_time", "signal_reason"),
        opens=opens.drop("seconds_after_delivery"),
        reasons=reasons,
    )


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
        send, batch, Subscriber Key, time, event type and link. For counts per recipient,
        ``classify_recipients`` is the faster way (no row per event, no sort of every event).
    """
    p = params or SignalParams()
    columns = events.collect_schema()

    def run() -> pl.DataFrame:
        keyed = (
            events.with_columns(_batch=pl.col("batch_id").fill_null(0), _link=_link())
            .sort([*_KEYS, "event_time", "event_type", "_link"], nulls_last=True)
            .drop("_link")
            .collect()
        )
        keyed, _ = _numbered(keyed)
        flags = _flag(keyed, p)
        n = keyed.height
        automated = pl.repeat(False, n, dtype=pl.Boolean, eager=True)
        machine = automated.clone()
        reason = pl.repeat(None, n, dtype=pl.String, eager=True)
        for part in (flags.clicks, flags.opens):
            automated.scatter(part.get_column("_row"), part.get_column("automated"))
        machine.scatter(flags.opens.get_column("_row"), flags.opens.get_column("machine_open"))
        reason.scatter(flags.reasons.get_column("_row"), flags.reasons.get_column("signal_reason"))
        return (
            keyed.with_columns(
                flags.recipients.get_column("delivered_at")
                .gather(keyed.get_column("_rid"))
                .alias("delivered_at")
            )
            .drop("_batch", "_rid")
            .with_columns(
                seconds_after_delivery=_seconds(_TIME - pl.col("delivered_at")),
                automated=automated,
                machine_open=machine,
                signal_reason=reason,
            )
        )

    return pl.defer(run, schema=pl.Schema({**columns, **EVENT_SIGNAL_SCHEMA}))


def events_input(events: pl.LazyFrame) -> pl.LazyFrame:
    """The events and columns the rules read (Sent, Open, Click; a click's email and link)."""
    return events.filter(_KINDS).select(_INPUT)


def recipients_of(events: pl.DataFrame, p: SignalParams) -> pl.DataFrame:
    """``classify_recipients`` on events already collected (``events_input``)."""
    keyed = _in_recipient_order(events)
    flags = _flag(keyed, p)
    human = ~pl.col("automated")
    clicks = (
        flags.clicks.lazy()
        .group_by("_rid")
        .agg(
            clicks=pl.len().cast(pl.Int64),
            human_clicks=human.sum().cast(pl.Int64),
            automated_clicks=pl.col("automated").sum().cast(pl.Int64),
            human_links=pl.col("_link").filter(human).n_unique().cast(pl.Int64),
        )
    )
    machine = (
        flags.opens.lazy()
        .filter(pl.col("automated") | pl.col("machine_open"))
        .group_by("_rid")
        .agg(machine_opens=pl.len().cast(pl.Int64))
    )
    reasons = (
        flags.reasons.lazy()
        .group_by("_rid")
        .agg(pl.col("signal_reason").unique().sort().str.join("; "))
    )
    # Placed by position (row i is recipient i), not joined: few recipients click.
    n = flags.recipients.height
    placed = [
        _dense(part.get_column("_rid"), part.get_column(name), n).alias(name)
        for part in (clicks.collect(), machine.collect(), reasons.collect())
        for name in part.columns
        if name != "_rid"
    ]
    counts = ["machine_opens", "clicks", "human_clicks", "automated_clicks", "human_links"]
    per = (
        flags.recipients.with_columns(placed)
        .filter((pl.col("_opens") > 0) | pl.col("clicks").is_not_null())
        .with_columns(pl.col(counts).fill_null(0))
        .with_columns(
            opens=pl.col("_opens"), human_opens=pl.col("_opens") - pl.col("machine_opens")
        )
    )
    # Each recipient's key, from its first row.
    keys = keyed.select(pl.col(_KEYS).gather(per.get_column("_first"))).rename(
        {"_batch": "batch_id"}
    )
    return pl.concat([keys, per], how="horizontal").select(list(RECIPIENT_SIGNAL_SCHEMA))


def classify_recipients(events: pl.LazyFrame, params: SignalParams | None = None) -> pl.LazyFrame:
    """Per recipient of each send, straight from events: ``recipient_signal(classify_events())``.

    The same rules and the same rows, without a row per event: this is what ``ierkit
    aggregate`` writes (``write_engagement_signal``).

    Args:
        events: Tracking events in ``ierkit.extract.EVENT_SCHEMA``; fastest in the event
            store's order (``store.scan_events``), any order works.
        params: Windows and counts; the defaults when None.

    Returns:
        ``RECIPIENT_SIGNAL_SCHEMA`` (see ``recipient_signal``), sorted by the three keys.
    """
    p = params or SignalParams()

    def run() -> pl.DataFrame:
        return recipients_of(events_input(events).collect(), p)

    return pl.defer(run, schema=RECIPIENT_SIGNAL_SCHEMA)


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
    non_human = pl.col("automated") | pl.col("machine_open")
    return (
        classified.filter(_IS_CLICK | _IS_OPEN)
        .with_columns(pl.col("batch_id").fill_null(0))
        .group_by(RECIPIENT_KEYS)
        .agg(
            opens=_IS_OPEN.sum().cast(pl.Int64),
            human_opens=(_IS_OPEN & ~non_human).sum().cast(pl.Int64),
            machine_opens=(_IS_OPEN & non_human).sum().cast(pl.Int64),
            clicks=_IS_CLICK.sum().cast(pl.Int64),
            human_clicks=(_IS_CLICK & ~pl.col("automated")).sum().cast(pl.Int64),
            automated_clicks=(_IS_CLICK & pl.col("automated")).sum().cast(pl.Int64),
            human_links=_link().filter(_IS_CLICK & ~pl.col("automated")).n_unique().cast(pl.Int64),
            signal_reason=pl.col("signal_reason").drop_nulls().unique().sort().str.join("; "),
        )
        .with_columns(
            signal_reason=pl.when(pl.col("signal_reason") != "").then(pl.col("signal_reason"))
        )
        .sort(RECIPIENT_KEYS, nulls_last=True)
    )
