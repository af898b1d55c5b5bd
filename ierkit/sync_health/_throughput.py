"""The sync throughput model: how many IERs the Connect sync writes per cycle, and when.

The Marketing Cloud Connect sync runs in cycles (hourly or daily, a package setting) and writes
at most so many IERs per cycle. The throughput is estimated from the org's own IERs: IER
``created_date`` is bucketed into cycles, and a cycle counts as a full one when some send still
had IERs left for a later cycle.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Final, Literal

import polars as pl

from ierkit import clock
from ierkit.errors import IerkitError

#: The Connect sync frequencies (package setting ``Frequency``: Hourly or Daily).
CYCLES: Final[dict[str, dt.timedelta]] = {
    "hourly": dt.timedelta(hours=1),
    "daily": dt.timedelta(days=1),
}
Cycle = Literal["hourly", "daily"]

# Bins of a cycle used to find when in the cycle the sync writes (its phase).
_PHASE_BINS: Final = 60


class MatchingError(IerkitError):
    """The data cannot be matched (missing columns, unknown cycle); the message says which."""


def cycle_length(cycle: str) -> dt.timedelta:
    """The length of a sync cycle named ``cycle`` (``hourly`` or ``daily``).

    Raises:
        MatchingError: For a name that is not a Connect sync frequency.
    """
    try:
        return CYCLES[cycle]
    except KeyError:
        raise MatchingError(
            f"sync cycle {cycle!r} is not one of {', '.join(CYCLES)} "
            "(the Connect Frequency setting)"
        ) from None


@dataclass(frozen=True)
class ThroughputEstimate:
    """How fast the org's tracking sync writes IERs, estimated from its own IERs.

    Attributes:
        cycle: ``hourly`` or ``daily``.
        per_cycle_median: IERs a full cycle writes (median over full cycles); None with no IERs.
        per_cycle_p10: 10th percentile of the same.
        per_cycle_p90: 90th percentile of the same.
        full_cycles: Cycles the estimate rests on (cycles after which a send still had IERs
            waiting). 0 means no send ever needed two cycles: the figures are then the largest
            cycle seen, a lower bound (``lower_bound`` True).
        lower_bound: True when the real throughput may be higher than the figures.
        phase: Where in the cycle the sync writes, as an offset from the top of the hour (hourly)
            or from midnight UTC (daily).
        delay_median: Median time from a send to its IERs (``created_date - date_sent``).
        delay_p90: 90th percentile of the same.
        iers: IERs the estimate looked at.
    """

    cycle: str
    per_cycle_median: float | None
    per_cycle_p10: float | None
    per_cycle_p90: float | None
    full_cycles: int
    lower_bound: bool
    phase: dt.timedelta
    delay_median: dt.timedelta | None
    delay_p90: dt.timedelta | None
    iers: int

    @property
    def cycle_length(self) -> dt.timedelta:
        """The length of one sync cycle."""
        return cycle_length(self.cycle)

    def next_cycle(self, after: dt.datetime) -> dt.datetime:
        """The start of the first sync cycle at or after ``after``."""
        length = self.cycle_length.total_seconds()
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + self.phase
        cycles = math.ceil((clock.to_utc(after) - epoch).total_seconds() / length)
        return epoch + dt.timedelta(seconds=cycles * length)

    def __str__(self) -> str:
        if self.per_cycle_median is None:
            return f"Sync throughput: no IERs to estimate it from ({self.cycle} cycles assumed)."
        unit = "hour" if self.cycle == "hourly" else "day"
        if self.lower_bound:
            text = (
                f"Sync throughput: at least {self.per_cycle_median:,.0f} IERs per {unit} (no send "
                "has needed more than one cycle, so this is the largest cycle seen)."
            )
        else:
            text = (
                f"Sync throughput: about {self.per_cycle_median:,.0f} IERs per {unit} "
                f"(10th-90th percentile {self.per_cycle_p10:,.0f}-{self.per_cycle_p90:,.0f}, "
                f"from {self.full_cycles:,} full cycles)."
            )
        if self.delay_median is not None and self.delay_p90 is not None:
            text += (
                f" Time from send to IER: median {_duration_text(self.delay_median)}, "
                f"90% within {_duration_text(self.delay_p90)}."
            )
        return text


def _duration_text(value: dt.timedelta) -> str:
    minutes = value.total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _ier_send_key(iers: pl.LazyFrame) -> pl.LazyFrame:
    """IERs with ``send_key``: the send and batch they belong to, for any package version."""
    return iers.with_columns(
        send_key=pl.concat_str(
            [
                pl.coalesce(
                    pl.col("job_id").cast(pl.String),
                    pl.col("email_send_id"),
                    pl.col("triggered_send_id"),
                ),
                pl.col("batch_id").fill_null(0).cast(pl.String),
            ],
            separator="/",
        )
    )


def estimate_throughput(
    iers: pl.LazyFrame, *, cycle: Cycle = "hourly", as_of: dt.datetime | None = None
) -> ThroughputEstimate:
    """Estimate the sync's IERs per cycle from the org's own IERs.

    IER ``created_date`` values are bucketed into sync cycles (the phase, when in the hour or day
    the sync writes, is found as the end of the longest quiet stretch of the cycle). A cycle is
    full when some send or batch written in it still had IERs left for a later cycle: the sync
    wrote all it could. The IERs written in full cycles give the throughput and its spread.

    Args:
        iers: Individual email results (``created_date``, ``date_sent``, ``job_id``,
            ``batch_id``, ``email_send_id``, ``triggered_send_id``).
        cycle: The Connect sync frequency.
        as_of: Ignore IERs created after this instant (UTC); all when None.

    Returns:
        The estimate; its fields are None when there are no IERs.
    """
    length = cycle_length(cycle)
    seconds = int(length.total_seconds())
    written = _ier_send_key(iers).filter(pl.col("created_date").is_not_null())
    if as_of is not None:
        written = written.filter(pl.col("created_date") <= clock.to_utc(as_of))
    # Everything below reads the IERs lazily and collects only small aggregates (a few dozen
    # phase bins, one row per cycle), so an org of millions of IERs is never held in memory.
    frame = written.select(
        "send_key",
        t=pl.col("created_date").dt.epoch("s"),
        delay=(pl.col("created_date") - pl.col("date_sent")).dt.total_seconds(),
    )
    bin_seconds = seconds // _PHASE_BINS
    delays = pl.col("delay").drop_nulls()
    bins_frame, stats = pl.collect_all(
        [
            frame.group_by(b=(pl.col("t") % seconds) // bin_seconds).len().select("b"),
            frame.select(
                iers=pl.len(),
                delays=delays.len(),
                delay_median=delays.quantile(0.5, "nearest"),
                delay_p90=delays.quantile(0.9, "nearest"),
            ),
        ]
    )
    empty = ThroughputEstimate(cycle, None, None, None, 0, True, dt.timedelta(0), None, None, 0)
    counted = int(stats.item(0, "iers"))
    if counted == 0:
        return empty
    phase_bin = _phase_bin(set(bins_frame.get_column("b").to_list()))
    phase = phase_bin * bin_seconds
    per_send_cycle = (
        frame.with_columns(c=(pl.col("t") - phase) // seconds)
        .group_by("send_key", "c")
        .agg(n=pl.len())
        .with_columns(last=pl.col("c").max().over("send_key"))
    )
    per_cycle = (
        per_send_cycle.group_by("c")
        .agg(n=pl.col("n").sum(), full=(pl.col("c") < pl.col("last")).any())
        .collect()
    )
    full = per_cycle.filter(pl.col("full")).get_column("n").cast(pl.Float64)

    def delay_at(name: str) -> dt.timedelta | None:
        value = stats.item(0, name) if stats.item(0, "delays") else None
        return None if value is None else dt.timedelta(seconds=max(0.0, float(value)))

    if full.len():
        median, p10, p90 = (_quantile(full, q) for q in (0.5, 0.1, 0.9))
        lower = False
    else:
        median = p10 = p90 = float(per_cycle.select(pl.col("n").max()).item())
        lower = True
    return ThroughputEstimate(
        cycle=cycle,
        per_cycle_median=median,
        per_cycle_p10=p10,
        per_cycle_p90=p90,
        full_cycles=int(full.len()),
        lower_bound=lower,
        phase=dt.timedelta(seconds=phase),
        delay_median=delay_at("delay_median"),
        delay_p90=delay_at("delay_p90"),
        iers=counted,
    )


def _quantile(values: pl.Series, q: float) -> float:
    value = values.quantile(q, "linear")
    assert value is not None  # only asked of a non-empty series without nulls
    return value


def _phase_bin(occupied: set[int]) -> int:
    """The bin after the longest circular run of empty bins (0 when every bin is used).

    A sync cycle writes in a burst, so the quiet stretch before the burst marks its start.
    """
    if len(occupied) >= _PHASE_BINS or not occupied:
        return 0
    best_start, best_len = 0, -1
    for start in range(_PHASE_BINS):
        if start in occupied or (start - 1) % _PHASE_BINS not in occupied:
            continue  # runs start right after an occupied bin
        length = 0
        while (start + length) % _PHASE_BINS not in occupied:
            length += 1
        if length > best_len:
            best_start, best_len = start, length
    return (best_start + best_len) % _PHASE_BINS
