"""Salesforce's text to canonical tables: Bulk API 2.0 CSV pages, and REST records made text.

Bulk API 2.0 query results quote every value and write a null as an empty quoted string
(``""``); other tools write a bare empty field. Both read the same here: an empty value is null,
for every type, text included. Bulk CSV cannot tell an empty text from a null, and Salesforce
stores no empty text (saving ``""`` into a text field stores null), so nothing is lost.

A value that does not parse as its column's type stops the read with ``FieldValueError``, which
names the object, the field, the record and the value; never a raw polars error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import schema
from ierkit.orgs.base import OrgError

#: Bulk CSV and REST times: ``2025-01-06T23:30:00.000Z`` / ``2025-01-06T23:30:00.000+0000``.
SF_DATETIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.f%#z"
#: Bulk API 2.0 ``columnDelimiter`` values and the character each stands for.
DELIMITERS: Final = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
#: Bulk API 2.0 ``lineEnding`` values.
LINE_ENDINGS: Final = {"LF": "\n", "CRLF": "\r\n"}

# Columns Salesforce does not store but ierkit derives from ones it does.
_DERIVED: dict[tuple[str, str], pl.Expr] = {
    ("individual_email_results", "unsubscribed"): pl.col("date_unsubscribed").is_not_null(),
}


class FieldValueError(OrgError):
    """A value Salesforce sent does not read as its field's type; the message names both."""


@dataclass(frozen=True)
class BulkCsv:
    """The CSV format ierkit asks Bulk API 2.0 query jobs for.

    Attributes:
        delimiter: A ``columnDelimiter``: COMMA, TAB, PIPE, SEMICOLON, CARET or BACKQUOTE.
        line_ending: A ``lineEnding``: LF or CRLF.
    """

    delimiter: str = "COMMA"
    line_ending: str = "LF"

    def __post_init__(self) -> None:
        if self.delimiter not in DELIMITERS:
            raise ValueError(
                f"Bulk CSV delimiter {self.delimiter!r} is not one of {', '.join(DELIMITERS)}"
            )
        if self.line_ending not in LINE_ENDINGS:
            raise ValueError(
                f"Bulk CSV line ending {self.line_ending!r} is not one of {', '.join(LINE_ENDINGS)}"
            )


#: Comma and LF: what Salesforce writes when a job names no format.
DEFAULT_BULK_CSV: Final = BulkCsv()


def scan_page(path: Path, columns: Sequence[str], *, delimiter: str = "COMMA") -> pl.LazyFrame:
    """One Bulk CSV results page as text columns (an empty page gives ``columns``, no rows).

    Args:
        path: The downloaded page.
        columns: The fields the query selected, for a page without even a header.
        delimiter: The job's ``columnDelimiter`` (as its job info reports it).
    """
    if path.stat().st_size == 0:
        return pl.LazyFrame(schema=dict.fromkeys(columns, pl.String))
    # CRLF needs no option: the reader drops the carriage return before each line feed, and
    # newlines inside quoted values stay as they are.
    return pl.scan_csv(path, separator=DELIMITERS[delimiter], infer_schema=False)


def parse(expr: pl.Expr, dtype: pl.DataType, *, strict: bool = True) -> pl.Expr:
    """A text column as Salesforce writes it (Bulk CSV, or REST JSON made text) to ``dtype``.

    Empty text is null for every type. ``strict=False`` turns unreadable values into nulls
    (used to find them) instead of raising.
    """
    expr = pl.when(expr.str.len_bytes() > 0).then(expr)
    if dtype == pl.String:
        return expr
    if dtype == pl.Boolean:
        lowered = expr.str.to_lowercase()
        if strict:
            return lowered.replace_strict(["true", "false"], [True, False], return_dtype=pl.Boolean)
        return lowered.replace_strict(
            ["true", "false"], [True, False], default=None, return_dtype=pl.Boolean
        )
    if isinstance(dtype, pl.Datetime):
        return expr.str.to_datetime(
            SF_DATETIME_FORMAT, time_unit="us", strict=strict
        ).dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return expr.str.to_date("%Y-%m-%d", strict=strict)
    if dtype.is_integer():
        # Number(n, 0) fields come back as "3.0" from REST and as "3" from Bulk CSV.
        return expr.str.replace(r"\.0*$", "").cast(dtype, strict=strict)
    return expr.cast(dtype, strict=strict)


def to_canonical(
    spec: schema.Table, raw: pl.LazyFrame, present: Sequence[schema.Column]
) -> pl.LazyFrame:
    """Salesforce text columns (named by API path) to the canonical table."""
    have = {c.name for c in present}
    exprs = []
    for column in spec.columns:
        if column.name in have:
            exprs.append(parse(pl.col(column.sf_field), column.dtype).alias(column.name))
        elif (spec.name, column.name) not in _DERIVED:
            exprs.append(pl.lit(None, dtype=column.dtype).alias(column.name))
    frame = raw.select(exprs)
    names = set(spec.column_names)
    derived = [
        expr.alias(col)
        for (table, col), expr in _DERIVED.items()
        if table == spec.name and col in names and set(expr.meta.root_names()) <= names
    ]
    if derived:
        frame = frame.with_columns(derived)
    return frame.select(spec.column_names)


def write_page(
    spec: schema.Table, raw: pl.LazyFrame, present: Sequence[schema.Column], part: Path
) -> None:
    """One page of Salesforce text, converted to the canonical table, written to ``part``.

    Raises:
        FieldValueError: Naming the object, field, record Id and value that did not read.
    """
    try:
        to_canonical(spec, raw, present).sink_parquet(part)
    except pl.exceptions.PolarsError as error:
        raise _unreadable(spec, raw, present, error) from None


def _unreadable(
    spec: schema.Table,
    raw: pl.LazyFrame,
    present: Sequence[schema.Column],
    error: pl.exceptions.PolarsError,
) -> FieldValueError:
    """The first value of the page that does not read, as an error one can act on."""
    try:
        found = _first_unreadable(spec, raw, present)
    except pl.exceptions.PolarsError:  # the page itself is not CSV: say so below
        found = None
    if found is not None:
        return found
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return FieldValueError(f"{spec.sobject}: a results page could not be read ({first_line})")


def _first_unreadable(
    spec: schema.Table, raw: pl.LazyFrame, present: Sequence[schema.Column]
) -> FieldValueError | None:
    names = raw.collect_schema().names()
    for column in present:
        if column.sf_field not in names:
            return FieldValueError(
                f"{spec.sobject}: Salesforce sent no column {column.sf_field} "
                f"({spec.name}.{column.name}); the query asked for it"
            )
        field = pl.col(column.sf_field)
        parsed = parse(field, column.dtype, strict=False)
        unreadable = (field.str.len_bytes() > 0) & parsed.is_null()
        record = pl.col("Id") if "Id" in names else pl.lit(None, pl.String)
        bad = raw.select(field, record.alias("_record")).filter(unreadable).head(1).collect()
        if bad.height:
            value, record_id = bad.row(0)
            where = f" (record {record_id})" if record_id else ""
            return FieldValueError(
                f"{spec.sobject}.{column.sf_field}{where}: value {value!r} does not read as "
                f"{column.dtype} ({spec.name}.{column.name}); check the field's type in Setup > "
                "Object Manager against what ierkit expects"
            )
    return None
