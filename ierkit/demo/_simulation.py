"""The simulation: every send's recipients, their engagement, and what the sync made of it.

Sends run in schedule order. What one send changes for the next (who is suppressed, how full
the sync cycles are, the Id counters, the planted-reason tally) travels in a frozen
``SimState``; each send returns a new one. Each block's frames go to the ``ChunkWriter``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Final

import polars as pl

from ierkit import reasons
from ierkit.demo._audience import audience
from ierkit.demo._catalogue import PROGRAMMES
from ierkit.demo._chunks import ChunkWriter
from ierkit.demo._extract_writer import extract_frames
from ierkit.demo._params import (
    BLOCK_ROWS,
    BOUNCE_CATEGORIES,
    BOUNCE_RATE,
    BOUNCE_WEIGHTS,
    ENGINE,
    UNSUB_GIVEN_OPEN,
    Counters,
    Params,
    secs,
)
from ierkit.demo._personas import APPLE, FAST, GATEWAY, SIGNAL_TRUTH_SCHEMA, persona
from ierkit.demo._population import Population
from ierkit.demo._random import exponential, geometric_extra, pick, salt, sf_ids
from ierkit.demo._records import ground_truth_frame, ier_frame, link_frame, task_frame
from ierkit.demo._schedule import Send, SendRecords
from ierkit.demo._sync import Sync, SyncQueue, allocate, allocate_batches, sync_created

TOTALS: Final = (
    "number_sent",
    "number_hard_bounces",
    "number_soft_bounces",
    "number_unique_opens",
    "number_unique_clicks",
    "number_unsubscribed",
)


@dataclasses.dataclass(frozen=True)
class World:
    """What stays fixed while the sends run."""

    params: Params
    sync: Sync
    population: Population
    records: SendRecords


@dataclasses.dataclass(frozen=True)
class SimState:
    """What one send leaves for the next."""

    #: The people, ``suppressed_at`` set by the sends so far.
    people: pl.DataFrame
    queue: SyncQueue
    counters: Counters
    #: Ground-truth rows per reason so far.
    planted: Mapping[str, int]

    @classmethod
    def start(cls, population: Population, counters: Counters) -> SimState:
        """Before the first send: nobody suppressed, empty cycles, nothing planted."""
        planted = {r: 0 for r in reasons.ALL if r != reasons.UNEXPLAINED}
        return cls(population.people, SyncQueue(), counters, planted)


@dataclasses.dataclass(frozen=True)
class SendOutcome:
    """What Marketing Cloud knows of a send once it ran: recipients, totals, tracking instant."""

    recipients: int
    totals: Mapping[str, int]
    tracking_as_of: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class Block:
    """What one block of recipients produced."""

    #: Rows to write, per table or extract file.
    frames: Mapping[str, pl.DataFrame]
    totals: Mapping[str, int]
    tracking_as_of: dt.datetime | None
    planted: Mapping[str, int]
    #: People who unsubscribed or hard-bounced (``p``, ``t``).
    suppress: pl.DataFrame
    counters: Counters


def run_sends(
    world: World, state: SimState, sends: tuple[Send, ...], writer: ChunkWriter
) -> tuple[tuple[SendOutcome, ...], SimState]:
    """Run every send in order; return their outcomes and the final state."""
    outcomes = []
    for send in sends:
        outcome, state = run_send(world, state, send, writer)
        outcomes.append(outcome)
    return tuple(outcomes), state


def run_send(
    world: World, state: SimState, send: Send, writer: ChunkWriter
) -> tuple[SendOutcome, SimState]:
    """Generate one send, block by block: its rows go to ``writer``, its totals are returned."""
    # Row-level reason before the sync: send-level modes first, then the person's.
    reason = pl.lit(reasons.TRACKING_OFF) if send.tracking_disabled else pl.col("base_reason")
    would = pl.col("reason").is_in(
        [reasons.HEALTHY, reasons.LEAD_CONVERTED, reasons.DELETED_IN_MARKETING_CLOUD]
    )
    recipients = audience(world.params, state.people, world.population.members.frame, send)
    rows = (
        recipients.lazy()
        .select(
            "p",
            "kind",
            pl.col("id").alias("recipient_id"),
            "email",
            "mc_key",
            "owner_id",
            "engage",
            "base_reason",
            "mc_deleted_at",
            "subscriber_id",
            "member_id",
            "batch_id",
            "date_sent",
            "address_p",
            reason=reason,
        )
        .with_columns(
            # "Dedupe Subscribers": of the recipients sharing an email address (ignoring case)
            # only the first is sent to. Deleted subscribers are not sent to at all.
            deduplicated=pl.lit(send.dedupe)
            & (pl.col("reason") != reasons.DELETED_IN_MARKETING_CLOUD)
            & pl.col("email").is_not_null()
            & (
                pl.col("p")
                != pl.when(pl.col("reason") != reasons.DELETED_IN_MARKETING_CLOUD)
                .then(pl.col("p"))
                .min()
                .over(pl.col("email").str.to_lowercase().str.strip_chars())
            ),
        )
        .with_columns(
            reason=pl.when("deduplicated")
            .then(pl.lit(reasons.DEDUPLICATED))
            .otherwise(pl.col("reason"))
        )
        .with_columns(would_have_ier=would)
        .with_columns(
            sync_ordinal=pl.when(pl.col("would_have_ier")).then(
                pl.col("would_have_ier").cast(pl.Int64).cum_sum() - 1
            )
        )
        .collect(engine=ENGINE)
    )
    # Deduplicated recipients were never sent to: ground truth only, no events, no totals.
    deduped = rows.filter("deduplicated")
    rows = rows.filter(~pl.col("deduplicated"))
    n_ier = int(rows["would_have_ier"].sum())
    if send.kind == "triggered":
        allocation, queue = allocate_batches(world.sync, state.queue, rows)
    else:
        allocation, queue = allocate(world.sync, state.queue, send.date_sent, n_ier)
    totals = dict.fromkeys(TOTALS, 0)
    tracking_as_of: dt.datetime | None = None
    people, counters, planted = state.people, state.counters, dict(state.planted)
    for offset in range(0, rows.height, BLOCK_ROWS):
        block = simulate_block(world, send, rows.slice(offset, BLOCK_ROWS), allocation, counters)
        for name, frame in block.frames.items():
            if name.endswith(".csv"):
                writer.csv(name, frame)
            else:
                writer.part(name, frame)
        for key, value in block.totals.items():
            totals[key] += value
        if block.tracking_as_of is not None:
            tracking_as_of = max(tracking_as_of or block.tracking_as_of, block.tracking_as_of)
        for reason_code, n in block.planted.items():
            planted[reason_code] += n
        people = apply_suppression(people, block.suppress)
        counters = block.counters
    if deduped.height:
        writer.part(
            "ground_truth",
            ground_truth_frame(
                send, deduped.lazy().with_columns(has_ier=False, ier_id=pl.lit(None, pl.String))
            ).collect(),
        )
        planted[reasons.DEDUPLICATED] += deduped.height
    outcome = SendOutcome(rows.height, totals, tracking_as_of)
    return outcome, SimState(people, queue, counters, planted)


def simulate_block(
    world: World,
    send: Send,
    rows: pl.DataFrame,
    allocation: pl.DataFrame,
    counters: Counters,
) -> Block:
    """Engagement, IERs, links, tasks, extract rows and ground truth for a block of rows.

    Args:
        world: What stays fixed during the simulation.
        send: The send.
        rows: The block's recipients (audience rows with ``reason`` and ``sync_ordinal``).
        allocation: The send's sync allocation (see ``_sync.allocate``).
        counters: The Id counters before this block.

    Returns:
        The block's frames to write, totals, latest IER ``tracking_as_of``, people to suppress
        and the advanced counters.
    """
    programme = PROGRAMMES[send.programme]
    job = send.job_id
    n_links = len(send.links)
    params = world.params
    cutoff = pl.lit(world.sync.cutoff)
    deleted = pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD
    rk = pl.col("rk")
    u = params.u
    open_p = (programme.open_rate * pl.col("engage")).clip(0, 0.95)
    who = pl.col("persona")
    rows = (
        rows.lazy()
        .with_columns(
            rk=pl.lit(job, dtype=pl.Int64) * (1 << 28) + pl.col("p"), persona=persona(params)
        )
        .with_columns(
            bounce_cat=pl.when((u(rk, "bounce") < BOUNCE_RATE) & ~deleted).then(
                pick(u(rk, "bcat"), list(BOUNCE_CATEGORIES), list(BOUNCE_WEIGHTS))
            ),
            first_open=pl.col("date_sent")
            + pl.when(who == APPLE)
            # Mail Privacy Protection loads the pixel when the mail reaches the device.
            .then(secs(5 + u(rk, "mpp") * 50))
            .when(who == FAST)
            .then(secs(10 + u(rk, "fast-open") * 15))
            .otherwise(
                secs(
                    60 + exponential(rk, salt(params.seed, "odelay"), 8 * 3600).clip(0, 10 * 86400)
                )
            ),
            n_opens=pl.when(who == APPLE)
            .then(1)
            .otherwise(
                (1 + geometric_extra(rk, salt(params.seed, "ocount"), 0.9, 11)).clip(
                    pl.when(who == FAST).then(2).otherwise(1), None
                )
            ),
            scan=(who == GATEWAY) & ~deleted,
            # The scanner renders the mail (1-2 s) before it follows the links (2-10 s).
            scan_open=pl.col("date_sent") + secs(1 + u(rk, "scan-open") * 0.9),
            open_gap=exponential(rk, salt(params.seed, "ogap"), 20 * 3600) + 60,
            u_open=u(rk, "open"),
            u_click=u(rk, "click"),
            n_clicked=(1 + geometric_extra(rk, salt(params.seed, "nlinks"), 0.6, n_links - 1)),
            link_start=(u(rk, "lstart") * n_links).floor().cast(pl.Int64),
            u_unsub=u(rk, "unsub"),
            unsub_delay=60 + u(rk, "unsub-delay") * 1800,
            bounce_delay=30 + u(rk, "bdelay") * 900,
        )
        .with_columns(
            date_bounced=pl.when(pl.col("bounce_cat").is_not_null()).then(
                pl.col("date_sent") + secs(pl.col("bounce_delay"))
            ),
            opened_any=pl.col("bounce_cat").is_null()
            & ((pl.col("u_open") < open_p) | (who == APPLE)),
            scan=pl.col("scan") & pl.col("bounce_cat").is_null(),
        )
        .with_columns(
            # What happened (Marketing Cloud's view) by the cutoff.
            mc_opened=(pl.col("opened_any") & (pl.col("first_open") <= cutoff))
            | (pl.col("scan") & (pl.col("scan_open") <= cutoff)),
            clicker=pl.col("opened_any")
            & (who != APPLE)
            & (pl.col("u_click") < programme.click_rate / programme.open_rate),
            date_unsub=pl.when(
                pl.col("opened_any")
                & (who != APPLE)
                & (pl.col("u_unsub") < UNSUB_GIVEN_OPEN)
                & ~deleted
            ).then(pl.col("first_open") + secs(pl.col("unsub_delay"))),
        )
        .with_columns(
            date_unsub=pl.when(pl.col("date_unsub") <= cutoff).then(pl.col("date_unsub")),
            # IERs see events up to the cutoff; for people deleted in Marketing Cloud only
            # those before the deletion.
            ier_cut=pl.when(deleted)
            .then(pl.min_horizontal(cutoff, pl.col("mc_deleted_at")))
            .otherwise(cutoff),
            ier_created=sync_created(world.sync, allocation),
        )
        .with_columns(
            reason=pl.when(pl.col("would_have_ier") & pl.col("ier_created").is_null())
            .then(pl.lit(reasons.IN_SYNC_WINDOW))
            .otherwise(pl.col("reason")),
            has_ier=pl.col("would_have_ier") & pl.col("ier_created").is_not_null(),
        )
        .with_columns(
            ier_id=pl.when(pl.col("has_ier")).then(
                sf_ids(
                    "a0R",
                    pl.lit(counters["ier"], dtype=pl.Int64)
                    + pl.col("has_ier").cast(pl.Int64).cum_sum()
                    - 1,
                )
            )
        )
        .collect(engine=ENGINE)
    )
    _, counters = counters.take("ier", int(rows["has_ier"].sum()))
    lazy = rows.lazy()
    # Opens: one event row per open.
    opens = (
        lazy.filter(pl.col("opened_any"))
        .select("rk", "first_open", "open_gap", "persona", j=pl.int_ranges(0, pl.col("n_opens")))
        .explode("j")
        .with_columns(
            t=pl.col("first_open")
            + secs(
                pl.col("j") * pl.col("open_gap")
                + pl.when(pl.col("j") > 0)
                .then(u(rk * 16 + pl.col("j"), "ojit") * 3600)
                .otherwise(0)
            )
        )
        .filter(pl.col("t") <= cutoff)
        .select("rk", "t", machine=pl.col("persona") == APPLE)
    )
    scanner_opens = lazy.filter(pl.col("scan") & (pl.col("scan_open") <= cutoff)).select(
        "rk", t=pl.col("scan_open"), machine=pl.lit(True)
    )
    opens = pl.concat([opens, scanner_opens]).sort(["rk", "t"])
    # Clicks: per clicked link, one event row per click.
    clicks = (
        lazy.filter(pl.col("clicker"))
        .select(
            "rk",
            "link_start",
            # A fast human comes back hours after the first quick click.
            first_open=pl.col("first_open")
            + pl.when(pl.col("persona") == FAST)
            .then(secs(3600 + u(rk, "fast-back") * 18_000))
            .otherwise(pl.duration(seconds=0)),
            m=pl.int_ranges(0, pl.col("n_clicked")),
        )
        .explode("m")
        .with_columns(link=(pl.col("link_start") + pl.col("m")) % n_links)
        .with_columns(lk=pl.col("rk") * 8 + pl.col("link"))
        .with_columns(n=1 + geometric_extra(pl.col("lk"), salt(params.seed, "nclick"), 0.7, 7))
        .with_columns(k=pl.int_ranges(0, pl.col("n")))
        .explode("k")
        .with_columns(
            t=pl.col("first_open")
            + secs(
                20
                + pl.col("m") * 40
                + u(pl.col("lk"), "cfirst") * 240
                + pl.col("k")
                * exponential(pl.col("lk") * 16 + pl.col("k"), salt(params.seed, "cgap"), 12 * 3600)
            )
        )
        .filter(pl.col("t") <= cutoff)
        .select("rk", "link", "t", machine=pl.lit(False))
    )
    # A fast human's first click: one link, 30-58 s after delivery.
    fast_clicks = lazy.filter(pl.col("clicker") & (pl.col("persona") == FAST)).select(
        "rk",
        link=pl.col("link_start"),
        t=pl.col("date_sent") + secs(30 + u(rk, "fast-click") * 28),
        machine=pl.lit(False),
    )
    # A gateway's scanner follows every link 2-10 s after delivery.
    scanner_clicks = (
        lazy.filter(pl.col("scan"))
        .select("rk", "date_sent", link=pl.int_ranges(0, n_links))
        .explode("link")
        .select(
            "rk",
            "link",
            t=pl.col("date_sent") + secs(2 + u(pl.col("rk") * 8 + pl.col("link"), "scan") * 8),
            machine=pl.lit(True),
        )
    )
    clicks = (
        pl.concat([clicks, fast_clicks, scanner_clicks])
        .filter(pl.col("t") <= cutoff)
        .sort(["rk", "t", "link"])
    )
    # Each event frame is used several times below: materialise once.
    open_events, click_events = pl.collect_all([opens, clicks], engine=ENGINE)
    # The IER view of the engagement.
    ier_rows = lazy.filter(pl.col("has_ier"))
    ier_links = (
        click_events.lazy()
        .join(
            ier_rows.select("rk", "ier_cut", "ier_created", "ier_id"),
            on="rk",
            how="inner",
            maintain_order="left",
        )
        .filter(pl.col("t") <= pl.col("ier_cut"))
        .group_by(["rk", "link"])
        .agg(
            total_clicks=pl.len().cast(pl.Int32),
            first_clicked=pl.col("t").min(),
            last_clicked=pl.col("t").max(),
            ier_id=pl.col("ier_id").first(),
            ier_created=pl.col("ier_created").first(),
        )
        .sort(["rk", "link"])
    ).collect(engine=ENGINE)
    per_ier = (
        ier_links.lazy()
        .group_by("rk")
        .agg(
            total_clicks=pl.col("total_clicks").sum().cast(pl.Int32),
            unique_clicks=pl.len().cast(pl.Int32),
            last_click=pl.col("last_clicked").max(),
            first_click=pl.col("first_clicked").min(),
        )
    )
    last_event = pl.max_horizontal(
        pl.when(pl.col("ier_opened")).then(pl.col("first_open")),
        pl.col("last_click"),
        pl.col("date_bounced"),
        pl.col("ier_unsub"),
    )
    iers = (
        ier_rows.join(per_ier, on="rk", how="left", maintain_order="left")
        .with_columns(
            pl.col("total_clicks").fill_null(0),
            pl.col("unique_clicks").fill_null(0),
            ier_opened=(pl.col("opened_any") & (pl.col("first_open") <= pl.col("ier_cut")))
            | (pl.col("scan") & (pl.col("scan_open") <= pl.col("ier_cut"))),
            # The IER's open date is the first open, the scanner's where there is one.
            first_open=pl.when(pl.col("scan") & (pl.col("scan_open") <= pl.col("ier_cut")))
            .then(pl.col("scan_open"))
            .otherwise(pl.col("first_open")),
            ier_unsub=pl.when(pl.col("date_unsub") <= pl.col("ier_cut")).then(pl.col("date_unsub")),
        )
        .with_columns(
            tracking_as_of=pl.max_horizontal(
                pl.col("ier_created"), world.sync.ceil_expr(last_event)
            )
        )
    )
    outputs: dict[str, pl.LazyFrame] = {
        "individual_email_results": ier_frame(send, programme, world.records, iers),
        "tasks": task_frame(
            params, send, programme, world.population.campaigns.ids, counters["task"], iers
        ),
        "ground_truth": ground_truth_frame(send, lazy),
        "signal_truth": signal_truth_frame(send, lazy, open_events.lazy(), click_events.lazy()),
        "_totals": totals_frame(lazy, click_events.lazy()),
        "_tracking": iers.select(pl.col("tracking_as_of").max()),
        "_suppress": suppress_frame(world.population.people.height, lazy),
        **extract_frames(send, lazy, open_events.lazy(), click_events.lazy()),
    }
    if ier_links.height:
        outputs["individual_links"] = link_frame(
            send, world.sync, counters["link"], ier_links.lazy()
        )
    frames = dict(zip(outputs, pl.collect_all(list(outputs.values()), engine=ENGINE), strict=True))
    _, counters = counters.take("link", ier_links.height)
    _, counters = counters.take("task", frames["tasks"].height)
    counts = frames["ground_truth"].group_by("reason").len()
    return Block(
        frames={k: v for k, v in frames.items() if not k.startswith("_")},
        totals={k: int(v) for k, v in frames["_totals"].row(0, named=True).items()},
        tracking_as_of=frames["_tracking"].item(),
        planted={
            str(reason): int(n) for reason, n in zip(counts["reason"], counts["len"], strict=True)
        },
        suppress=frames["_suppress"],
        counters=counters,
    )


def totals_frame(rows: pl.LazyFrame, clicks: pl.LazyFrame) -> pl.LazyFrame:
    """Marketing Cloud's send totals for the block (every recipient counts)."""
    return rows.select(
        number_sent=pl.len().cast(pl.Int64),
        number_hard_bounces=(pl.col("bounce_cat") == "Hard bounce").sum().cast(pl.Int64),
        number_soft_bounces=pl.col("bounce_cat")
        .is_in(["Soft bounce", "Block bounce"])
        .sum()
        .cast(pl.Int64),
        number_unique_opens=pl.col("mc_opened").sum().cast(pl.Int64),
        number_unsubscribed=pl.col("date_unsub").is_not_null().sum().cast(pl.Int64),
    ).join(
        clicks.select(number_unique_clicks=pl.col("rk").n_unique().cast(pl.Int64)),
        how="cross",
    )


def suppress_frame(n_people: int, rows: pl.LazyFrame) -> pl.LazyFrame:
    """People who unsubscribed or hard-bounced in this block, and when."""
    return (
        rows.filter(pl.col("p") < n_people)
        .select(
            "p",
            t=pl.min_horizontal(
                pl.col("date_unsub"),
                pl.when(pl.col("bounce_cat") == "Hard bounce").then(pl.col("date_bounced")),
            ),
        )
        .filter(pl.col("t").is_not_null())
    )


def apply_suppression(people: pl.DataFrame, gone: pl.DataFrame) -> pl.DataFrame:
    """The people with those in ``gone`` kept out of sends after their time ``t``."""
    if gone.height == 0:
        return people
    current = people["suppressed_at"].gather(gone["p"])
    new = pl.DataFrame({"a": current, "b": gone["t"]}).select(pl.min_horizontal("a", "b"))
    column = people["suppressed_at"].clone().scatter(gone["p"], new.to_series())
    return people.with_columns(column.alias("suppressed_at"))


def signal_truth_frame(
    send: Send, rows: pl.LazyFrame, opens: pl.LazyFrame, clicks: pl.LazyFrame
) -> pl.LazyFrame:
    """Per recipient who opened or clicked: persona, scanner and human clicks, machine open.

    ``scanner_clicks``/``human_clicks`` count the extract's click events; the ``ier_`` ones
    those the IER saw (events up to its own cut, recipients with an IER).
    """
    per_click = (
        clicks.join(rows.select("rk", "ier_cut", "has_ier"), on="rk", how="left")
        .group_by("rk")
        .agg(
            scanner_clicks=pl.col("machine").sum().cast(pl.Int64),
            human_clicks=(~pl.col("machine")).sum().cast(pl.Int64),
            ier_scanner_clicks=(
                pl.col("machine") & pl.col("has_ier") & (pl.col("t") <= pl.col("ier_cut"))
            )
            .sum()
            .cast(pl.Int64),
            ier_human_clicks=(
                ~pl.col("machine") & pl.col("has_ier") & (pl.col("t") <= pl.col("ier_cut"))
            )
            .sum()
            .cast(pl.Int64),
        )
    )
    per_open = (
        opens.join(rows.select("rk", "persona"), on="rk", how="left")
        .group_by("rk")
        .agg(machine_open=(pl.col("persona") == APPLE).any())
    )
    deleted = pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD
    frame = (
        rows.join(per_open, on="rk", how="left")
        .join(per_click, on="rk", how="left")
        .filter(pl.col("machine_open").is_not_null() | pl.col("scanner_clicks").is_not_null())
        .select(
            job_id=pl.lit(send.job_id, dtype=pl.Int64),
            batch_id=pl.col("batch_id").cast(pl.Int64),
            subscriber_key=pl.when(~deleted).then(pl.col("mc_key")),
            recipient_id=pl.col("recipient_id"),
            ier_id=pl.col("ier_id"),
            persona=pl.col("persona"),
            scanner_clicks=pl.col("scanner_clicks").fill_null(0),
            human_clicks=pl.col("human_clicks").fill_null(0),
            ier_scanner_clicks=pl.col("ier_scanner_clicks").fill_null(0),
            ier_human_clicks=pl.col("ier_human_clicks").fill_null(0),
            machine_open=pl.col("machine_open").fill_null(False),
        )
    )
    return frame.cast(SIGNAL_TRUTH_SCHEMA)
