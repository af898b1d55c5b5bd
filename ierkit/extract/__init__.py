"""Marketing Cloud tracking data (extracts, data-view exports), read into one canonical event table.

Two sources hold the same events:

- a **Tracking Extract** (Automation Studio Data Extract): a .zip, or a folder, of ``Sent``,
  ``Opens``, ``Clicks``, ``Bounces``, ``Unsubs`` and ``SendJobs`` files with a header row
  (``SendID``, ``SubscriberKey``, ``EventDate`` as ``M/D/YYYY h:mm:ss AM`` in Marketing Cloud's
  UTC-6, ...), in UTF-8 or, with the "Unicode" option, UTF-16;
- exports of the SQL **data views** ``_Sent``, ``_Open``, ``_Click``, ``_Bounce``,
  ``_Unsubscribe``, ``_Job`` (``JobID`` instead of ``SendID``, ``LinkName`` instead of
  ``Alias``, ``BounceCategoryID``, dates as ``M/D/YYYY h:mm:ss AM`` or ISO), under any name and
  with any separator the admin's export chose.

How a file is recognised (``_discover``): its kind from its name, else from its columns; its
encoding from its first bytes (UTF-8 with or without a byte-order mark, UTF-16 LE or BE with or
without one: transcoded to UTF-8 in a streamed pass, since polars reads only UTF-8); its
separator (comma, tab, pipe, semicolon) from its header line (``_encoding``). Columns are
matched by name without regard to case (Salesforce's own sample data writes ``BatchId``), in
any order; extra columns are ignored. A file with no bytes at all is an empty table.

Every file becomes rows of ``EVENT_SCHEMA``: job_id, batch_id, subscriber_key, subscriber_id,
list_id, email, event_type, event_time (UTC), url, link_name, bounce_category, is_unique,
link_id (a click's SendURLID, else URLID).

**Streaming.** ``read_extract`` is lazy and ``ierkit.store.land_events`` streams each file to
Parquet, so an extract far larger than memory (10 GB) is read in bounded memory. A zip is first
unpacked to a private temporary folder (zip members cannot be scanned in place), two members at
a time (largest first) with a fixed-size buffer and a size guard (``ZipLimits``); ``unpacking``
hands each file over as soon as it is unpacked, so that parsing overlaps unpacking.

**Errors** (``_parse``): strict parsing on the happy path; on a failure the file is read again
to name the first bad value by file, physical line and column. Bytes that are not UTF-8 or
UTF-16 (Latin-1) and an unclosed quote are named by line; polars' own messages, which quote raw
rows with email addresses, are never shown. ``stage_file(rejected=...)`` skips bad rows instead
and lists them (``REJECTED_SCHEMA``).

The event store that holds the events of many extracts, deduplicated, is ``ierkit.store``;
pickup from Marketing Cloud's SFTP is ``ierkit.pickup``.
"""

from ierkit.extract._discover import (
    ExtractFile,
    ZipLimits,
    file_kind,
    sweep_stale,
)
from ierkit.extract._encoding import EncodingError, ExtractFormatError
from ierkit.extract._parse import (
    BOUNCE_CATEGORIES,
    EVENT_SCHEMA,
    EVENT_TYPES,
    ISO_FORMAT,
    ISO_FORMAT_TEXT,
    ISO_ZONED_FORMAT,
    REJECTED_SCHEMA,
    REQUIRED_VALUES,
    STAGED_EVENTS,
    US_FORMAT,
    US_FORMAT_TEXT,
    DateForm,
    EventType,
    StageResult,
    check_file,
    date_form,
    scan_file,
    stage_file,
)
from ierkit.extract._read import (
    SFTP_SCHEME,
    check_extract,
    local_path,
    open_extract,
    read_extract,
    read_send_jobs,
    scan_checked,
    send_jobs_of,
    unpacking,
    write_rejected,
)

__all__ = [
    "BOUNCE_CATEGORIES",
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "ISO_FORMAT",
    "ISO_FORMAT_TEXT",
    "ISO_ZONED_FORMAT",
    "REJECTED_SCHEMA",
    "REQUIRED_VALUES",
    "SFTP_SCHEME",
    "STAGED_EVENTS",
    "US_FORMAT",
    "US_FORMAT_TEXT",
    "DateForm",
    "EncodingError",
    "EventType",
    "ExtractFile",
    "ExtractFormatError",
    "StageResult",
    "ZipLimits",
    "check_extract",
    "check_file",
    "date_form",
    "file_kind",
    "local_path",
    "open_extract",
    "read_extract",
    "read_send_jobs",
    "scan_checked",
    "scan_file",
    "send_jobs_of",
    "stage_file",
    "sweep_stale",
    "unpacking",
    "write_rejected",
]
