"""Widgets that redraw a view in place: explorers for the notebooks, and a progress bar.

Under papermill the widgets render nothing; each runs its redraw once when built, so the batch
run and the interactive session share one code path. Every view re-runs a lazy plan over the
session's scans; what is costly to compute and does not depend on a control (the decision
measures) is computed once per value of the control it depends on.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import polars as pl
import vl_convert

from ierkit import charts, cleanup, decision, storage, views
from ierkit.display import display, html_table
from ierkit.errors import IerkitError
from ierkit.orgs import Org
from ierkit.session import Session


def worklist_explorer(session: Session, *, window_days: int = 7, owner: str = "") -> Any:
    """Widgets to explore the worklist: window slider, owner and campaign pickers.

    Each change re-runs only the worklist's plan over the session's scans. The count line
    (``explorer.children[1]``) and the table redraw in place.

    Returns:
        An ``ipywidgets.VBox``; under papermill it renders nothing and changes nothing.
    """
    everything = views.worklist_with_campaign(session, window_days=365).collect()
    owners = [views.ALL, *sorted(everything.get_column("owner_name").unique().drop_nulls())]
    campaigns = [views.ALL, *sorted(everything.get_column("campaign_name").unique().drop_nulls())]
    window = widgets.IntSlider(
        value=window_days,
        min=1,
        max=90,
        description="Window (days)",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    owner_picker = widgets.Dropdown(
        options=owners, value=owner if owner in owners else views.ALL, description="Owner"
    )
    campaign_picker = widgets.Dropdown(options=campaigns, value=views.ALL, description="Campaign")
    count = widgets.HTML()
    table = widgets.HTML()

    def redraw(*_: object) -> None:
        frame = views.owner_filter(
            views.worklist_with_campaign(session, window_days=window.value), owner_picker.value
        )
        if campaign_picker.value != views.ALL:
            frame = frame.filter(pl.col("campaign_name") == campaign_picker.value)
        rows = frame.sort(
            ["clicked_at", "owner_name", "recipient_name", "ier_id"],
            descending=[True, False, False, False],
        ).collect()
        count.value = (
            f"<b class='ierkit-worklist-count'>{rows.height}</b> recipients clicked in the "
            f"{window.value} days to {session.day}"
        )
        table.value = html_table(views.worklist_for_people(rows), look=session.look)

    for control in (window, owner_picker, campaign_picker):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([window, owner_picker, campaign_picker]), count, table])


def progress_bar() -> Callable[[str, int, int], None]:
    """A progress callback (phase, done, total) that drives an ipywidgets progress bar."""
    bar = widgets.IntProgress(min=0, max=1, description="", layout={"width": "60%"})
    label = widgets.Label()
    display(widgets.HBox([bar, label]))

    def update(phase: str, done: int, total: int) -> None:
        bar.max = max(total, 1)
        bar.value = min(done, bar.max)
        label.value = f"{phase}: {done:,} of {total:,}"

    return update


def slider_thresholds(
    base: decision.DecisionThresholds, *, track_at: float, skip_under: float
) -> decision.DecisionThresholds:
    """The thresholds two sliders set: the higher is where tracking starts, the lower where
    skipping ends (sliders may cross); the other thresholds stay as in ``base``."""
    return dataclasses.replace(
        base,
        min_actionability=max(track_at, skip_under),
        skip_below=min(track_at, skip_under),
    )


def decision_explorer(
    session: Session,
    *,
    thresholds: decision.DecisionThresholds,
    group_by: decision.GroupBy = "email_name",
    followup_days: float = 7,
) -> Any:
    """Sliders for the decision thresholds and the follow-up window that redraw the table.

    The measures per programme are computed once per follow-up window (and kept); moving a
    threshold slider only re-applies the rules to them.
    """

    def slider(value: float, description: str) -> Any:
        return widgets.FloatSlider(
            value=value,
            min=0.0,
            max=0.5,
            step=0.005,
            description=description,
            readout_format=".1%",
            continuous_update=False,
            style={"description_width": "initial"},
        )

    track_at = slider(thresholds.min_actionability, "Track at ≥")
    skip_under = slider(thresholds.skip_below, "Skip under")
    window = widgets.IntSlider(
        value=int(followup_days),
        min=1,
        max=30,
        description="Follow-up window (days)",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    table = widgets.HTML()
    measures: dict[int, tuple[decision.MeasureOptions, pl.DataFrame]] = {}

    def measures_for(days: int) -> tuple[decision.MeasureOptions, pl.DataFrame]:
        if days not in measures:
            options = decision.MeasureOptions(group_by=group_by, followup_days=days)
            measures[days] = (
                options,
                decision.programme_measures(
                    session.tables, as_of=session.as_of, options=options
                ).collect(),
            )
        return measures[days]

    def redraw(*_: object) -> None:
        try:
            chosen = slider_thresholds(
                thresholds, track_at=track_at.value, skip_under=skip_under.value
            )
            options, measured = measures_for(window.value)
            decided = decision.recommend(measured, thresholds=chosen, options=options).collect()
            table.value = html_table(views.decision_table(decided), look=session.look)
        except IerkitError as error:
            table.value = f"<p>{html.escape(str(error))}</p>"

    for control in (track_at, skip_under, window):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([track_at, skip_under, window]), table])


def storage_what_if(plan: pl.DataFrame, **outlook_options: Any) -> Any:
    """A what-if widget: add a programme (list size, sends a month) and see the outlook move."""
    list_size = widgets.IntSlider(
        value=50_000,
        min=0,
        max=1_000_000,
        step=5_000,
        description="List size",
        continuous_update=False,
    )
    cadence = widgets.FloatSlider(
        value=1.0, min=0.0, max=30.0, step=0.5, description="Sends a month", continuous_update=False
    )
    text = widgets.HTML()
    image = widgets.Image(format="png")

    def redraw(*_: object) -> None:
        combined = storage.plan_with_programme(
            plan,
            programme="What-if programme",
            list_size=list_size.value,
            sends_per_month=cadence.value,
        )
        outlook = storage.storage_outlook(combined, **outlook_options)
        text.value = f"<p>{html.escape(str(outlook))}</p>"
        chart = charts.storage_projection_chart(
            {"with the what-if programme": outlook.projection},
            allocation_mb=outlook.allocation_mb,
            threshold=outlook.threshold,
        )
        image.value = vl_convert.vegalite_to_png(chart.to_json(), scale=1.0)

    for control in (list_size, cadence):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([list_size, cadence]), text, image])


def cleanup_explorer(org: Org, criteria: cleanup.CleanupCriteria) -> Any:
    """A retention slider that redraws what a cleanup would select (a plan only; never deletes).

    Each tick re-plans over the org's lazy scans (Parquet, local or a Salesforce org's pulled
    cache): nothing is copied into memory beyond the plan's own counts.
    """
    retention = widgets.IntSlider(
        value=criteria.retention_days,
        min=0,
        max=730,
        step=15,
        description="Retention (days)",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    summary = widgets.HTML()

    def redraw(*_: object) -> None:
        chosen = dataclasses.replace(criteria, retention_days=retention.value)
        plan = cleanup.plan_cleanup(org, chosen)
        summary.value = (
            f"<p>Retention {retention.value} days: {plan.total_records:,} records selected, "
            f"{plan.storage_mb:,.1f} MB freed.</p>" + html_table(plan.by_month)
        )

    retention.observe(redraw, names="value")
    redraw()
    return widgets.VBox([retention, summary])
