"""Headline first: the few figures a report opens with, and the sentences written from them.

Each report has one function here that takes the frames the report already computed and returns
a ``Headlines``: three to five figures (label, value, change against the previous week where
the report has one) and two or three sentences. The figures are worded here, once, so the
notebook, the weekly index and a test all read the same words.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import great_tables as gt
import polars as pl

from ierkit.present._format import count, percent, size_mb
from ierkit.present._render import FONT


@dataclass(frozen=True)
class Figure:
    """One headline figure.

    Attributes:
        label: What it counts, in words.
        value: The value as shown (``291``, ``95.3%``, ``48 MB``).
        change: The change against the previous week in words (``+12 vs last week``); None
            where the report has no previous week.
    """

    label: str
    value: str
    change: str | None = None


@dataclass(frozen=True)
class Headlines:
    """A report's opening: its figures and two or three sentences written from the numbers."""

    figures: tuple[Figure, ...]
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        """The sentences as one paragraph."""
        return " ".join(self.sentences)

    def html(self) -> str:
        """The figures as one row of large numbers (great_tables), the sentences below."""
        # The second row holds the changes; a report without any shows one row only.
        with_changes = any(f.change for f in self.figures)
        frame = pl.DataFrame(
            {f.label: [f.value, f.change or ""][: 2 if with_changes else 1] for f in self.figures}
        )
        digest = hashlib.sha256(self.plain().encode()).hexdigest()
        table = (
            gt.GT(frame, id=f"h{digest[:12]}")
            .tab_style(
                style=[gt.style.text(size="26px", weight="bold")],
                locations=gt.loc.body(rows=[0]),
            )
            .tab_style(
                style=[gt.style.text(size="12px", color="#555555")],
                locations=gt.loc.body(rows=[1] if with_changes else []),
            )
            .cols_align(align="left")
            .tab_source_note(self.text)
            .tab_options(
                table_font_names=FONT,
                table_margin_left="0",
                column_labels_font_size="12px",
                column_labels_border_top_style="hidden",
                table_body_hlines_style="hidden",
                source_notes_font_size="15px",
                source_notes_padding="8px",
            )
        )
        return table.as_raw_html()

    def plain(self) -> str:
        """The figures one a line, then the sentences (for a text email or a log)."""
        lines = [
            f"{f.label}: {f.value}" + (f" ({f.change})" if f.change else "") for f in self.figures
        ]
        return "\n".join([*lines, "", self.text])


def change(now: int, before: int | None, *, unit: str = "") -> str | None:
    """``+12 vs last week`` / ``-3 vs last week`` / ``same as last week``; None without one."""
    if before is None:
        return None
    delta = now - before
    if delta == 0:
        return "same as last week"
    return f"{delta:+,}{unit} vs last week"


def _day(value: dt.date) -> str:
    return value.strftime("%-d %b")


def engagement(
    worklist: pl.DataFrame,
    previous: pl.DataFrame | None,
    *,
    day: dt.date,
    window_days: int,
) -> Headlines:
    """The engagement report's opening, from this week's worklist and last week's.

    Args:
        worklist: The engagement worklist (one row per person and send) for the window.
        previous: The same for the window before it; None when there is none.
        day: The report date.
        window_days: The window's length.

    Returns:
        People who clicked, not followed up, the share followed up, the busiest owner; and
        "291 people clicked in the 7 days to 20 Nov; 279 have not been followed up. Avery
        Collins has the most, 17."
    """

    def people(frame: pl.DataFrame) -> tuple[int, int]:
        per_person = frame.group_by("recipient_id").agg(waiting=(~pl.col("followed_up")).any())
        return per_person.height, int(per_person.get_column("waiting").sum())

    clicked, waiting = people(worklist)
    before = people(previous) if previous is not None else None
    by_owner = (
        worklist.filter(~pl.col("followed_up"))
        .group_by("owner_name")
        .agg(n=pl.col("recipient_id").n_unique())
        .sort("n", "owner_name", descending=[True, False])
    )
    followed = clicked - waiting
    figures = [
        Figure("People who clicked", count(clicked), change(clicked, before and before[0])),
        Figure("Not followed up", count(waiting), change(waiting, before and before[1])),
        Figure(
            "Followed up",
            percent(followed / clicked) if clicked else "none",
            f"{count(followed)} of {count(clicked)} people",
        ),
    ]
    sentences = [
        f"{count(clicked)} {'person' if clicked == 1 else 'people'} clicked in the "
        f"{window_days} days to {_day(day)}; {count(waiting)} "
        f"{'has' if waiting == 1 else 'have'} not been followed up."
    ]
    if by_owner.height:
        top, n = by_owner.row(0)
        figures.append(Figure("Most to follow up", str(top), f"{count(n)} people"))
        sentences.append(f"{top} has the most, {count(n)}.")
    if before is not None:
        trend = "more" if clicked > before[0] else "fewer" if clicked < before[0] else "as many"
        sentences.append(
            f"That is {trend} than the {count(before[0])} of the week before."
            if trend != "as many"
            else "As many as the week before."
        )
    return Headlines(tuple(figures), tuple(sentences))


def sync_health(
    coverage: pl.DataFrame, by_reason: pl.DataFrame, fixable: pl.DataFrame
) -> Headlines:
    """The sync-health report's opening: coverage, missing IERs, the top reason, keys to fix."""
    sent = int(coverage.get_column("sent").sum())
    iers = int(coverage.get_column("iers").sum())
    missing = int(coverage.get_column("missing").sum())
    share = iers / sent if sent else 0.0
    top = by_reason.sort("missing", "reason", descending=[True, False]).head(1)
    figures = [
        Figure("Sends checked", count(coverage.height)),
        Figure("Coverage (IERs of sent)", percent(share), f"{count(iers)} of {count(sent)}"),
        Figure("Missing IERs", count(missing)),
        Figure("Subscriber Keys to fix", count(fixable.height)),
    ]
    sentences = [
        f"{percent(share)} of the {count(sent)} recipients of {count(coverage.height)} sends "
        f"have an IER; {count(missing)} do not."
    ]
    if top.height:
        reason, n = top.item(0, "reason"), int(top.item(0, "missing"))
        sentences.append(
            f"The most common reason: {str(reason).replace('_', ' ')} ({count(n)} missing IERs)."
        )
    return Headlines(tuple(figures), tuple(sentences))


def tracking_decision(decisions: pl.DataFrame) -> Headlines:
    """The tracking decision's opening: programmes per recommendation and storage a month."""
    per = dict(decisions.group_by("recommendation").len().sort("recommendation").rows())
    monthly = float(decisions.get_column("mb_per_month").sum())
    biggest = decisions.sort("mb_per_month", "programme", descending=[True, False]).head(1)
    figures = [
        Figure("IER storage a month", size_mb(monthly), f"{count(decisions.height)} programmes"),
        *(Figure(f"Recommended: {k}", count(int(v))) for k, v in sorted(per.items())),
    ][:5]
    sentences = [
        f"Of {count(decisions.height)} programmes, "
        + ", ".join(f"{count(int(v))} {k}" for k, v in sorted(per.items()))
        + f"; together they write {size_mb(monthly)} of IERs a month."
    ]
    if biggest.height:
        sentences.append(
            f"{biggest.item(0, 'programme')} writes the most, "
            f"{size_mb(float(biggest.item(0, 'mb_per_month')))} a month."
        )
    return Headlines(tuple(figures), tuple(sentences))


def storage(
    *,
    used_mb: float,
    allocation_mb: float,
    threshold_date: dt.date | None,
    retention_date: dt.date | None,
    retention_days: int,
) -> Headlines:
    """The storage forecast's opening: used, allocation, when the org fills, with retention."""
    share = used_mb / allocation_mb if allocation_mb else 0.0
    full = threshold_date.strftime("%b %Y") if threshold_date else "not in 24 months"
    kept = retention_date.strftime("%b %Y") if retention_date else "not in 24 months"
    figures = [
        Figure(
            "Data storage used", size_mb(used_mb), f"{percent(share)} of {size_mb(allocation_mb)}"
        ),
        Figure("Full, keeping every IER", full),
        Figure(f"Full, keeping {retention_days} days", kept),
    ]
    sentences = [
        f"The org uses {size_mb(used_mb)} of its {size_mb(allocation_mb)} ({percent(share)}).",
        (
            f"Keeping every IER it fills in {full}; keeping {retention_days} days, {kept}."
            if threshold_date
            else f"At the recent cadence it does not fill in the next 24 months (with "
            f"{retention_days} days kept: {kept})."
        ),
    ]
    return Headlines(tuple(figures), tuple(sentences))


def cleanup(counts: pl.DataFrame, by_programme: pl.DataFrame, *, retention_days: int) -> Headlines:
    """The cleanup run's opening: records selected, storage freed, the programme freeing most."""
    records = int(counts.get_column("records").sum()) if counts.height else 0
    freed = float(counts.get_column("storage_mb").sum()) if counts.height else 0.0
    top = by_programme.sort("storage_mb", "programme", descending=[True, False]).head(1)
    figures = [
        Figure("Records selected", count(records)),
        Figure("Storage freed", size_mb(freed)),
        Figure("Programmes", count(by_programme.height)),
    ]
    sentences = [
        f"Keeping {retention_days} days selects {count(records)} records and frees "
        f"{size_mb(freed)}."
    ]
    if top.height:
        sentences.append(
            f"{top.item(0, 'programme')} frees the most, "
            f"{size_mb(float(top.item(0, 'storage_mb')))}."
        )
    return Headlines(tuple(figures), tuple(sentences))


def figures_frame(figures: Sequence[Figure]) -> pl.DataFrame:
    """Figures as a frame (label, value, change), for the week index and tests."""
    return pl.DataFrame(
        {
            "label": [f.label for f in figures],
            "value": [f.value for f in figures],
            "change": [f.change or "" for f in figures],
        },
        schema={"label": pl.String, "value": pl.String, "change": pl.String},
    )
