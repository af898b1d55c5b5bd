"""Charts of the engagement reports (altair), and saving them for static reports.

Every chart function takes the output of a report in ``ierkit.reports`` (a polars DataFrame, or
a LazyFrame, which is collected here at the edge), aggregates it again in polars to the grain
the chart draws, and caps the number of marks, so the data handed to altair stays small whatever
the size of the org: no ``MaxRowsError``, and specs a few kilobytes big. Saving goes through
vl-convert, which bundles Vega: PNG, SVG and HTML files render offline (no CDN).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import vl_convert

from ierkit import present, reasons
from ierkit._exprs import rate
from ierkit.errors import IerkitError

__all__ = [
    "MAX_ROWS",
    "PALETTE",
    "ChartError",
    "chart_data",
    "cleanup_chart",
    "click_heatmap_chart",
    "decision_chart",
    "rate_bars",
    "rate_finding",
    "save_chart",
    "storage_projection_chart",
    "trend_chart",
]

#: altair refuses inline data above this many rows (``alt.data_transformers`` default); every
#: chart here keeps its data below it by aggregating first.
MAX_ROWS = 5000

#: The one palette of every chart: Okabe and Ito's, told apart with any colour vision.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion: what to fix, thresholds
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#999999",  # grey: waiting, other
)
_FIX, _WAIT, _FINE, _BY_DESIGN = PALETTE[3], PALETTE[7], PALETTE[0], PALETTE[2]


@alt.theme.register("ierkit", enable=True)
def _theme() -> alt.theme.ThemeConfig:
    """Every chart's categories in ``PALETTE``; sequential scales stay blue (``blues``)."""
    return alt.theme.ThemeConfig(
        config={
            "range": {"category": list(PALETTE)},
            "title": {"anchor": "start", "fontSize": 14},
        }
    )


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_METRIC_LABELS = {
    "open": ("unique_opens", "Open rate"),
    "click": ("unique_clicks", "Click rate"),
    "unsubscribe": ("unsubscribes", "Unsubscribe rate"),
}

_LABEL_TITLES = {
    "campaign_name": "Campaign",
    "owner_name": "Record owner",
    "segment_value": "Segment",
    "programme": "Programme",
}


class ChartError(IerkitError, ValueError):
    """A chart cannot be drawn or saved as asked; the message says what to change."""


def _frame(data: pl.DataFrame | pl.LazyFrame, needed: tuple[str, ...], chart: str) -> pl.DataFrame:
    frame = data.collect() if isinstance(data, pl.LazyFrame) else data
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ChartError(
            f"{chart}: the data lacks column(s) {', '.join(missing)}; pass the output of the "
            f"matching ierkit.reports function"
        )
    return frame


def _check_rows(frame: pl.DataFrame, chart: str) -> pl.DataFrame:
    if frame.height > MAX_ROWS:
        raise ChartError(f"{chart}: {frame.height} rows to draw; aggregate below {MAX_ROWS}")
    return frame


def trend_chart(
    trend: pl.DataFrame | pl.LazyFrame,
    *,
    title: str | None = None,
    max_programmes: int = 10,
) -> alt.FacetChart:
    """Lines of weekly unique opens and unique clicks per programme.

    Args:
        trend: Output of ``reports.programme_trend`` (``week_start``, ``programme``,
            ``unique_opens``, ``unique_clicks``).
        title: Chart title.
        max_programmes: Programmes beyond the largest (by recipients sent, when ``sent`` is
            there) are drawn together as "Other programmes".

    Returns:
        Two panels, opens above clicks, one line per programme, sharing the week axis.
    """
    needed = ("week_start", "programme", "unique_opens", "unique_clicks")
    frame = _frame(trend, needed, "trend_chart")
    weight = "sent" if "sent" in frame.columns else "unique_opens"
    ranked = (
        frame.group_by("programme")
        .agg(pl.col(weight).sum())
        .sort([weight, "programme"], descending=[True, False])
        .head(max_programmes)
        .get_column("programme")
    )
    long = (
        frame.with_columns(
            programme=pl.when(pl.col("programme").is_in(ranked.implode()))
            .then(pl.col("programme"))
            .otherwise(pl.lit("Other programmes"))
        )
        .group_by("week_start", "programme")
        .agg(pl.col("unique_opens").sum(), pl.col("unique_clicks").sum())
        .rename({"unique_opens": "Unique opens", "unique_clicks": "Unique clicks"})
        .unpivot(index=["week_start", "programme"], variable_name="measure", value_name="count")
        .sort("measure", "programme", "week_start")
    )
    _check_rows(long, "trend_chart")
    base = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "week_start:T", title="Week starting (sent, UTC)", axis=alt.Axis(format="%d %b")
            ),
            y=alt.Y("count:Q", title="Recipients"),
            color=alt.Color("programme:N", title="Programme"),
            tooltip=[
                alt.Tooltip("week_start:T", title="Week starting"),
                alt.Tooltip("programme:N", title="Programme"),
                alt.Tooltip("measure:N", title="Measure"),
                alt.Tooltip("count:Q", title="Recipients", format=","),
            ],
        )
    )
    chart: alt.FacetChart = (
        base.properties(width=560, height=180)
        .facet(
            row=alt.Row(
                "measure:N",
                title=None,
                sort=["Unique opens", "Unique clicks"],
                # Panel names above each panel, horizontal, rather than rotated at the side.
                header=alt.Header(
                    labelOrient="top", labelAngle=0, labelAnchor="start", labelFontWeight="bold"
                ),
            )
        )
        .resolve_scale(y="independent")
        .properties(title=title or _trend_finding(long))
    )
    return chart


def rate_bars(
    summary: pl.DataFrame | pl.LazyFrame,
    *,
    metric: str = "open",
    label_column: str = "campaign_name",
    title: str | None = None,
    max_bars: int = 40,
) -> alt.Chart:
    """Bars of a rate per campaign (or owner, or segment), over sent and over delivered.

    The rates are recomputed from the summed counts, so rows that share a label (two campaigns
    of one name) are combined correctly.

    Args:
        summary: Output of ``reports.campaign_summary`` (or ``owner_summary``,
            ``segment_summary``): counts ``sent``, ``delivered`` and the metric's count.
        metric: ``"open"``, ``"click"`` or ``"unsubscribe"``.
        label_column: The column naming each bar.
        title: Chart title; a default naming the metric and both bases.
        max_bars: Only the largest this many (by sent) are drawn; the subtitle says so.

    Returns:
        Horizontal bars, two per label (over sent, over delivered), largest label first.

    Raises:
        ChartError: For an unknown metric or missing columns.
    """
    if metric not in _METRIC_LABELS:
        raise ChartError(f"rate_bars: metric {metric!r} is not one of {', '.join(_METRIC_LABELS)}")
    count, rate_title = _METRIC_LABELS[metric]
    frame = _frame(summary, (label_column, "sent", "delivered", count), "rate_bars")
    per_label = (
        frame.with_columns(pl.col(label_column).cast(pl.String).fill_null("(none)"))
        .group_by(label_column)
        .agg(pl.col("sent", "delivered", count).sum())
        .sort(["sent", label_column], descending=[True, False])
    )
    total = per_label.height
    per_label = per_label.head(max_bars)
    order = per_label.get_column(label_column).to_list()
    long = (
        per_label.with_columns(
            over_sent=rate(count, "sent"), over_delivered=rate(count, "delivered")
        )
        .select(label_column, "sent", "delivered", "over_sent", "over_delivered")
        .unpivot(
            index=[label_column, "sent", "delivered"],
            on=["over_sent", "over_delivered"],
            variable_name="basis",
            value_name="rate",
        )
        .with_columns(
            basis=pl.col("basis").replace_strict(
                {"over_sent": "over sent", "over_delivered": "over delivered"}
            )
        )
        .sort(label_column, "basis")
    )
    _check_rows(long, "rate_bars")
    label_title = _LABEL_TITLES.get(label_column, label_column.replace("_", " ").capitalize())
    subtitle = (
        f"Largest {max_bars} of {total} by recipients sent"
        if total > max_bars
        else "Salesforce divides by sent, Marketing Cloud by delivered (sent minus bounced)"
    )
    basis_scale = alt.Scale(domain=["over sent", "over delivered"])
    chart: alt.Chart = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y(f"{label_column}:N", title=label_title, sort=order),
            yOffset=alt.YOffset("basis:N", scale=basis_scale),
            x=alt.X("rate:Q", title=rate_title, axis=alt.Axis(format=".0%")),
            color=alt.Color("basis:N", title="Rate", scale=basis_scale),
            tooltip=[
                alt.Tooltip(f"{label_column}:N", title=label_title),
                alt.Tooltip("basis:N", title="Rate"),
                alt.Tooltip("rate:Q", title=rate_title, format=".1%"),
                alt.Tooltip("sent:Q", title="Sent", format=","),
                alt.Tooltip("delivered:Q", title="Delivered", format=","),
            ],
        )
        .properties(
            title=alt.Title(
                title or f"{rate_title} per {label_title.lower()}: over sent and over delivered",
                subtitle=subtitle,
            ),
            width=520,
        )
    )
    return chart


def click_heatmap_chart(
    heatmap: pl.DataFrame | pl.LazyFrame,
    *,
    value: str = "links_clicked",
    title: str | None = None,
) -> alt.Chart:
    """A weekday-by-hour heat map of link clicks: always 7 x 24 cells.

    Args:
        heatmap: Output of ``reports.click_heatmap`` (``weekday`` 1-7, ``hour`` 0-23, counts,
            and ``time_zone``); rows are summed per cell, so concatenated outputs work too.
        value: ``"links_clicked"`` (link details, each at its last click) or ``"total_clicks"``.
        title: Chart title; by default one naming the time zone.

    Returns:
        A heat map with hours across and weekdays down; empty cells show zero.
    """
    if value not in ("links_clicked", "total_clicks"):
        raise ChartError(f"click_heatmap_chart: value {value!r} is not links_clicked/total_clicks")
    frame = _frame(heatmap, ("weekday", "hour", value), "click_heatmap_chart")
    zones = (
        frame.get_column("time_zone").drop_nulls().unique().sort().to_list()
        if "time_zone" in frame.columns
        else []
    )
    if len(zones) > 1:
        raise ChartError(f"click_heatmap_chart: data mixes time zones {zones}; use one")
    zone = zones[0] if zones else "UTC"
    grid = pl.DataFrame({"weekday": list(range(1, 8))}, schema={"weekday": pl.Int8}).join(
        pl.DataFrame({"hour": list(range(24))}, schema={"hour": pl.Int8}), how="cross"
    )
    cells = (
        grid.join(
            frame.select(
                pl.col("weekday").cast(pl.Int8), pl.col("hour").cast(pl.Int8), pl.col(value)
            )
            .group_by("weekday", "hour")
            .agg(pl.col(value).sum().alias("clicks")),
            on=["weekday", "hour"],
            how="left",
        )
        .with_columns(
            pl.col("clicks").fill_null(0),
            weekday_name=pl.col("weekday").replace_strict(
                list(range(1, 8)), list(_WEEKDAYS), return_dtype=pl.String
            ),
        )
        .sort("weekday", "hour")
    )
    measure = "Links clicked" if value == "links_clicked" else "Clicks"
    chart: alt.Chart = (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title=f"Hour of day ({zone})"),
            y=alt.Y("weekday_name:O", title="Weekday", sort=list(_WEEKDAYS)),
            color=alt.Color("clicks:Q", title=measure, scale=alt.Scale(scheme="blues")),
            tooltip=[
                alt.Tooltip("weekday_name:O", title="Weekday"),
                alt.Tooltip("hour:O", title="Hour"),
                alt.Tooltip("clicks:Q", title=measure, format=","),
            ],
        )
        .properties(
            title=title or _peak_finding(cells, measure, zone),
            width=600,
            height=220,
        )
    )
    return chart


def chart_data(chart: alt.TopLevelMixin) -> list[dict[str, Any]]:
    """The inline data rows of a chart (for checks: how much altair will embed)."""
    spec = chart.to_dict()
    datasets = spec.get("datasets", {})
    return [row for rows in datasets.values() for row in rows]


def save_chart(
    chart: alt.TopLevelMixin, path: str | os.PathLike[str], *, scale: float = 2.0
) -> Path:
    """Save a chart as PNG, SVG or self-contained HTML, by the file's suffix.

    Everything renders with vl-convert's bundled Vega: no network, and the HTML carries its
    JavaScript inline so it shows offline.

    Args:
        chart: An altair chart.
        path: Where to write; ``.png``, ``.svg`` or ``.html``. Parent folders are created.
        scale: Pixel density of a PNG (2 = sharp on high-density screens).

    Returns:
        The path written.

    Raises:
        ChartError: For another suffix.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg", ".html"):
        raise ChartError(f"save_chart: {target.name}: use a .png, .svg or .html file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        # inline=True embeds vl-convert's Vega bundle instead of <script src=CDN>.
        chart.save(target, format="html", inline=True)
        return target
    spec = chart.to_json()
    if suffix == ".png":
        target.write_bytes(vl_convert.vegalite_to_png(spec, scale=scale))
    else:
        target.write_text(vl_convert.vegalite_to_svg(spec), encoding="utf-8")
    return target


def decision_chart(
    decisions: pl.DataFrame | pl.LazyFrame,
    *,
    title: str | None = None,
) -> alt.Chart:
    """One point per programme: MB of IERs written a month against the share followed up.

    Args:
        decisions: Output of ``ierkit.decision.decide`` (``programme``, ``mb_per_month``,
            ``actionability``, ``recommendation``).
        title: Chart title.
    """
    frame = _frame(
        decisions,
        ("programme", "mb_per_month", "actionability", "recommendation"),
        "decision_chart",
    )
    data = _check_rows(
        frame.select(
            "programme",
            "recommendation",
            pl.col("mb_per_month").fill_null(0.0),
            pl.col("actionability").fill_null(0.0),
        ).sort("programme"),
        "decision_chart",
    )
    points = (
        alt.Chart(data, title=title or _decision_finding(data))
        .mark_circle(size=160, opacity=0.85)
        .encode(
            x=alt.X(
                "actionability:Q", title="Engaged recipients followed up", axis=alt.Axis(format="%")
            ),
            y=alt.Y("mb_per_month:Q", title="IER and link storage written a month (MB)"),
            color=alt.Color("recommendation:N", title="Recommendation"),
            tooltip=[
                "programme",
                "recommendation",
                alt.Tooltip("actionability:Q", format=".1%"),
                alt.Tooltip("mb_per_month:Q", format=",.1f"),
            ],
        )
    )
    labels = points.mark_text(align="left", dx=9, fontSize=11).encode(text="programme:N")
    chart: alt.Chart = (points + labels).properties(width=560, height=340)
    return chart


def storage_projection_chart(
    projections: dict[str, pl.DataFrame | pl.LazyFrame],
    *,
    allocation_mb: float,
    threshold: float,
    title: str | None = None,
) -> alt.LayerChart:
    """Lines of used storage month by month, one per scenario, with the threshold marked.

    Args:
        projections: Scenario name to ``ierkit.storage.project_storage`` output
            (``month_start``, ``used_mb``).
        allocation_mb: The org's allocation, drawn as a line.
        threshold: Share of the allocation that counts as full, drawn as a dashed line.
        title: Chart title.
    """
    frames = [
        _frame(p, ("month_start", "used_mb"), "storage_projection_chart")
        .select("month_start", "used_mb")
        .with_columns(scenario=pl.lit(name))
        for name, p in projections.items()
    ]
    data = _check_rows(
        pl.concat(frames).sort("scenario", "month_start"), "storage_projection_chart"
    )
    lines = (
        alt.Chart(
            data,
            title=title
            or _storage_finding(data, list(projections), allocation_mb * threshold, threshold),
        )
        .mark_line(point=True)
        .encode(
            x=alt.X("month_start:T", title="Month"),
            y=alt.Y("used_mb:Q", title="Data storage in use (MB)"),
            color=alt.Color("scenario:N", title="Scenario"),
            tooltip=["scenario", "month_start:T", alt.Tooltip("used_mb:Q", format=",.0f")],
        )
    )
    rules = pl.DataFrame(
        {
            "level": ["allocation", f"{threshold:.0%} threshold"],
            "mb": [allocation_mb, allocation_mb * threshold],
        }
    )
    marks = (
        alt.Chart(rules)
        .mark_rule(strokeDash=[6, 4], color=_FIX)
        .encode(y="mb:Q", tooltip=["level", alt.Tooltip("mb:Q", format=",.0f")])
    )
    chart: alt.LayerChart = (lines + marks).properties(width=620, height=320)
    return chart


def cleanup_chart(
    by_month: pl.DataFrame | pl.LazyFrame,
    *,
    title: str | None = None,
) -> alt.Chart:
    """Stacked bars of IERs and link details selected per month, with the storage they free.

    Args:
        by_month: ``CleanupPlan.by_month`` (``month``, ``iers``, ``links``, ``storage_mb``).
        title: Chart title.
    """
    frame = _frame(by_month, ("month", "iers", "links"), "cleanup_chart")
    data = _check_rows(
        frame.unpivot(
            index="month", on=["iers", "links"], variable_name="object", value_name="records"
        )
        .with_columns(
            pl.col("object").replace({"iers": "Individual Email Results", "links": "Link details"})
        )
        .sort("month", "object"),
        "cleanup_chart",
    )
    chart: alt.Chart = (
        alt.Chart(data, title=title or _cleanup_finding(data))
        .mark_bar()
        .encode(
            x=alt.X("month:T", title="Month sent", timeUnit="yearmonth"),
            y=alt.Y("records:Q", title="Records selected"),
            color=alt.Color("object:N", title="Object"),
            tooltip=[
                "object",
                alt.Tooltip("month:T", timeUnit="yearmonth"),
                alt.Tooltip("records:Q", format=","),
            ],
        )
        .properties(width=560, height=300)
    )
    return chart


def missing_by_reason_chart(by_reason: pl.DataFrame, *, title: str | None = None) -> alt.Chart:
    """A horizontal bar chart of missing IERs per reason (``ierkit.sync_health.missing_by_reason``).

    Args:
        by_reason: ``missing_by_reason`` output, collected (reason, missing, sends, fix).
        title: Chart title; "Missing IERs by reason" when None.
    """
    data = by_reason.select(
        "reason",
        "missing",
        "sends",
        "fix",
        what=pl.when(pl.col("reason") == reasons.IN_SYNC_WINDOW)
        .then(pl.lit("wait"))
        .when(pl.col("reason").is_in([reasons.LEAD_CONVERTED, reasons.DELETED_IN_MARKETING_CLOUD]))
        .then(pl.lit("not repairable"))
        # Dedupe Subscribers sent to one of the people sharing an address: nothing to fix.
        .when(pl.col("reason") == reasons.DEDUPLICATED)
        .then(pl.lit("by design"))
        .otherwise(pl.lit("fix")),
    )
    chart: alt.Chart = (
        alt.Chart(data, title=title or _missing_finding(data))
        .mark_bar()
        .encode(
            x=alt.X("missing:Q", title="missing IERs (events for deleted_in_marketing_cloud)"),
            y=alt.Y("reason:N", sort="-x", title=None),
            color=alt.Color(
                "what:N",
                title=None,
                scale=alt.Scale(
                    domain=["fix", "wait", "not repairable", "by design"],
                    range=[_FIX, _WAIT, _FINE, _BY_DESIGN],
                ),
            ),
            tooltip=["reason", "missing", "sends", "fix"],
        )
        .properties(width=480, height=alt.Step(24))
    )
    return chart


# --- titles that state the finding ---------------------------------------------------------------


def _trend_finding(long: pl.DataFrame) -> str:
    clicks = long.filter(pl.col("measure") == "Unique clicks")
    if clicks.is_empty():
        return "Weekly unique opens and clicks per programme"
    last = clicks.filter(pl.col("week_start") == pl.col("week_start").max())
    top = last.sort(["count", "programme"], descending=[True, False]).row(0, named=True)
    return (
        f"{top['programme']} drew the most clicks in the latest week: "
        f"{present.count(int(top['count']))} people"
    )


def _peak_finding(cells: pl.DataFrame, measure: str, zone: str) -> str:
    top = cells.sort(["clicks", "weekday", "hour"], descending=[True, False, False]).row(
        0, named=True
    )
    if not top["clicks"]:
        return f"{measure} by weekday and hour ({zone}): none yet"
    return f"{measure} peak on {top['weekday_name']}s at {top['hour']:02d}:00 ({zone})"


def _decision_finding(data: pl.DataFrame) -> str:
    if data.is_empty():
        return "Storage a month against actionability, per programme"
    top = data.sort(["mb_per_month", "programme"], descending=[True, False]).row(0, named=True)
    return (
        f"{top['programme']} writes the most IER storage, {present.size_mb(top['mb_per_month'])} "
        f"a month, and {present.percent(top['actionability'])} of its engaged people are "
        "followed up"
    )


def _storage_finding(
    data: pl.DataFrame, scenarios: list[str], full_mb: float, threshold: float
) -> str:
    parts = []
    for scenario in scenarios:
        points = data.filter(pl.col("scenario") == scenario).sort("month_start")
        below = points.filter(pl.col("used_mb") < full_mb)
        crossed = points.filter(pl.col("used_mb") >= full_mb)
        # Points are month starts: the line crosses during the month of the last point below.
        month = below.get_column("month_start").max() if crossed.height else None
        when = (
            f"passes {threshold:.0%} of the allocation in {month:%b %Y}"
            if isinstance(month, dt.date)
            else f"stays under {threshold:.0%} of the allocation"
        )
        parts.append(f"{scenario}: storage {when}")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] if text else "Projected data storage in use"


def _cleanup_finding(data: pl.DataFrame) -> str:
    per_month = (
        data.group_by("month")
        .agg(pl.col("records").sum())
        .sort(["records", "month"], descending=[True, False])
    )
    if per_month.is_empty() or not per_month.item(0, "records"):
        return "Nothing to delete at this retention"
    return (
        f"IERs sent in {per_month.item(0, 'month'):%b %Y} are the most to delete: "
        f"{present.count(int(per_month.item(0, 'records')))} records"
    )


def _missing_finding(data: pl.DataFrame) -> str:
    top = data.sort(["missing", "reason"], descending=[True, False])
    if top.is_empty():
        return "No missing IERs"
    return (
        f"{str(top.item(0, 'reason')).replace('_', ' ').capitalize()} explains the most "
        f"missing IERs: {present.count(int(top.item(0, 'missing')))}"
    )


def rate_finding(
    summary: pl.DataFrame, *, metric: str = "open", label_column: str = "campaign_name"
) -> str:
    """A title for ``rate_bars`` that states the finding: the best rate and by how much.

    Args:
        summary: A campaign, owner or segment summary (``sent``, ``delivered`` and the count).
        metric: ``open``, ``click`` or ``unsubscribe``.
        label_column: The column naming each bar.
    """
    count, rate_title = _METRIC_LABELS[metric]
    ranked = (
        # "(no campaign)" and other placeholders are not a finding.
        summary.filter(
            (pl.col("delivered") > 0)
            & pl.col(label_column).is_not_null()
            & ~pl.col(label_column).cast(pl.String).str.starts_with("(")
        )
        .with_columns(share=rate(count, "delivered"))
        .sort(["share", label_column], descending=[True, False])
    )
    if ranked.is_empty():
        return f"{rate_title}: nothing delivered yet"
    best = ranked.row(0, named=True)
    return (
        f"{best[label_column]} has the highest {rate_title.lower()}: "
        f"{present.percent(best['share'])} of delivered"
    )


def score_distribution_chart(
    scores: pl.DataFrame | pl.LazyFrame,
    *,
    bins: int = 10,
    max_owners: int = 20,
    title: str | None = None,
) -> alt.Chart:
    """How engagement scores spread over each record owner's people: a heat map of counts.

    Args:
        scores: Rows with ``owner_name`` and ``engagement_score`` (``ierkit.signal``), e.g.
            ``reports.engagement_worklist``'s output; with ``recipient_id`` each person counts
            once per owner (their highest score), however many sends they clicked.
        bins: Equal-width score bands from 0 to the highest score.
        max_owners: Owners shown, those with the most people first; the rest are one row,
            "Other owners".
        title: Chart title; "Engagement score by record owner" when None.

    Returns:
        A heat map with score bands across, owners down and the number of people as colour.

    Raises:
        ChartError: When a column is missing or ``bins``/``max_owners`` is below 1.
    """
    if bins < 1 or max_owners < 1:
        raise ChartError(
            f"score_distribution_chart: bins ({bins}) and max_owners ({max_owners}) must be >= 1"
        )
    frame = _frame(scores, ("owner_name", "engagement_score"), "score_distribution_chart")
    people = frame.select(
        pl.col("owner_name").fill_null("(no owner)"),
        pl.col("engagement_score").cast(pl.Float64).fill_null(0.0),
        *(["recipient_id"] if "recipient_id" in frame.columns else []),
    )
    if "recipient_id" in people.columns:
        people = people.group_by("owner_name", "recipient_id").agg(pl.col("engagement_score").max())
    top = (
        people.group_by("owner_name")
        .len()
        .sort(["len", "owner_name"], descending=[True, False])
        .head(max_owners)
        .get_column("owner_name")
    )
    highest = people.select(pl.col("engagement_score").max().fill_null(0.0)).item()
    width = highest / bins if highest > 0 else 1.0
    band = (pl.col("engagement_score") / width).floor().clip(0, bins - 1).cast(pl.Int64)
    cells = (
        people.with_columns(
            owner=pl.when(pl.col("owner_name").is_in(top.implode()))
            .then(pl.col("owner_name"))
            .otherwise(pl.lit("Other owners")),
            band=band,
        )
        .group_by("owner", "band")
        .agg(people=pl.len().cast(pl.Int64), median_score=pl.col("engagement_score").median())
    )
    band_order = [f"{b * width:.1f}-{(b + 1) * width:.1f}" for b in range(bins)]
    cells = cells.with_columns(
        score_band=pl.col("band").replace_strict(
            list(range(bins)), band_order, return_dtype=pl.String
        )
    ).sort("owner", "band")
    _check_rows(cells, "score_distribution_chart")
    owner_order = [*top.to_list(), "Other owners"]
    chart: alt.Chart = (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X("score_band:O", title="Engagement score", sort=band_order),
            y=alt.Y("owner:N", title="Record owner", sort=owner_order),
            color=alt.Color("people:Q", title="People", scale=alt.Scale(scheme="blues")),
            tooltip=[
                alt.Tooltip("owner:N", title="Record owner"),
                alt.Tooltip("score_band:O", title="Score"),
                alt.Tooltip("people:Q", title="People", format=","),
                alt.Tooltip("median_score:Q", title="Median score", format=".2f"),
            ],
        )
        .properties(
            title=title or "Engagement score by record owner", width=480, height=alt.Step(22)
        )
    )
    return chart
