"""Tables for people, rendered: HTML through great_tables, aligned plain text, CSV for the rest.

great_tables renders the prepared cells (``_format.prepare``) as static HTML with no script:
the same table shows in JupyterLab, in the weekly HTML (which loads nothing from anywhere) and,
with its styles inlined (``inline_css=True``, through css-inline), in an email. A table longer
than ``Look.rows`` shows its first rows and says how many more there are; with a ``csv_dir``
the full table is written there as CSV and the note links to it by its file name, so the link
works from an HTML report in the same folder.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import great_tables as gt
import polars as pl

from ierkit import _csv, _files
from ierkit.present._format import Cells, Look, prepare

#: The suite's table look: system fonts, small type, light rules (shared by reports and email).
FONT = ["-apple-system", "Segoe UI", "Helvetica", "Arial", "sans-serif"]
#: Link colour, from the charts' colour-blind-safe palette (``ierkit.charts.PALETTE``'s blue).
LINK_COLOUR = "#0072B2"


def _markdown_escape(text: str) -> str:
    """Text shown literally inside a Markdown link label."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", text)


def _gt(cells: Cells, *, title: str | None, note: str | None, width: str | None) -> gt.GT:
    frame = cells.frame
    linked = [c for c in cells.links if c in frame.columns]
    if linked:
        frame = frame.with_columns(
            pl.Series(
                column,
                [
                    f"[{_markdown_escape(text)}]({url})" if url and text else text
                    for text, url in zip(frame.get_column(column), cells.links[column], strict=True)
                ],
                pl.String,
            )
            for column in linked
        )
    # great_tables scopes its styles by the table's id, random unless given: an id from the
    # content keeps a report's HTML the same from run to run.
    digest = hashlib.sha256(frame.write_csv().encode() + (title or "").encode()).hexdigest()
    table = gt.GT(frame, id=f"t{digest[:12]}")
    if linked:
        table = table.fmt_markdown(columns=linked)
    if title:
        table = table.tab_header(title=title)
    if note:
        table = table.tab_source_note(gt.md(note))
    numeric = [
        c
        for c in frame.columns
        if frame.height
        and frame.get_column(c).str.contains(r"^[-\d,.% ]+(?:MB|GB|KB)?$|^$").all()
        and frame.get_column(c).str.len_chars().max() not in (None, 0)
    ]
    if numeric:
        table = table.cols_align(align="right", columns=numeric)
    return table.tab_options(
        table_font_names=FONT,
        table_font_size="13px",
        table_width=width,
        table_margin_left="0",
        column_labels_font_weight="bold",
        data_row_padding="3px",
        heading_align="left",
        source_notes_font_size="12px",
    ).opt_css(
        # Long words (URLs) break rather than widen the page; a wide table scrolls in its own box.
        "td.gt_row { overflow-wrap: break-word; } "
        f"td.gt_row a, .gt_sourcenote a {{ color: {LINK_COLOUR}; }}"
    )


def _cut_note(cells: Cells, shown: int, csv_name: str | None) -> str | None:
    if cells.rows <= shown:
        return None
    more = cells.rows - shown
    text = f"The first {shown:,} of {cells.rows:,} rows; {more:,} more"
    return text + (f" in [{csv_name}]({csv_name})." if csv_name else " are not shown.")


def write_csv(frame: pl.DataFrame | pl.LazyFrame, look: Look, path: Path) -> None:
    """The whole table, formatted for people, as CSV: a linked name gets a link column beside it.

    Written through ``ierkit._csv`` (formula-like cells neutralised) and atomically.
    """
    cells = prepare(frame, look)
    data = cells.frame.with_columns(
        pl.Series(f"{column} (Salesforce link)", urls, pl.String)
        for column, urls in cells.links.items()
    )
    _files.write_bytes(path, _csv.csv_for_people(data))


def html_table(
    frame: pl.DataFrame | pl.LazyFrame,
    look: Look,
    *,
    title: str | None = None,
    name: str | None = None,
    inline_css: bool = False,
    width: str | None = None,
) -> str:
    """A report frame as an HTML table for people (no script; styles inlined for email).

    Args:
        frame: Any report frame.
        look: Zone, instance URL, rows shown, where full tables go.
        title: A title above the table.
        name: The table's name in the report (``worklist``): a cut table is written as
            ``<csv_dir>/<name>.csv`` and linked; without it (or ``look.csv_dir``) the note only
            says how many rows are not shown.
        inline_css: Put every style on its element (email clients drop ``<style>`` blocks).
        width: The table's CSS width (``100%``); its natural width when None.
    """
    data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    cells = prepare(data, look, rows=look.rows)
    csv_name = None
    if cells.rows > look.rows and name and look.csv_dir is not None:
        csv_name = f"{name}.csv"
        write_csv(data, look, look.csv_dir / csv_name)
    note = _cut_note(cells, min(look.rows, cells.rows), csv_name)
    return _gt(cells, title=title, note=note, width=width).as_raw_html(inline_css=inline_css)


def text_table(frame: pl.DataFrame | pl.LazyFrame, look: Look, *, rows: int | None = None) -> str:
    """A report frame as aligned plain text (for an email's text part), one line a row."""
    cells = prepare(frame, look, rows=rows)
    columns = cells.frame.columns
    widths = [
        max([len(c), *(len(v) for v in cells.frame.get_column(c).to_list())]) for c in columns
    ]
    numeric = [
        cells.frame.get_column(c).str.contains(r"^[-\d,.% ]*(?:MB|GB|KB)?$").all() for c in columns
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells.frame.rows():
        lines.append(
            "  ".join(
                (v.rjust(w) if right else v.ljust(w))
                for v, w, right in zip(row, widths, numeric, strict=True)
            ).rstrip()
        )
    shown = cells.frame.height
    if cells.rows > shown:
        lines.append(f"... and {cells.rows - shown:,} more")
    return "\n".join(lines)
