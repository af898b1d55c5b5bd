"""How notebooks show things: charts as PNG, tables and headlines for people, a header line.

Charts are shown as PNG images (rendered locally by vl-convert): they need no JavaScript or
network, survive papermill and HTML export, and stay visible in a report opened offline. Tables
and headlines are static HTML from ``ierkit.present`` (great_tables): the same table in
JupyterLab, in the weekly HTML and in a widget that redraws it.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import IPython.display
import polars as pl

from ierkit import present

# IPython ships no type hints for these: typed names keep the calls here checked.
display: Callable[..., object] = IPython.display.display
_markdown: Callable[[str], object] = IPython.display.Markdown
_html: Callable[[str], object] = IPython.display.HTML

#: Rows of a table shown in a notebook before it is cut (the full table goes to a CSV).
SHOW_ROWS = 25


def setup_charts() -> None:
    """Render altair charts as PNG images (offline, papermill- and nbconvert-safe)."""
    alt.renderers.enable("png", scale_factor=1.0)
    alt.data_transformers.disable_max_rows()


def header(title: str, source: str, as_of: str, *, timezone: str = "UTC") -> None:
    """Show which data (``source``) and which date or instant (``as_of``) a notebook describes."""
    display(_markdown(f"**{title}** · source `{source}` · as of {as_of} · times in {timezone}"))


def html_table(frame: pl.DataFrame | pl.LazyFrame, *, look: present.Look | None = None) -> str:
    """A table as HTML for a widget: widgets redraw by value, with no output capture."""
    return present.html_table(frame, look or present.Look(rows=SHOW_ROWS))


def show(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    look: present.Look | None = None,
    name: str | None = None,
    title: str | None = None,
) -> None:
    """Display a report frame as a table for people (``ierkit.present.html_table``).

    Args:
        frame: Any report frame.
        look: Zone, instance URL, rows shown and where full tables go; the defaults when None.
        name: The table's name: a cut table is saved as ``<name>.csv`` in ``look.csv_dir``.
        title: A title above the table.
    """
    display(
        _html(
            present.html_table(frame, look or present.Look(rows=SHOW_ROWS), name=name, title=title)
        )
    )


def show_headlines(headlines: present.Headlines) -> None:
    """Display a report's headline figures and sentences."""
    display(_html(headlines.html()))


def say(text: str) -> None:
    """Display a sentence written from the numbers (Markdown)."""
    display(_markdown(text))
