"""How notebooks show things: charts as PNG, tables cut to a readable length, a header line.

Charts are shown as PNG images (rendered locally by vl-convert): they need no JavaScript or
network, survive papermill and HTML export, and stay visible in a report opened offline.
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import IPython.display
import polars as pl

# IPython ships no type hints for these: typed names keep the calls here checked.
display: Callable[..., object] = IPython.display.display
_markdown: Callable[[str], object] = IPython.display.Markdown

#: Rows of a table shown in a notebook before it is cut (the full table goes to files).
SHOW_ROWS = 25


def setup_charts() -> None:
    """Render altair charts as PNG images (offline, papermill- and nbconvert-safe)."""
    alt.renderers.enable("png", scale_factor=1.0)
    alt.data_transformers.disable_max_rows()


def header(title: str, source: str, as_of: str) -> None:
    """Show which data (``source``) and which date or instant (``as_of``) a notebook describes."""
    display(_markdown(f"**{title}** · source `{source}` · as of {as_of} (times UTC)"))


def html_table(frame: pl.DataFrame, *, rows: int = SHOW_ROWS) -> str:
    """A table as HTML for a widget: widgets redraw by value, with no output capture."""
    more = f" (first {rows} shown)" if frame.height > rows else ""
    with pl.Config(tbl_rows=rows, tbl_cols=-1, fmt_str_lengths=400):
        return f"<p>{frame.height:,} rows{more}</p>" + frame.head(rows)._repr_html_()


def show(frame: pl.DataFrame | pl.LazyFrame, *, rows: int = SHOW_ROWS) -> None:
    """Display a table, at most ``rows`` rows, with the total row count above it."""
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    more = f" (first {rows} shown)" if collected.height > rows else ""
    display(_markdown(f"{collected.height:,} rows{more}"))
    with pl.Config(tbl_rows=rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
        display(collected.head(rows))


def print_full(frame: pl.DataFrame, *, rows: int = 50) -> None:
    """Print a small table with its text columns uncut (sentences such as a decision's reason)."""
    with pl.Config(fmt_str_lengths=400, tbl_width_chars=400, tbl_rows=rows):
        print(frame)
