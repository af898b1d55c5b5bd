"""The presentation layer: any report frame as a table for people, and a report's headline.

One place decides how a report looks, for the notebooks, the weekly HTML and the emails alike:

- ``prepare`` turns a report frame into text cells under labels in words (counts with thousands
  separators, rates as percentages with their denominator, storage with units, times in a named
  zone, booleans as a mark, nulls blank, Ids replaced by links to the record);
- ``html_table`` renders them with great_tables (static HTML, no script; inline styles for
  email), cutting long tables to their first rows with the full table as CSV beside the report;
  ``text_table`` as aligned plain text;
- ``Headlines`` and the functions in ``headlines`` open each report with its figures and
  sentences written from the numbers.

A ``Look`` carries what varies between reports (time zone, My Domain URL, rows shown, where full
tables go) as one frozen value.
"""

from ierkit.present import _headlines as headlines
from ierkit.present._format import (
    LABELS,
    NO,
    RECORD_LINKS,
    YES,
    Cells,
    Look,
    PresentError,
    count,
    day,
    label,
    mark,
    number,
    percent,
    prepare,
    record_url,
    size_kb,
    size_mb,
    when,
    zone,
)
from ierkit.present._headlines import Figure, Headlines
from ierkit.present._render import FONT, LINK_COLOUR, html_table, text_table, write_csv

__all__ = [
    "FONT",
    "LABELS",
    "LINK_COLOUR",
    "NO",
    "RECORD_LINKS",
    "YES",
    "Cells",
    "Figure",
    "Headlines",
    "Look",
    "PresentError",
    "count",
    "day",
    "headlines",
    "html_table",
    "label",
    "mark",
    "number",
    "percent",
    "prepare",
    "record_url",
    "size_kb",
    "size_mb",
    "text_table",
    "when",
    "write_csv",
    "zone",
]
