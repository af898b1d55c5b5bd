"""Marketing Cloud tracking data (extracts, data-view exports), read into one canonical event table.

Two sources hold the same events:

- a **Tracking Extract** (Automation Studio Data Extract): a .zip, or a folder, of ``Sent``,
  ``Opens``, ``Clicks``, ``Bounces``, ``Unsubs`` and ``SendJobs`` files, comma- or
  tab-separated, with a header row (``SendID``, ``SubscriberKey``, ``EventDate`` as
  ``M/D/YYYY h:mm:ss AM`` in the account's zone, ...);
- exports of the SQL **data views** ``_Sent``, ``_Open``, ``_Click``, ``_Bounce``,
  ``_Unsubscribe``, ``_Job`` (``JobID`` instead of ``SendID``, ``LinkName`` instead of
  ``Alias``, ``BounceCategoryID``, dates as ``M/D/YYYY h:mm:ss AM`` or ISO ``YYYY-MM-DD hh:mm:ss``).

A file's kind comes from its name (``Opens.csv``, ``_Open.txt``, ``clicks.tsv``: case and a
leading underscore do not matter); the separator from its header line; columns are matched by
name without regard to case (Salesforce's own sample data writes ``BatchId``), in any order, and
extra columns are ignored. A UTF-8 byte-order mark is fine; a file with no bytes at all is an
empty table. Line numbers in errors count the header as line 1 and assume no quoted field spans
two lines (Marketing Cloud does not write such fields in tracking files).

Every file becomes rows of ``EVENT_SCHEMA``: job_id, batch_id, subscriber_key, subscriber_id,
list_id, email, event_type, event_time (UTC), url, link_name, bounce_category, is_unique.

**Streaming.** ``read_extract`` is lazy: polars reads the CSV files in batches, so an extract far
larger than memory can be aggregated or landed. A zip is first unpacked to a temporary folder on
disk (zip members cannot be scanned in place), one member at a time with a fixed-size buffer.

**Errors.** Values are parsed strictly (integer columns by the CSV reader, dates with one
format), so the happy path pays for no extra checks. When a parse fails, the file is read once
more as text with row numbers to name the first bad value: ``ExtractFormatError("Clicks.csv,
line 18, column EventDate: '31/12/2026 10:00' is not M/D/YYYY h:mm:ss AM/PM")``. Missing
required columns are found from the header before any data is read. ``check_extract`` and
``ierkit.store.land_events`` raise ``ExtractFormatError``; a LazyFrame from ``read_extract`` can
only raise polars' own error when it is collected, so use one of those where the message matters.

The event store that holds the events of many extracts, deduplicated, is ``ierkit.store``.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
import zipfile
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import clock
from ierkit.errors import IerkitError

#: Event types in the canonical table, in the order a recipient meets them.
EVENT_TYPES: Final = ("Sent", "Open", "Click", "Bounce", "Unsub")
EventType: Final = pl.Enum(EVENT_TYPES)

#: Bounce categories in the canonical table (the extract writes ``Hard bounce``, the data views
#: ``BounceCategoryID`` 1-5 and ``Technical/Other bounce``; both map to these words).
BOUNCE_CATEGORIES: Final = ("Hard", "Soft", "Block", "Unknown", "Technical")

#: The canonical event table.
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
    }
)

US_FORMAT: Final = "%m/%d/%Y %I:%M:%S %p"
US_FORMAT_TEXT: Final = "M/D/YYYY h:mm:ss AM/PM"
ISO_FORMAT: Final = "%Y-%m-%d %H:%M:%S%.f"
ISO_FORMAT_TEXT: Final = "YYYY-MM-DD hh:mm:ss"

# Files of a tracking extract or of data-view exports, by lower-case stem without a leading
# underscore. "jobs" files describe sends, not events.
_FILE_KINDS: Final[dict[str, str]] = {
    "sent": "Sent",
    "opens": "Open",
    "open": "Open",
    "clicks": "Click",
    "click": "Click",
    "bounces": "Bounce",
    "bounce": "Bounce",
    "unsubs": "Unsub",
    "unsubscribe": "Unsub",
    "unsubscribes": "Unsub",
    "sendjobs": "jobs",
    "job": "jobs",
}
_SUFFIXES: Final = (".csv", ".txt", ".tsv", ".tab")

# Header names (lower case) -> canonical column. The first alias found wins.
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "job_id": ("sendid", "jobid"),
    "batch_id": ("batchid",),
    "subscriber_key": ("subscriberkey",),
    "subscriber_id": ("subscriberid",),
    "list_id": ("listid",),
    "email": ("emailaddress",),
    "event_time": ("eventdate",),
    "url": ("url",),
    "link_name": ("alias", "linkname"),
    "bounce_category": ("bouncecategory",),
    "bounce_category_id": ("bouncecategoryid",),
    "is_unique": ("isunique",),
}
_INTEGER_COLUMNS: Final = ("job_id", "batch_id", "subscriber_id", "list_id", "bounce_category_id")
#: Columns every event row must fill (a blank SubscriberKey is allowed: deleted subscribers).
REQUIRED_VALUES: Final = ("job_id", "event_time")

# Data views' BounceCategoryID (Salesforce Help, "_Bounce data view").
_BOUNCE_CATEGORY_IDS: Final = {1: "Hard", 2: "Soft", 3: "Block", 4: "Unknown", 5: "Technical"}

# Bytes copied at a time when unpacking a zip member.
_COPY_BUFFER: Final = 16 * 1024 * 1024


class ExtractFormatError(IerkitError):
    """A tracking file is malformed; the message names the file, line and column."""


@dataclass(frozen=True)
class ExtractFile:
    """One file of a tracking extract, as found on disk.

    Attributes:
        path: Where the file is (a temporary copy for zip members).
        name: The name to show in messages (``extract.zip:Clicks.csv`` for zip members).
        kind: ``Sent``, ``Open``, ``Click``, ``Bounce``, ``Unsub`` or ``jobs``.
        separator: ``,`` or a tab.
        header: Column names as written, in file order.
        data_view: True for a data-view export (``JobID``), False for a tracking extract.
    """

    path: Path
    name: str
    kind: str
    separator: str
    header: tuple[str, ...]
    data_view: bool

    def column(self, canonical: str) -> str | None:
        """The header name that holds ``canonical``, or None when the file lacks it."""
        lowered = {h.strip().lower(): h for h in self.header}
        for alias in _ALIASES[canonical]:
            if alias in lowered:
                return lowered[alias]
        return None


def file_kind(name: str) -> str | None:
    """The kind of a tracking file from its name (``Opens.csv`` -> ``Open``), None if unknown."""
    stem = Path(name).name
    lowered = stem.lower()
    for suffix in _SUFFIXES:
        if lowered.endswith(suffix):
            lowered = lowered[: -len(suffix)]
            break
    else:
        if "." in lowered:
            return None
    return _FILE_KINDS.get(lowered.lstrip("_"))


def _read_header(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """Separator and column names from the first line; None for an empty file."""
    with open(path, "rb") as handle:
        first = handle.readline()
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if not text.strip():
        return None
    separator = "\t" if "\t" in text else ","
    names: list[str] = []
    for position, raw in enumerate(text.split(separator)):
        label = raw.strip().strip('"')
        # A blank or repeated name gets its position, so every column has its own name.
        if not label or label.lower() in (n.lower() for n in names):
            label = f"{label or 'column'}_{position + 1}"
        names.append(label)
    return separator, tuple(names)


def _describe(path: Path, name: str, *, member: str | None = None) -> ExtractFile | None:
    kind = file_kind(member or name)
    if kind is None:
        return None
    header = _read_header(path)
    if header is None:
        return ExtractFile(path, name, kind, ",", (), False)
    separator, names = header
    lowered = {h.lower() for h in names}
    data_view = "jobid" in lowered and "sendid" not in lowered
    return ExtractFile(path, name, kind, separator, names, data_view)


_KEEP_TEMP: list[str] = []


def _cleanup_temp() -> None:
    for folder in _KEEP_TEMP:
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(_cleanup_temp)


@contextlib.contextmanager
def open_extract(path: str | os.PathLike[str]) -> Iterator[list[ExtractFile]]:
    """The tracking files of an extract (zip or folder), unpacked for as long as needed.

    Args:
        path: A .zip file, a folder, or a single tracking file.

    Yields:
        The recognised files, sorted by name (unknown files are ignored). Zip members are
        unpacked into a temporary folder that is removed when the context ends.

    Raises:
        ExtractFormatError: When the path does not exist, is not a zip, or holds no tracking file.
    """
    tmp = Path(tempfile.mkdtemp(prefix="ierkit-extract-"))
    try:
        yield _find_files(Path(path), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _find_files(source: Path, tmp: Path) -> list[ExtractFile]:
    """The tracking files at ``source``; zip members are unpacked into ``tmp``."""
    if source.is_dir():
        files = [
            described
            for child in sorted(source.iterdir())
            if child.is_file() and (described := _describe(child, child.name)) is not None
        ]
        _require_some(files, source)
        return files
    if not source.is_file():
        raise ExtractFormatError(f"{source}: no such file or folder")
    if not zipfile.is_zipfile(source):
        described = _describe(source, source.name)
        if described is None:
            raise ExtractFormatError(
                f"{source.name}: not a zip and not a tracking file "
                "(Sent, Opens, Clicks, Bounces, Unsubs, SendJobs or a data view)"
            )
        return [described]
    files = []
    with zipfile.ZipFile(source) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            member = Path(info.filename).name
            if info.is_dir() or file_kind(member) is None:
                continue
            target = tmp / f"{len(files):03d}-{member}"
            with archive.open(info) as raw, open(target, "wb") as out:
                shutil.copyfileobj(raw, out, _COPY_BUFFER)
            described = _describe(target, f"{source.name}:{info.filename}", member=member)
            if described is not None:
                files.append(described)
    _require_some(files, source)
    return files


def _require_some(files: list[ExtractFile], source: Path) -> None:
    if not files:
        raise ExtractFormatError(
            f"{source}: no tracking file found (expected Sent, Opens, Clicks, Bounces, Unsubs "
            "or data-view exports such as _Open.csv)"
        )


def _fixed_offset(zone: str) -> dt.timedelta | None:
    """The zone's UTC offset if it never changes (no daylight saving), else None."""
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


def _to_utc(naive: pl.Expr, source_zone: str) -> pl.Expr:
    offset = _fixed_offset(source_zone)
    if offset is not None:
        # A fixed offset is plain arithmetic: far cheaper than a zone lookup per value.
        return (naive - pl.lit(offset)).dt.replace_time_zone("UTC")
    return naive.dt.replace_time_zone(
        source_zone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")


def _date_format(file: ExtractFile, column: str) -> tuple[str, str]:
    """The (format, description) of a file's EventDate values.

    Tracking extracts always write the US 12-hour form. Data-view exports may write ISO dates;
    the first filled value decides, and every other value must then follow it.
    """
    if not file.data_view:
        return US_FORMAT, US_FORMAT_TEXT
    sample = (
        _scan_text(file)
        .select(pl.col(column).drop_nulls().first())
        .head(1)
        .collect(engine="in-memory")
    )
    value = sample.item() if sample.height else None
    if isinstance(value, str) and re.match(r"^\s*\d{4}-\d{1,2}-\d{1,2}", value):
        return ISO_FORMAT, ISO_FORMAT_TEXT
    return US_FORMAT, US_FORMAT_TEXT


def _scan_text(file: ExtractFile, *, row_index: str | None = None) -> pl.LazyFrame:
    """The file with every column as text, header names as written."""
    return pl.scan_csv(
        file.path,
        has_header=False,
        skip_rows=1,
        separator=file.separator,
        schema={h: pl.String for h in file.header},
        row_index_name=row_index,
        truncate_ragged_lines=True,
    )


def _check_header(file: ExtractFile) -> dict[str, str | None]:
    """Header name per canonical column; raises when a required one is missing."""
    found = {canonical: file.column(canonical) for canonical in _ALIASES}
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


def _header_label(file: ExtractFile, canonical: str) -> str:
    labels = {
        "job_id": "JobID" if file.data_view else "SendID",
        "subscriber_key": "SubscriberKey",
        "event_time": "EventDate",
        "url": "URL",
        "bounce_category": "BounceCategory",
    }
    return labels[canonical]


def scan_file(file: ExtractFile, *, source_zone: str = clock.MC_TIME_ZONE) -> pl.LazyFrame:
    """One event file as canonical events (lazy, strict parsing).

    Args:
        file: A file from ``open_extract`` whose kind is an event type (not ``jobs``).
        source_zone: IANA zone the file's dates are written in.

    Returns:
        A LazyFrame in ``EVENT_SCHEMA``. Bad values raise a polars error when it is collected;
        ``check_file`` turns that into an ``ExtractFormatError`` naming the line.

    Raises:
        ExtractFormatError: When a required column is missing from the header.
    """
    if not file.header:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    found = _check_header(file)
    by_header = {header: canonical for canonical, header in found.items() if header is not None}
    schema = {}
    for header in file.header:
        canonical = by_header.get(header)
        schema[header] = pl.Int64 if canonical in _INTEGER_COLUMNS else pl.String
    frame = pl.scan_csv(
        file.path,
        has_header=False,
        skip_rows=1,
        separator=file.separator,
        schema=schema,
        truncate_ragged_lines=True,
    )
    date_format, _ = _date_format(file, found["event_time"])  # type: ignore[arg-type]
    raw_date = pl.col(found["event_time"]).str.strip_chars()  # type: ignore[arg-type]
    if date_format == ISO_FORMAT:
        raw_date = raw_date.str.replace("T", " ", literal=True).str.strip_suffix("Z")
    naive = raw_date.str.to_datetime(date_format, time_unit="us", strict=True)

    def col(canonical: str, dtype: pl.DataType) -> pl.Expr:
        header = found[canonical]
        if header is None:
            return pl.lit(None, dtype=dtype)
        return pl.col(header).cast(dtype)

    batch = col("batch_id", pl.Int64())
    if found["batch_id"] is None:
        # A file without BatchID comes from a list send, whose batch is 0.
        batch = pl.lit(0, dtype=pl.Int64)
    exprs = {
        "job_id": col("job_id", pl.Int64()),
        "batch_id": batch,
        "subscriber_key": col("subscriber_key", pl.String()).str.strip_chars(),
        "subscriber_id": col("subscriber_id", pl.Int64()),
        "list_id": col("list_id", pl.Int64()),
        "email": col("email", pl.String()),
        "event_type": pl.lit(file.kind, dtype=EventType),
        "event_time": _to_utc(naive, source_zone),
        "url": col("url", pl.String()) if file.kind == "Click" else pl.lit(None, pl.String),
        "link_name": col("link_name", pl.String())
        if file.kind == "Click"
        else pl.lit(None, pl.String),
        "bounce_category": _bounce_category(found)
        if file.kind == "Bounce"
        else pl.lit(None, pl.String),
        "is_unique": _is_unique(found),
    }
    # An all-blank SubscriberKey is null, like a missing one (deleted subscribers).
    exprs["subscriber_key"] = (
        pl.when(exprs["subscriber_key"] != "").then(exprs["subscriber_key"]).otherwise(None)
    )
    return frame.select(**exprs)


def _bounce_category(found: dict[str, str | None]) -> pl.Expr:
    by_id: pl.Expr = pl.lit(None, pl.String)
    if found["bounce_category_id"] is not None:
        by_id = pl.col(found["bounce_category_id"]).replace_strict(
            _BOUNCE_CATEGORY_IDS, default=None, return_dtype=pl.String
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


def check_file(file: ExtractFile, *, cause: BaseException | None = None) -> None:
    """Find the first bad value of a file and raise an ``ExtractFormatError`` naming it.

    Reads the file once more, as text with row numbers: it is only called after a strict parse
    failed, so the happy path never pays for it.

    Raises:
        ExtractFormatError: For the first bad value (smallest line; leftmost column on a tie),
            or, when no single value is to blame, with polars' own message.
    """
    if not file.header:
        return
    found = _check_header(file)
    text = _scan_text(file, row_index="_row")
    problems: list[pl.LazyFrame] = []
    for canonical in _INTEGER_COLUMNS:
        header = found.get(canonical)
        if header is None:
            continue
        raw = pl.col(header).str.strip_chars()
        bad = raw.is_not_null() & (raw != "") & raw.cast(pl.Int64, strict=False).is_null()
        problems.append(_first_bad(text, bad, header, "is not a whole number"))
    date_header = found["event_time"]
    assert date_header is not None
    date_format, date_text = _date_format(file, date_header)
    raw = pl.col(date_header).str.strip_chars()
    if date_format == ISO_FORMAT:
        raw = raw.str.replace("T", " ", literal=True).str.strip_suffix("Z")
    parsed = raw.str.to_datetime(date_format, time_unit="us", strict=False)
    problems.append(
        _first_bad(text, raw.is_not_null() & parsed.is_null(), date_header, f"is not {date_text}")
    )
    for canonical in REQUIRED_VALUES:
        header = found[canonical]
        assert header is not None
        problems.append(_first_bad(text, pl.col(header).is_null(), header, "is blank"))
    order = {h: i for i, h in enumerate(file.header)}
    first = (
        pl.concat(problems)
        .collect(engine="in-memory")
        .with_columns(pl.col("column").replace_strict(order, default=0).alias("_pos"))
        .sort("_row", "_pos")
    )
    if first.height:
        row = first.row(0, named=True)
        value = "" if row["value"] is None else f" {row['value']!r}"
        raise ExtractFormatError(
            f"{file.name}, line {row['_row'] + 2}, column {row['column']}:{value} {row['problem']}"
        ) from cause
    if cause is not None:
        raise ExtractFormatError(f"{file.name}: {str(cause).splitlines()[0]}") from cause


def _first_bad(text: pl.LazyFrame, bad: pl.Expr, header: str, problem: str) -> pl.LazyFrame:
    return (
        text.filter(bad)
        .select(
            pl.col("_row").cast(pl.Int64),
            column=pl.lit(header),
            value=pl.col(header),
            problem=pl.lit(problem),
        )
        .sort("_row")
        .head(1)
    )


def read_extract(
    path: str | os.PathLike[str], *, source_zone: str = clock.MC_TIME_ZONE
) -> pl.LazyFrame:
    """All events of a tracking extract or data-view export as one canonical event table.

    Args:
        path: A .zip, a folder, or one tracking file.
        source_zone: IANA zone of the file's dates; Marketing Cloud's UTC-6 by default.

    Returns:
        A LazyFrame in ``EVENT_SCHEMA`` (not deduplicated; row order not meaningful). A zip is
        unpacked into a temporary folder that lives until the Python process exits; use
        ``open_extract`` with ``scan_file`` to control that, or ``ierkit.store.land_events``.

    Raises:
        ExtractFormatError: When the path holds no tracking file or a required column is
            missing. Bad values surface as polars errors on collect (see the module docstring).
    """
    # The LazyFrame reads the files later: an unpacked zip stays until the process ends.
    tmp = Path(tempfile.mkdtemp(prefix="ierkit-extract-"))
    _KEEP_TEMP.append(str(tmp))
    files = _find_files(Path(path), tmp)
    frames = [scan_file(f, source_zone=source_zone) for f in files if f.kind != "jobs"]
    if not frames:
        return pl.LazyFrame(schema=EVENT_SCHEMA)
    return pl.concat(frames, how="vertical")


def check_extract(path: str | os.PathLike[str], *, source_zone: str = clock.MC_TIME_ZONE) -> int:
    """Read every event of an extract once and raise on the first malformed value.

    Returns:
        The number of events.

    Raises:
        ExtractFormatError: Naming the file, line and column of the first bad value.
    """
    total = 0
    with open_extract(path) as files:
        for file in files:
            if file.kind == "jobs":
                continue
            frame = scan_file(file, source_zone=source_zone)
            try:
                counts = frame.select(
                    pl.len(), *[pl.col(c).null_count() for c in REQUIRED_VALUES]
                ).collect()
            except pl.exceptions.PolarsError as error:
                check_file(file, cause=error)
                raise
            if any(counts.row(0)[1:]):
                check_file(file)
            total += counts.item(0, 0)
    return total


def read_send_jobs(path: str | os.PathLike[str]) -> pl.LazyFrame:
    """Send details from an extract's ``SendJobs`` (or ``_Job``) file.

    Returns:
        job_id, email_name, from_name, from_address, subject_line (one row per job; empty when
        the extract has no SendJobs file).
    """
    schema = {
        "job_id": pl.Int64,
        "email_name": pl.String,
        "from_name": pl.String,
        "from_address": pl.String,
        "subject_line": pl.String,
    }
    aliases = {
        "job_id": ("sendid", "jobid"),
        "email_name": ("emailname",),
        "from_name": ("fromname",),
        "from_address": ("fromemail",),
        "subject_line": ("subject", "emailsubject"),
    }
    frames = []
    with open_extract(path) as files:
        for file in files:
            if file.kind != "jobs" or not file.header:
                continue
            lowered = {h.lower(): h for h in file.header}
            exprs = {}
            for canonical, names in aliases.items():
                header = next((lowered[n] for n in names if n in lowered), None)
                exprs[canonical] = (
                    pl.lit(None, schema[canonical])
                    if header is None
                    else pl.col(header).cast(schema[canonical], strict=False)
                )
            frames.append(_scan_text(file).select(**exprs).collect(engine="in-memory"))
    if not frames:
        return pl.LazyFrame(schema=schema)
    return (
        pl.concat(frames)
        .filter(pl.col("job_id").is_not_null())
        .unique("job_id", keep="first", maintain_order=True)
        .sort("job_id")
        .lazy()
    )
