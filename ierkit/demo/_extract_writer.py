"""The Marketing Cloud Tracking Extract of the demo: its files, columns, dates and zip.

``extract_frames`` gives a block's rows of each event file; ``send_jobs`` the SendJobs file;
``write_zip`` packs the files into a zip whose bytes depend only on theirs. ``ExtractFormat``
writes the same rows as Marketing Cloud's other shapes (UTF-16, the "Unicode" option; a tab,
pipe or semicolon separator), so ierkit can be shown to read them alike; the default (UTF-8,
comma) writes the files as they were made, byte for byte.
"""

from __future__ import annotations

import codecs
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from ierkit import reasons
from ierkit.clock import MC_TIME_ZONE
from ierkit.demo._catalogue import LINK_POOL, PROGRAMMES, WELCOME_TS_KEY
from ierkit.demo._params import (
    BOUNCE_REASONS,
    CLIENT_ID,
    COMPANY,
    COMPANY_DOMAIN,
    SMTP_CODES,
)
from ierkit.demo._schedule import Send

#: Tracking Extract EventDate format, e.g. ``1/15/2021 10:05:12 AM``.
MC_DATE_FORMAT: Final = "%-m/%-d/%Y %-I:%M:%S %p"
EXTRACT_FILES: Final = (
    "SendJobs.csv",
    "Sent.csv",
    "Opens.csv",
    "Clicks.csv",
    "Bounces.csv",
    "Unsubs.csv",
)
EVENT_COLUMNS: Final = (
    "ClientID",
    "SendID",
    "SubscriberKey",
    "EmailAddress",
    "SubscriberID",
    "ListID",
    "EventDate",
    "EventType",
    "BatchID",
    "TriggeredSendExternalKey",
)
CLICK_COLUMNS: Final = (*EVENT_COLUMNS, "SendURLID", "URLID", "URL", "Alias")
BOUNCE_COLUMNS: Final = (*EVENT_COLUMNS, "BounceCategory", "SMTPCode", "BounceReason")
SENDJOB_COLUMNS: Final = (
    "ClientID",
    "SendID",
    "FromName",
    "FromEmail",
    "SchedTime",
    "SentTime",
    "Subject",
    "EmailName",
    "TriggeredSendExternalKey",
    "SendDefinitionExternalKey",
    "JobStatus",
    "PreviewURL",
    "IsMultipart",
    "Additional",
)


def mc_date(expr: pl.Expr) -> pl.Expr:
    """UTC instants as Marketing Cloud writes them in an extract (its time zone, US format)."""
    return expr.dt.convert_time_zone(MC_TIME_ZONE).dt.strftime(MC_DATE_FORMAT)


def extract_frames(
    send: Send, rows: pl.LazyFrame, opens: pl.LazyFrame, clicks: pl.LazyFrame
) -> dict[str, pl.LazyFrame]:
    """The block's rows of each Tracking Extract event file."""
    deleted = pl.col("reason") == reasons.DELETED_IN_MARKETING_CLOUD
    ts_key = WELCOME_TS_KEY if send.kind == "triggered" else ""
    list_id = PROGRAMMES[send.programme].list_id
    info = rows.select(
        "rk",
        ClientID=pl.lit(CLIENT_ID, dtype=pl.Int64),
        SendID=pl.lit(send.job_id, dtype=pl.Int64),
        # A subscriber deleted in Marketing Cloud: blank key and address on later events.
        SubscriberKey=pl.when(~deleted).then(pl.col("mc_key")),
        EmailAddress=pl.when(~deleted).then(pl.col("email")),
        SubscriberID=pl.col("subscriber_id").cast(pl.Int64),
        ListID=pl.lit(list_id, dtype=pl.Int64),
        BatchID=pl.col("batch_id"),
        TriggeredSendExternalKey=pl.lit(ts_key),
    )

    def with_info(events: pl.LazyFrame, columns: tuple[str, ...]) -> pl.LazyFrame:
        return events.join(info, on="rk", how="left", maintain_order="left").select(columns)

    if send.kind == "triggered":
        sent_date = mc_date(pl.col("date_sent"))
    else:
        # One date for the whole send: format it once, not per row.
        sent_date = pl.lit(pl.select(mc_date(pl.lit(send.date_sent))).item())
    sent = rows.filter(~deleted).select("rk", EventDate=sent_date, EventType=pl.lit("Sent"))
    o = opens.select("rk", EventDate=mc_date(pl.col("t")), EventType=pl.lit("Open"))
    urls = pl.Series([url for url, _ in send.links], dtype=pl.String)
    names = pl.Series([name for _, name in send.links], dtype=pl.String)
    pool = [url for url, _ in LINK_POOL]
    url_ids = pl.Series([1000 + pool.index(url) for url, _ in send.links], dtype=pl.Int64)
    c = clicks.select(
        "rk",
        EventDate=mc_date(pl.col("t")),
        EventType=pl.lit("Click"),
        SendURLID=pl.lit(send.send_url_base, dtype=pl.Int64) + pl.col("link"),
        URLID=pl.lit(url_ids).gather(pl.col("link")),
        URL=pl.lit(urls).gather(pl.col("link")),
        Alias=pl.lit(names).gather(pl.col("link")),
    )
    b = rows.filter(pl.col("bounce_cat").is_not_null()).select(
        "rk",
        EventDate=mc_date(pl.col("date_bounced")),
        EventType=pl.lit("Bounce"),
        BounceCategory=pl.col("bounce_cat"),
        SMTPCode=pl.col("bounce_cat").replace_strict(SMTP_CODES, return_dtype=pl.Int64),
        BounceReason=pl.col("bounce_cat").replace_strict(BOUNCE_REASONS, return_dtype=pl.String),
    )
    un = rows.filter(pl.col("date_unsub").is_not_null()).select(
        "rk", EventDate=mc_date(pl.col("date_unsub")), EventType=pl.lit("Unsub")
    )
    return {
        "Sent.csv": with_info(sent, EVENT_COLUMNS),
        "Opens.csv": with_info(o, EVENT_COLUMNS),
        "Clicks.csv": with_info(c, CLICK_COLUMNS),
        "Bounces.csv": with_info(b, BOUNCE_COLUMNS),
        "Unsubs.csv": with_info(un, EVENT_COLUMNS),
    }


def send_jobs(sends: tuple[Send, ...]) -> pl.DataFrame:
    """SendJobs.csv: one row per send."""
    rows = []
    for s in sends:
        rows.append(
            {
                "ClientID": CLIENT_ID,
                "SendID": s.job_id,
                "FromName": COMPANY,
                "FromEmail": f"news@{COMPANY_DOMAIN}",
                "sent": s.date_sent,
                "Subject": s.subject,
                "EmailName": s.email_name,
                "TriggeredSendExternalKey": WELCOME_TS_KEY if s.kind == "triggered" else "",
                "SendDefinitionExternalKey": "" if s.kind == "triggered" else f"sd-{s.job_id}",
                "JobStatus": "Sending" if s.status == "Sending" else "Complete",
                "PreviewURL": f"https://view.example.com/?j={s.job_id}",
                "IsMultipart": "True",
                "Additional": "",
            }
        )
    frame = pl.DataFrame(rows).with_columns(
        SchedTime=mc_date(pl.col("sent") - pl.duration(minutes=10)),
        SentTime=mc_date(pl.col("sent")),
    )
    return frame.select(SENDJOB_COLUMNS)


@dataclass(frozen=True)
class ExtractFormat:
    """How the demo writes its extract's files.

    Attributes:
        encoding: ``utf-8`` (default) or ``utf-16`` (little-endian with a byte-order mark, as
            the Tracking Extract's "Unicode" option writes).
        delimiter: ``,`` (default), a tab, ``|`` or ``;``.
    """

    encoding: str = "utf-8"
    delimiter: str = ","

    def __post_init__(self) -> None:
        if self.encoding not in ("utf-8", "utf-16"):
            raise ValueError(f"extract encoding must be utf-8 or utf-16, got {self.encoding!r}")
        if self.delimiter not in (",", "\t", "|", ";"):
            raise ValueError(f"extract delimiter must be , tab | or ;, got {self.delimiter!r}")

    @property
    def is_default(self) -> bool:
        """UTF-8 and commas: the files are zipped as they were made."""
        return self == ExtractFormat()


def _reshaped(source: Path, folder: Path, extract_format: ExtractFormat) -> Path:
    """A copy of a comma-separated UTF-8 file in ``extract_format`` (streamed)."""
    separated = folder / f"{source.name}.sep"
    if extract_format.delimiter == ",":
        separated = source
    else:
        # Every value as text, so nothing is reformatted; quotes only where the new separator
        # (or a quote, or a line break) needs them.
        pl.scan_csv(source, infer_schema=False).sink_csv(
            separated, separator=extract_format.delimiter
        )
    if extract_format.encoding == "utf-8":
        return separated
    target = folder / f"{source.name}.utf16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(separated, "rb") as src, open(target, "wb") as dst:
        dst.write(codecs.BOM_UTF16_LE)
        while block := src.read(1 << 22):
            dst.write(decoder.decode(block).encode("utf-16-le"))
        dst.write(decoder.decode(b"", final=True).encode("utf-16-le"))
    return target


def write_zip(
    path: Path,
    members: list[tuple[str, Path]],
    extract_format: ExtractFormat | None = None,
) -> None:
    """A zip whose bytes depend only on the members' bytes: fixed dates, order and level.

    With a non-default ``extract_format``, each member is rewritten in it first.
    """
    if extract_format is not None and not extract_format.is_default:
        with tempfile.TemporaryDirectory(prefix="ierkit-demo-extract-") as work:
            reshaped = [(n, _reshaped(src, Path(work), extract_format)) for n, src in members]
            write_zip(path, reshaped)
        return
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        for name, source in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            # Level 1: the extract is large and mostly repetitive text; speed matters more.
            # The attribute is ``compress_level`` from Python 3.13 on, ``_compresslevel`` before.
            level_attr = "compress_level" if hasattr(info, "compress_level") else "_compresslevel"
            setattr(info, level_attr, 1)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            # Known up front, so zipfile's ZIP64 decision is the same on every run.
            info.file_size = source.stat().st_size
            with open(source, "rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
