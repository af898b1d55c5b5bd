"""One tracking file's rows as canonical events: strict on the happy path, precise on a bad row.

Values are parsed strictly (integer columns by the CSV reader, dates in one form per file), so
the happy path pays for no extra checks. When a parse fails, the file is read once more as text
to name the first bad value by its physical line: a quoted ``BounceReason`` that spans lines
moves every later row down, and the line given is the one an editor shows
(``Clicks.csv, line 18, column EventDate: '31/12/2026 10:00' is not M/D/YYYY h:mm:ss AM/PM``).
A file that is not text, or one with a quoted value never closed, is named with its line before
any value is looked at, and polars' own message (which quotes raw rows: email addresses) never
reaches the user.

With ``rejected`` (``--skip-bad-rows``), ``stage_file`` reads the file as text once, keeps the
good rows and writes every bad one (file, line, column, value, why) beside them.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from ierkit import clock
from ierkit.extract import _encoding
from ierkit.extract._discover import ALIASES, ExtractFile
from ierkit.extract._encoding import ExtractFormatError

#: Event types in the canonical table, in the order a recipient meets them.
EVENT_TYPES: Final = ("Sent", "Open", "Click", "Bounce", "Unsub")
EventType: Final = pl.Enum(EVENT_TYPES)

#: Bounce categories in the canonical table (the extract writes ``Hard bounce``, the data views
#: ``BounceCategoryID`` 1-5 and ``Technical/Other bounce``; both map to these words).
BOUNCE_CATEGORIES: Final = ("Hard", "Soft", "Block", "Unknown", "Technical")

#: The canonical event table. ``link_id`` is a click's SendURLID (else URLID): Marketing
#: Cloud's id of the link, which tells apart two links to the same URL.
EVENT_SCHEMA: Final = pl.Schema(
    {
        "job_id": pl.Int64(),
        "batch_id": pl.Int64(),
        "subscriber_key": pl.String(),
        "subscriber_id": pl.Int64(),
        "list_id": pl.Int64(),
        "email": pl.String(),
        "event_type": EventType,
        "event_time": pl.Datetime("us", "UTC"),
        "url": pl.String(),
        "link_name": pl.String(),
        "bounce_category": pl.String(),
        "is_unique": pl.Boolean(),
        "link_id": pl.Int64(),
    }
)

US_FORMAT: Final = "%m/%d/%Y %I:%M:%S %p"
US_FORMAT_TEXT: Final = "M/D/YYYY h:mm:ss AM/PM"
ISO_FORMAT: Final = "%Y-%m-%d %H:%M:%S%.f"
ISO_FORMAT_TEXT: Final = "YYYY-MM-DD hh:mm:ss"
ISO_ZONED_FORMAT: Final = "%Y-%m-%d %H:%M:%S%.f%#z"
ISO_ZONED_FORMAT_TEXT: Final = "YYYY-MM-DD hh:mm:ss with Z or an offset"

_INTEGER_COLUMNS: Final = (
    "job_id",
    "batch_id",
    "subscriber_id",
    "list_id",
    "send_url_id",
    "url_id",
    "bounce_category_id",
)
# Ids Marketing Cloud never writes below zero (a negative one is a corrupted row).
_NON_NEGATIVE: Final = ("job_id", "batch_id", "subscriber_id", "list_id", "link_id")
_NON_NEGATIVE_INPUTS: Final = ("job_id", "batch_id", "subscriber_id", "list_id", "send_url_id",
                               "url_id")  # fmt: skip
#: The file ``stage_file`` writes into its target folder.
STAGED_EVENTS: Final = "events.parquet"
#: Staged files live only until the landing is merged: lz4 writes and reads back several
#: times faster than the default zstd, for files about a third larger.
STAGED_PARQUET: Final[dict[str, Any]] = {"compression": "lz4"}
#: Columns every event row must fill (a blank SubscriberKey is allowed: deleted subscribers).
REQUIRED_VALUES: Final = ("job_id", "event_time")

# Data views' BounceCategoryID (Salesforce Help, "_Bounce data view").
_BOUNCE_CATEGORY_IDS: Final = {1: "Hard", 2: "Soft", 3: "Block", 4: "Unknown", 5: "Technical"}

#: Columns of ``rejected_rows.csv`` (one row per bad row: its first bad value).
REJECTED_SCHEMA: Final = pl.Schema(
    {"file": pl.String(), "line": pl.Int64(), "column": pl.String(), "value": pl.String(),
     "why": pl.String()}
)  # fmt: skip


@dataclass(frozen=True)
class DateForm:
    """How one file writes EventDate: a strptime format, its words, and whether it has a zone."""

    format: str
    text: str
    zoned: bool = False


_US: Final = DateForm(US_FORMAT, US_FORMAT_TEXT)
_ISO: Final = DateForm(ISO_FORMAT, ISO_FORMAT_TEXT)
_ISO_ZONED: Final = DateForm(ISO_ZONED_FORMAT, ISO_ZONED_FORMAT_TEXT, zoned=True)


def date_form(sample: str | None) -> DateForm:
    """The date form of a file from its first filled EventDate.

    Marketing Cloud's ``M/D/YYYY h:mm:ss AM`` is in its fixed UTC-6; ISO with ``Z`` or an
    offset (``2026-11-01T10:00:00Z``, ``... +01:00``) is honoured as written; ISO without a
    zone is in the source zone (Marketing Cloud's UTC-6 unless told otherwise).
    """
    text = (sample or "").strip()
    if not re.match(r"^\d{4}-\d{1,2}-\d{1,2}", text):
        return _US
    if re.search(r"(Z|[+-]\d{2}(:?\d{2})?)$", text[10:]):
        return _ISO_ZONED
    return _ISO


def _file_date_form(file: ExtractFile, column: str) -> DateForm:
    sample = (
        # Streaming with a filter then head: stops at the first filled value, whatever the size.
        text_scan(file)
        .select(column)
        .filter(pl.col(column).str.strip_chars() != "")
        .head(1)
        .collect()
    )
    value = sample.item() if sample.height else None
    return date_form(value if isinstance(value, str) else None)


def _to_utc(naive: pl.Expr, source_zone: str) -> pl.Expr:
    offset = _fixed_offset(source_zone)
    if offset is not None:
        # A fixed offset is plain arithmetic: far cheaper than a zone lookup per value.
        return (naive - pl.lit(offset)).dt.replace_time_zone("UTC")
    return naive.dt.replace_time_zone(
        source_zone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")


def _fixed_offset(zone: str) -> dt.timedelta | None:
    """The zone's UTC offset if it never changes (an ``Etc/`` zone or UTC), else None."""
    try:
        info = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ExtractFormatError(f"unknown time zone {zone!r} (use an IANA name)") from None
    offsets = {
        dt.datetime(year, month, 15, 12, tzinfo=info).utcoffset()
        for year in (1990, 2010, 2026, 2040)
        for month in (1, 4, 7, 10)
    }
    if len(offsets) == 1 and (zone.startswith("Etc/") or zone in ("UTC", "GMT")):
        return offsets.pop()
    return None


def _parse_time(raw: pl.Expr, form: DateForm, source_zone: str, *, strict: bool) -> pl.Expr:
    """EventDate text (stripped) as a UTC instant, in the file's form."""
    if form is _US:
        naive = raw.str.to_datetime(form.format, time_unit="us", strict=strict)
        return _to_utc(naive, source_zone)
    normalised = raw.str.replace("T", " ", literal=True)
    if form.zoned:
        return normalised.str.to_datetime(
            form.format, time_unit="us", strict=strict
        ).dt.convert_time_zone("UTC")
    naive = normalised.str.to_datetime(form.format, time_unit="us", strict=strict)
    return _to_utc(naive, source_zone)


def text_scan(file: ExtractFile, *, row_index: str | None = None) -> pl.LazyFrame:
    """The file with every column as text, header names as written."""
    return pl.scan_csv(
        file.path,
        has_header=False,
        skip_rows=1,
        separator=file.separator,
        schema={h: pl.String for h in file.header},
        row_index_name=row_index,
        truncate_ragged_lines=True,
        # A short first row must not shrink the file's columns (polars counts them from it).
        missing_columns="insert",
    )


def check_header(file: ExtractFile) -> dict[str, str | None]:
    """Header name per canonical column; raises when a required one is missing."""
    found = {canonical: file.column(canonical) for canonical in ALIASES}
    required = ["job_id", "subscriber_key", "event_time"]
    if file.kind == "Click":
        required.append("url")
    if file.kind == "Bounce" and found["bounce_category_id"] is None:
        required.append("bounce_category")
    missing = [c for c in required if found[c] is None]
    if missing:
        wanted = ", ".join(_header_label(file, c) for c in missing)
        present = ", ".join(file.header)
        raise ExtractFormatError(
            f"{file.name}, line 1: missing required column {wanted} (columns found: {present})"
        )
    return found


def _required(found: dict[str, str | None], canonical: str) -> str:
    """The header name of a column ``check_header`` has already found to be there."""
    name = found[canonical]
    if name is None:
        raise ValueError(f"column {canonical!r} was not checked for: call check_header first")
    return name


def _header_label(file: ExtractFile, canonical: str) -> str:
    labels = {
        "job_id": "JobID" if file.data_view else "SendID",
        "subscriber_key": "SubscriberKey",
        "event_time": "EventDate",
        "url": "URL",
        "bounce_category": "BounceCategory",
    }
    return labels[canonical]


def _not_blank_row(file: ExtractFile) -> pl.Expr:
    """False on an empty line (polars reads it as a row of nulls): skipped, not an error."""
    return pl.any_horizontal(pl.col(h).is_not_null() for h in file.header)


def _events(
    file: ExtractFile,
    found: dict[str, str | None],
    form: DateForm,
    source_zone: str,
    *,
    typed: bool = True,
) -> dict[str, pl.Expr]:
    """The canonical columns from the file's columns.

    ``typed``: the integer columns were read as integers (``scan_file``) and pass through;
    otherwise they are text (skip mode, checked already) and are parsed here.
    """

    def col(canonical: str, dtype: pl.DataType) -> pl.Expr:
        header = found[canonical]
        if header is None:
            return pl.lit(None, dtype=dtype)
        if dtype == pl.Int64() and not (typed and canonical in _INTEGER_COLUMNS):
            return pl.col(header).cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
        return pl.col(header).cast(dtype)

    def for_kind(kind: str, expr: pl.Expr) -> pl.Expr:
        return expr if file.kind == kind else pl.lit(None, pl.String)

    key = col("subscriber_key", pl.String()).str.strip_chars()
    raw_date = pl.col(_required(found, "event_time")).str.strip_chars()
    return {
        "job_id": col("job_id", pl.Int64()),
        # A file without BatchID comes from a list send, whose batch is 0.
        "batch_id": col("batch_id", pl.Int64()) if found["batch_id"] else pl.lit(0, pl.Int64),
        # An all-blank SubscriberKey is null, like a missing one (deleted subscribers).
        "subscriber_key": pl.when(key != "").then(key),
        "subscriber_id": col("subscriber_id", pl.Int64()),
        "list_id": col("list_id", pl.Int64()),
        "email": col("email", pl.String()),
        "event_type": pl.lit(file.kind, dtype=EventType),
        "event_time": _parse_time(raw_date, form, source_zone, strict=True),
        "url": for_kind("Click", col("url", pl.String())),
        "link_name": for_kind("Click", col("link_name", pl.String())),
        "bounce_category": for_kind("Bounce", _bounce_category(found)),
        "is_unique": _is_unique(found),
        # SendURLID where the row has one, else URLID.
        "link_id": pl.coalesce(col("send_url_id", pl.Int64()), col("url_id", pl.Int64()))
        if file.kind == "Click"
        else pl.lit(None, pl.Int64),
    }


def scan_file(file: ExtractFile, *, source_zone: str = clock.MC_TIME_ZONE) -> pl.LazyFrame:
    """One event file as canonical events (lazy, strict parsing).

    Args:
        file: A file from ``open_extract`` whose kind is an event type (not ``jobs``).
        source_zone: IANA zone of the file's zone-less dates.

    Returns:
        A LazyFrame in ``EVENT_SCHEMA``. Bad values raise a polars error when it is collected;
        ``check_file`` turns that into an ``ExtractFormatError`` naming the line (or use
        ``scan_checked``, which does so itself).

    Raises:
        ExtractFormatError: When a required column is missing from the header.
    """
    if not file.header:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    found = check_header(file)
    by_header = {header: canonical for canonical, header in found.items() if header is not None}
    schema = {
        header: pl.Int64 if by_header.get(header) in _INTEGER_COLUMNS else pl.String
        for header in file.header
    }
    frame = pl.scan_csv(
        file.path,
        has_header=False,
        skip_rows=1,
        separator=file.separator,
        schema=schema,
        truncate_ragged_lines=True,
        # A short first row must not shrink the file's columns (polars counts them from it).
        missing_columns="insert",
    )
    form = _file_date_form(file, _required(found, "event_time"))
    return frame.filter(_not_blank_row(file)).select(**_events(file, found, form, source_zone))


def _bounce_category(found: dict[str, str | None]) -> pl.Expr:
    by_id: pl.Expr = pl.lit(None, pl.String)
    if found["bounce_category_id"] is not None:
        by_id = (
            pl.col(found["bounce_category_id"])
            .cast(pl.String)
            .str.strip_chars()
            .cast(pl.Int64, strict=False)
            .replace_strict(_BOUNCE_CATEGORY_IDS, default=None, return_dtype=pl.String)
        )
    if found["bounce_category"] is None:
        return by_id
    # "Hard bounce", "Technical/Other bounce", "Technical or other bounce" -> first word.
    word = (
        pl.col(found["bounce_category"])
        .str.strip_chars()
        .str.extract(r"^([A-Za-z]+)", 1)
        .str.to_titlecase()
    )
    known = word.replace_strict(
        {c: c for c in BOUNCE_CATEGORIES}, default=None, return_dtype=pl.String
    )
    return pl.coalesce(known, by_id, pl.when(word.is_not_null()).then(pl.lit("Unknown")))


def _is_unique(found: dict[str, str | None]) -> pl.Expr:
    if found["is_unique"] is None:
        return pl.lit(None, pl.Boolean)
    text = pl.col(found["is_unique"]).str.strip_chars().str.to_lowercase()
    return (
        pl.when(text.is_in(["true", "1", "yes", "y"]))
        .then(True)
        .when(text.is_in(["false", "0", "no", "n"]))
        .then(False)
    )


# --- bad rows: found on the text, named by physical line --------------------------------------


def _rows(file: ExtractFile) -> pl.LazyFrame:
    """The file as text with ``_row``, the 0-based row number after the header."""
    return text_scan(file, row_index="_row").with_columns(pl.col("_row").cast(pl.Int64))


def with_lines(file: ExtractFile, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (with ``_row``) plus ``_line``: the physical line each row starts on.

    Row ``r`` starts on line ``2 + r`` plus every line break inside the quoted values of the
    rows before it. Rows with such breaks are few (multi-line bounce reasons): one streamed pass
    collects only them, so memory stays bounded whatever the file's size.
    """
    breaks = pl.sum_horizontal(
        pl.col(h).str.count_matches("\n", literal=True).fill_null(0) for h in file.header
    ).cast(pl.Int64)
    multi = (
        _rows(file)
        .select("_row", _breaks=breaks)
        .filter(pl.col("_breaks") > 0)
        .collect()
        .sort("_row")
        # Key r + 1 with a backward as-of join: the last multi-line row strictly before a row.
        .select(_key=pl.col("_row") + 1, _before=pl.col("_breaks").cum_sum())
    )
    return (
        rows.sort("_row")
        .join_asof(multi, left_on="_row", right_on="_key", strategy="backward")
        .with_columns(_line=pl.col("_row") + 2 + pl.col("_before").fill_null(0))
        .drop("_key", "_before")
    )


def _problems(
    file: ExtractFile, found: dict[str, str | None], form: DateForm, source_zone: str
) -> dict[str, pl.Expr]:
    """Per row: ``_column``, ``_value`` and ``_why`` of its first bad value (null when good)."""
    checks: list[tuple[str, pl.Expr, str]] = []
    by_header = {h: c for c, h in found.items() if h is not None}
    for header in file.header:  # in file order: the leftmost bad value is named
        canonical = by_header.get(header)
        raw = pl.col(header).str.strip_chars()
        blank = raw.is_null() | (raw == "")
        if canonical in REQUIRED_VALUES:
            checks.append((header, blank, "is blank"))
        if canonical in _INTEGER_COLUMNS:
            number = raw.cast(pl.Int64, strict=False)
            checks.append((header, ~blank & number.is_null(), "is not a whole number"))
            if canonical in _NON_NEGATIVE_INPUTS:
                checks.append((header, (number < 0).fill_null(False), "is negative"))
        if canonical == "event_time":
            parsed = _parse_time(raw, form, source_zone, strict=False)
            checks.append((header, ~blank & parsed.is_null(), f"is not {form.text}"))
    if not checks:
        return {"_column": pl.lit(None, pl.String), "_value": pl.lit(None, pl.String),
                "_why": pl.lit(None, pl.String)}  # fmt: skip

    def first(values: list[pl.Expr]) -> pl.Expr:
        return pl.coalesce(
            [pl.when(bad).then(value) for (_, bad, _), value in zip(checks, values, strict=True)]
        )

    return {
        "_column": first([pl.lit(header) for header, _, _ in checks]),
        "_value": first([pl.col(header) for header, _, _ in checks]),
        "_why": first([pl.lit(why) for _, _, why in checks]),
    }


def text_problem(file: ExtractFile) -> None:
    """Raise for a file that is not UTF-8 text or has a quoted value never closed."""
    line = _encoding.first_invalid_utf8(file.path)
    if line is not None:
        raise ExtractFormatError(
            f"{file.name}, line {line}: not UTF-8 or UTF-16 text (Latin-1 or another "
            f"encoding?); {_encoding.ENCODING_FIX}"
        )
    line = _encoding.unclosed_quote_line(file.path)
    if line is not None:
        raise ExtractFormatError(
            f'{file.name}, line {line}: a quoted value starts here and is never closed (a " is '
            "missing or stray); nothing after it can be read"
        )


def unreadable(file: ExtractFile, cause: BaseException | None) -> ExtractFormatError:
    # polars' message quotes raw rows (email addresses): only its kind is named.
    kind = type(cause).__name__ if cause is not None else "error"
    separator = "tab" if file.separator == "\t" else repr(file.separator)
    return ExtractFormatError(
        f"{file.name}: cannot be read as text separated by {separator} (polars {kind}); "
        "check that it is a tracking file as Marketing Cloud wrote it"
    )


def check_file(
    file: ExtractFile,
    *,
    cause: BaseException | None = None,
    source_zone: str = clock.MC_TIME_ZONE,
) -> None:
    """Find the first bad value of a file and raise an ``ExtractFormatError`` naming it.

    Reads the file once more, as text with physical line numbers: it is only called after a
    strict parse failed, so the happy path never pays for it.

    Raises:
        ExtractFormatError: For the first bad value (smallest line; leftmost column on a tie),
            for bytes that are not text or an unclosed quote (naming the line), or, when no
            single value is to blame, naming the file without quoting its rows.
    """
    if not file.header:
        return
    found = check_header(file)
    if cause is not None:
        text_problem(file)
    try:
        form = _file_date_form(file, _required(found, "event_time"))
        first = (
            _rows(file)
            .with_columns(**_problems(file, found, form, source_zone))
            .filter(pl.col("_why").is_not_null() & _not_blank_row(file))
            .select("_row", "_column", "_value", "_why")
            .head(1)
            .collect()  # streaming, stops at the first bad row
        )
        first = with_lines(file, first)
    except pl.exceptions.PolarsError as error:
        text_problem(file)
        raise unreadable(file, error) from None
    if first.height:
        row = first.row(0, named=True)
        value = "" if row["_value"] is None else f" {row['_value']!r}"
        raise ExtractFormatError(
            f"{file.name}, line {row['_line']}, column {row['_column']}:{value} {row['_why']}"
        ) from None
    if cause is not None:
        raise unreadable(file, cause) from None


def _check_counts(file: ExtractFile, written: pl.LazyFrame, source_zone: str) -> int:
    """Rows in ``written``; raises (via ``check_file``) on a blank required or negative id."""
    counts = written.select(
        pl.len(),
        *[pl.col(c).null_count().alias(f"_blank_{c}") for c in REQUIRED_VALUES],
        *[(pl.col(c) < 0).sum().alias(f"_negative_{c}") for c in _NON_NEGATIVE],
    ).collect()
    if any(counts.row(0)[1:]):
        check_file(file, source_zone=source_zone)
    return int(counts.item(0, 0))


@dataclass(frozen=True)
class StageResult:
    """What ``stage_file`` wrote: events kept and rows rejected."""

    events: int
    rejected: int = 0


def stage_file(
    file: ExtractFile,
    target: Path,
    *,
    source_zone: str = clock.MC_TIME_ZONE,
    rejected: Path | None = None,
) -> StageResult:
    """One event file's events into one Parquet file under ``target`` (all its sends).

    Args:
        file: An event file from ``open_extract``.
        target: Folder for the events, one file (``STAGED_EVENTS``) in ``EVENT_SCHEMA``.
        source_zone: IANA zone of zone-less dates.
        rejected: With a path, bad rows are skipped and written there (Parquet in
            ``REJECTED_SCHEMA``); without one, the first bad row raises.

    Returns:
        Events written and rows rejected.

    Raises:
        ExtractFormatError: For a missing column, a file that is not text, an unclosed quote,
            or (without ``rejected``) the first bad value.
    """
    if not file.header:
        return StageResult(0)
    # One file per tracking file, not one per send: a file's fixed cost (open, footer, flush)
    # paid per send made an extract of many small sends cost more than its events.
    events_file = target / STAGED_EVENTS
    target.mkdir(parents=True, exist_ok=True)
    if rejected is None:
        try:
            scan_file(file, source_zone=source_zone).sink_parquet(events_file, **STAGED_PARQUET)
        except pl.exceptions.PolarsError as error:
            check_file(file, cause=error, source_zone=source_zone)
            raise  # check_file always raises after a failed parse
        return StageResult(_check_counts(file, pl.scan_parquet(events_file), source_zone))
    found = check_header(file)
    try:
        form = _file_date_form(file, _required(found, "event_time"))
        rows = (
            _rows(file)
            .filter(_not_blank_row(file))
            .with_columns(**_problems(file, found, form, source_zone))
        )
        rows.filter(pl.col("_why").is_not_null()).select(
            "_row", column="_column", value="_value", why="_why"
        ).sink_parquet(rejected)
        rows.filter(pl.col("_why").is_null()).select(
            **_events(file, found, form, source_zone, typed=False)
        ).sink_parquet(events_file, **STAGED_PARQUET)
        # Bad rows are few next to the file: lines are added to them in memory.
        bad = with_lines(file, pl.read_parquet(rejected))
    except pl.exceptions.PolarsError as error:
        text_problem(file)
        raise unreadable(file, error) from None
    bad.select(
        file=pl.lit(file.name), line="_line", column="column", value="value", why="why"
    ).write_parquet(rejected)
    events = pl.scan_parquet(events_file).select(pl.len()).collect().item()
    return StageResult(int(events), bad.height)
