"""What the notebooks share: reading their parameters, one cached org per source, chart output.

The notebooks stay thin: parameters, a ``Session``, calls into the package, tables and charts.
A ``Session`` loads the org's tables once and keeps them in memory, so widgets that redraw a view
on every slider tick recompute only that view, never the load.

Charts are shown as PNG images (rendered locally by vl-convert): they need no JavaScript or
network, survive papermill and HTML export, and stay visible in a report opened offline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import vl_convert
from IPython.display import Markdown, display

from ierkit import clock
from ierkit.errors import IerkitError
from ierkit.orgs import Org, default_as_of, open_org
from ierkit.reports import ReportTables

#: Rows of a table shown in a notebook before it is cut (the full table goes to files).
SHOW_ROWS = 25


class ParameterError(IerkitError):
    """A notebook parameter has a value the notebook cannot use; the message names it."""


def setup_charts() -> None:
    """Render altair charts as PNG images (offline, papermill- and nbconvert-safe)."""
    alt.renderers.enable("png", scale_factor=1.0)
    alt.data_transformers.disable_max_rows()


def report_date(as_of: str | dt.date | None, source: str) -> dt.date:
    """The report date from a notebook parameter.

    Args:
        as_of: ``YYYY-MM-DD``, a date, or empty/None for the default.
        source: The source; the default is the day of its own instant
            (``ierkit.orgs.default_as_of``).

    Raises:
        ParameterError: When ``as_of`` is not a date.
    """
    try:
        parsed = clock.parse_as_of(as_of, name="parameter as_of")
    except clock.ClockError as error:
        raise ParameterError(str(error)) from None
    if parsed is None:
        return default_as_of(str(source))
    if isinstance(parsed, dt.datetime):
        raise ParameterError(f"parameter as_of: {as_of!r} is a time; give a date (YYYY-MM-DD)")
    return parsed


@functools.cache
def cached_org(source: str) -> Org:
    """The org of a source, opened once per kernel."""
    return open_org(source)


@functools.cache
def _cached_tables(source: str) -> ReportTables:
    tables = ReportTables.from_org(cached_org(source))
    # Collect each table once: widgets then recompute a view from memory, never the load.
    return ReportTables(**{name: frame.collect().lazy() for name, frame in vars(tables).items()})


@dataclass(frozen=True)
class Session:
    """One notebook's data: the org, its tables in memory, and the report date."""

    source: str
    day: dt.date

    @classmethod
    def open(cls, source: str, as_of: str | dt.date | None = None) -> Session:
        """Open the source (cached per kernel) for a report dated ``as_of``."""
        return cls(str(source), report_date(as_of, str(source)))

    @property
    def org(self) -> Org:
        """The org (cached)."""
        return cached_org(self.source)

    @property
    def tables(self) -> ReportTables:
        """The org's tables, loaded once per kernel."""
        return _cached_tables(self.source)

    @property
    def as_of(self) -> dt.datetime:
        """The end of the report date, UTC."""
        return clock.end_of_day(self.day)

    def header(self, title: str) -> None:
        """Show which data and which date a notebook describes."""
        display(Markdown(f"**{title}** · source `{self.source}` · as of {self.day} (times UTC)"))


def html_table(frame: pl.DataFrame, *, rows: int = SHOW_ROWS) -> str:
    """A table as HTML for a widget: widgets redraw by value, with no output capture."""
    more = f" (first {rows} shown)" if frame.height > rows else ""
    with pl.Config(tbl_rows=rows, tbl_cols=-1, fmt_str_lengths=400):
        return f"<p>{frame.height:,} rows{more}</p>" + frame.head(rows)._repr_html_()


def show(frame: pl.DataFrame | pl.LazyFrame, *, rows: int = SHOW_ROWS) -> None:
    """Display a table, at most ``rows`` rows, with the total row count above it."""
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    more = f" (first {rows} shown)" if collected.height > rows else ""
    display(Markdown(f"{collected.height:,} rows{more}"))
    with pl.Config(tbl_rows=rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
        display(collected.head(rows))


ALL = "(all)"


def owner_filter(frame: pl.LazyFrame, owner: str | None) -> pl.LazyFrame:
    """Keep rows of one owner (by ``owner_name``); every row when ``owner`` is empty."""
    if not owner or owner == ALL:
        return frame
    return frame.filter(pl.col("owner_name") == owner)


def worklist_with_campaign(session: Session, *, window_days: int) -> pl.LazyFrame:
    """The engagement worklist of a session with each send's campaign name."""
    from ierkit import reports

    return (
        reports.engagement_worklist(session.tables, as_of=session.day, days=window_days)
        .join(
            reports.sends(session.tables).select("send_id", "campaign_name"),
            on="send_id",
            how="left",
        )
        .with_columns(pl.col("campaign_name").fill_null(reports.NO_CAMPAIGN))
        .sort(
            "owner_name", "owner_id", "clicked_at", "ier_id", descending=[False, False, True, False]
        )
    )


def worklist_explorer(session: Session, *, window_days: int = 7, owner: str = "") -> Any:
    """Widgets to explore the worklist: window slider, owner and campaign pickers.

    The tables are already in memory (``Session.tables``), so each change recomputes only the
    worklist. The count line (``explorer.children[1]``) and the table redraw in place.

    Returns:
        An ``ipywidgets.VBox``; under papermill it renders nothing and changes nothing.
    """
    import ipywidgets as widgets

    everything = worklist_with_campaign(session, window_days=365).collect()
    owners = [ALL, *sorted(everything.get_column("owner_name").unique().drop_nulls())]
    campaigns = [ALL, *sorted(everything.get_column("campaign_name").unique().drop_nulls())]
    window = widgets.IntSlider(
        value=window_days,
        min=1,
        max=90,
        description="Window (days)",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    owner_picker = widgets.Dropdown(
        options=owners, value=owner if owner in owners else ALL, description="Owner"
    )
    campaign_picker = widgets.Dropdown(options=campaigns, value=ALL, description="Campaign")
    count = widgets.HTML()
    table = widgets.HTML()

    def redraw(*_: object) -> None:
        frame = owner_filter(
            worklist_with_campaign(session, window_days=window.value), owner_picker.value
        )
        if campaign_picker.value != ALL:
            frame = frame.filter(pl.col("campaign_name") == campaign_picker.value)
        rows = frame.sort(
            ["clicked_at", "owner_name", "recipient_name", "ier_id"],
            descending=[True, False, False, False],
        ).collect()
        count.value = (
            f"<b class='ierkit-worklist-count'>{rows.height}</b> recipients clicked in the "
            f"{window.value} days to {session.day}"
        )
        table.value = html_table(
            rows.select(
                "owner_name",
                "recipient_name",
                "company",
                "email_name",
                "clicked_at",
                "links",
                "followed_up",
            )
        )

    for control in (window, owner_picker, campaign_picker):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([window, owner_picker, campaign_picker]), count, table])


def outputs_dir() -> Path:
    """Where notebooks write run results.

    ``$IERKIT_OUTPUTS_DIR`` when set, else the project's ``outputs/``.
    """
    configured = os.environ.get("IERKIT_OUTPUTS_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parent.parent / "outputs"


def cleanup_target(session: Session, *, execute: bool) -> Org:
    """The org a cleanup notebook works on.

    An executed cleanup on the demo works on a copy in ``outputs/demo-cleanup-org`` (made on
    first use), so the shared demo that every other notebook reads is never changed.
    """
    if session.source != "demo" or not execute:
        return session.org
    from ierkit.orgs import LocalOrg

    copy = outputs_dir() / "demo-cleanup-org"
    if not copy.is_dir():
        staging = copy.with_name(copy.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(Path(session.org.path), staging)  # type: ignore[attr-defined]
        os.replace(staging, copy)
    return LocalOrg(copy)


def progress_bar() -> Callable[[str, int, int], None]:
    """A progress callback (phase, done, total) that drives an ipywidgets progress bar."""
    import ipywidgets as widgets

    bar = widgets.IntProgress(min=0, max=1, description="", layout={"width": "60%"})
    label = widgets.Label()
    display(widgets.HBox([bar, label]))

    def update(phase: str, done: int, total: int) -> None:
        bar.max = max(total, 1)
        bar.value = min(done, bar.max)
        label.value = f"{phase}: {done:,} of {total:,}"

    return update


def decision_table(decisions: pl.DataFrame) -> pl.DataFrame:
    """The columns of a decision a reader needs: programme, recommendation and why."""
    return decisions.select("programme", "recommendation", "reason").sort("programme")


def decision_explorer(
    session: Session, *, thresholds: Any, group_by: str = "email_name", followup_days: float = 7
) -> Any:
    """Sliders for the decision thresholds and the follow-up window that redraw the table."""
    import ipywidgets as widgets

    from ierkit import decision

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

    def redraw(*_: object) -> None:
        try:
            chosen = decision.DecisionThresholds(
                min_actionability=max(track_at.value, skip_under.value),
                skip_below=min(track_at.value, skip_under.value),
                max_mb_per_followup=thresholds.max_mb_per_followup,
                max_mb_per_month=thresholds.max_mb_per_month,
                retention_days=thresholds.retention_days,
            )
            decided = decision.decide(
                session.tables,
                as_of=session.as_of,
                thresholds=chosen,
                group_by=group_by,
                followup_days=window.value,
            ).collect()
            table.value = html_table(decision_table(decided))
        except IerkitError as error:
            table.value = f"<p>{html.escape(str(error))}</p>"

    for control in (track_at, skip_under, window):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([track_at, skip_under, window]), table])


def storage_what_if(plan: pl.DataFrame, **outlook_options: Any) -> Any:
    """A what-if widget: add a programme (list size, sends a month) and see the outlook move."""
    import ipywidgets as widgets

    from ierkit import charts, storage

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
        extra = pl.DataFrame(
            {
                "programme": ["What-if programme"],
                "list_size": [float(list_size.value)],
                "sends_per_month": [float(cadence.value)],
            }
        )
        combined = pl.concat(
            [storage.normalize_plan(plan).collect(), storage.normalize_plan(extra).collect()]
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


def cleanup_explorer(org: Org, criteria: Any) -> Any:
    """A retention slider that redraws what a cleanup would select (a plan only; never deletes).

    The org's IERs and link details are read into memory once, so each tick re-plans from memory.
    """
    import ipywidgets as widgets

    from ierkit import cleanup

    snapshot = _in_memory_cleanup_org(org)
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
        plan = cleanup.plan_cleanup(snapshot, chosen)
        summary.value = (
            f"<p>Retention {retention.value} days: {plan.total_records:,} records selected, "
            f"{plan.storage_mb:,.1f} MB freed.</p>" + html_table(plan.by_month)
        )

    retention.observe(redraw, names="value")
    redraw()
    return widgets.VBox([retention, summary])


class _InMemoryOrg(Org):
    """Read-only tables held in memory, for widgets that re-plan on every tick."""

    def __init__(self, tables: dict[str, pl.DataFrame], label: str) -> None:
        self._tables = tables
        self.label = label

    def table(self, name: str) -> pl.LazyFrame:
        return self._tables[name].lazy()

    def has_table(self, name: str) -> bool:
        return name in self._tables

    def delete(self, table_name: str, ids: Any, *, hard: bool = False) -> pl.DataFrame:
        raise IerkitError("the cleanup explorer only plans; run the notebook with execute=True")


def _in_memory_cleanup_org(org: Org) -> Org:
    names = (
        "individual_email_results",
        "individual_links",
        "email_sends",
        "triggered_sends",
        "contacts",
        "leads",
    )
    return _InMemoryOrg(
        {name: org.table(name).collect() for name in names if org.has_table(name)}, org.label
    )
