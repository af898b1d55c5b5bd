"""Tests for ierkit.extract: tracking extract and data-view files to canonical events."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import polars as pl
import pytest

from ierkit import clock, extract
from ierkit.extract import ExtractFormatError
from ierkit.store import events_dir, land_events, stored_jobs

UTC = dt.UTC
HEAD = (
    "ClientID,SendID,SubscriberKey,EmailAddress,SubscriberID,ListID,EventDate,EventType,"
    "BatchID,TriggeredSendExternalKey"
)
KEY_A = "0035g00000AbCdEAAX"
KEY_B = "00Q5g00000XyZaBEA1"


def write(folder: Path, name: str, text: str, *, bom: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def events(path: Path, **options: object) -> pl.DataFrame:
    frame = extract.read_extract(path, **options).collect()
    return frame.sort("event_type", "subscriber_key", "event_time", nulls_last=True)


def write_extract(folder: Path) -> Path:
    """A small tracking extract (five events of two recipients, one send) in ``folder``."""
    write(
        folder,
        "Sent.csv",
        f"{HEAD}\n"
        f"1,100,{KEY_A},a@example.com,11,5,1/15/2026 10:05:12 AM,Sent,0,\n"
        f"1,100,{KEY_B},b@example.com,12,5,1/15/2026 10:05:13 AM,Sent,0,\n",
    )
    write(
        folder,
        "Opens.csv",
        f"{HEAD}\n1,100,{KEY_A},a@example.com,11,5,1/15/2026 12:00:00 PM,Open,0,\n",
    )
    write(
        folder,
        "Clicks.csv",
        f"{HEAD},SendURLID,URLID,URL,Alias\n"
        f"1,100,{KEY_A},a@example.com,11,5,1/15/2026 1:00:00 PM,Click,0,,7,8,https://x.com/p,Pricing\n",
    )
    write(
        folder,
        "Bounces.csv",
        f"{HEAD},BounceCategory,SMTPCode,BounceReason\n"
        f"1,100,{KEY_B},b@example.com,12,5,1/15/2026 10:06:00 AM,Bounce,0,,Block bounce,554,no\n",
    )
    write(folder, "Unsubs.csv", f"{HEAD}\n")  # header only: no events
    write(
        folder,
        "SendJobs.csv",
        "ClientID,SendID,FromName,FromEmail,Subject,EmailName\n"
        "1,100,Acme,news@acme.test,Hello,Monthly Newsletter - January\n",
    )
    return folder


@pytest.fixture
def extract_folder(tmp_path: Path) -> Path:
    return write_extract(tmp_path / "extract")


def test_reads_every_event_file_into_canonical_events(extract_folder: Path) -> None:
    frame = events(extract_folder)
    assert frame.schema == extract.EVENT_SCHEMA
    assert frame.get_column("event_type").cast(pl.String).to_list() == [
        "Sent",
        "Sent",
        "Open",
        "Click",
        "Bounce",
    ]
    click = frame.filter(pl.col("event_type") == "Click").row(0, named=True)
    assert click["url"] == "https://x.com/p"
    assert click["link_name"] == "Pricing"
    assert click["job_id"] == 100 and click["batch_id"] == 0 and click["subscriber_id"] == 11
    bounce = frame.filter(pl.col("event_type") == "Bounce").row(0, named=True)
    assert bounce["bounce_category"] == "Block"
    assert bounce["subscriber_key"] == KEY_B


def test_zip_gives_the_same_events_as_the_folder(extract_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "tracking_extract.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in extract_folder.iterdir():
            z.write(path, path.name)
    assert events(archive).equals(events(extract_folder))


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # Marketing Cloud's default: UTC-6 all year (no daylight saving, even in July).
        (clock.MC_TIME_ZONE, dt.datetime(2026, 7, 15, 16, 5, 12, tzinfo=UTC)),
        ("UTC", dt.datetime(2026, 7, 15, 10, 5, 12, tzinfo=UTC)),
        # A zone with daylight saving: EDT is UTC-4 in July.
        ("America/New_York", dt.datetime(2026, 7, 15, 14, 5, 12, tzinfo=UTC)),
    ],
)
def test_event_time_is_converted_to_utc(tmp_path: Path, zone: str, expected: dt.datetime) -> None:
    write(
        tmp_path, "Sent.csv", f"{HEAD}\n1,100,{KEY_A},a@x.com,11,5,7/15/2026 10:05:12 AM,Sent,0,\n"
    )
    frame = extract.read_extract(tmp_path, source_zone=zone).collect()
    assert frame.get_column("event_time").to_list() == [expected]


def test_pm_and_midnight_hours(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Opens.csv",
        f"{HEAD}\n1,1,{KEY_A},,11,5,1/2/2026 12:00:01 AM,Open,0,\n"
        f"1,1,{KEY_A},,11,5,1/2/2026 12:30:00 PM,Open,0,\n",
    )
    times = events(tmp_path, source_zone="UTC").get_column("event_time").to_list()
    assert times == [
        dt.datetime(2026, 1, 2, 0, 0, 1, tzinfo=UTC),
        dt.datetime(2026, 1, 2, 12, 30, tzinfo=UTC),
    ]


def test_tab_bom_case_and_extra_columns_in_any_order(tmp_path: Path) -> None:
    # Salesforce's sample data writes BatchId; extras (IsUnique, Browser) may come anywhere.
    header = "Browser\tbatchid\tEventDate\tIsUnique\tSUBSCRIBERKEY\tSendID\tSubscriberID\tListID"
    write(
        tmp_path,
        "Opens.txt",
        f"{header}\nChrome\t3\t1/15/2026 10:00:00 AM\tTrue\t{KEY_A}\t200\t11\t5\n",
        bom=True,
    )
    row = events(tmp_path).row(0, named=True)
    assert (row["job_id"], row["batch_id"], row["subscriber_key"]) == (200, 3, KEY_A)
    assert row["is_unique"] is True
    assert row["event_time"] == dt.datetime(2026, 1, 15, 16, tzinfo=UTC)


def test_empty_and_header_only_files_are_fine(tmp_path: Path) -> None:
    write(tmp_path, "Sent.csv", "")
    write(tmp_path, "Opens.csv", "\ufeff", bom=False)
    write(tmp_path, "Clicks.csv", f"{HEAD},SendURLID,URLID,URL,Alias\n")
    frame = extract.read_extract(tmp_path).collect()
    assert frame.height == 0 and frame.schema == extract.EVENT_SCHEMA
    assert extract.check_extract(tmp_path) == 0


def test_blank_subscriber_key_is_null(tmp_path: Path) -> None:
    # A subscriber deleted in Marketing Cloud: opens keep coming with a blank key.
    write(tmp_path, "Opens.csv", f"{HEAD}\n1,100,,,11,5,1/15/2026 10:00:00 AM,Open,0,\n")
    row = events(tmp_path).row(0, named=True)
    assert row["subscriber_key"] is None and row["subscriber_id"] == 11


def test_data_view_exports(tmp_path: Path) -> None:
    write(
        tmp_path,
        "_Click.csv",
        "JobID,ListID,BatchID,SubscriberID,SubscriberKey,EventDate,IsUnique,URL,LinkName,LinkContent\n"
        f"300,5,0,11,{KEY_A},2026-01-15 10:00:00.000,1,https://x.com/a,Blog,https://x.com/a\n",
    )
    write(
        tmp_path,
        "_Bounce.csv",
        "JobID,ListID,BatchID,SubscriberID,SubscriberKey,EventDate,IsUnique,BounceCategoryID,"
        "BounceCategory\n"
        f"300,5,0,12,{KEY_B},2026-01-15T10:01:00,1,5,Technical/Other bounce\n",
    )
    write(
        tmp_path,
        "_Open.csv",
        "JobID,ListID,BatchID,SubscriberID,SubscriberKey,EventDate,IsUnique\n"
        f"300,5,0,11,{KEY_A},1/15/2026 9:59:00 AM,1\n",
    )
    frame = events(tmp_path)
    assert frame.get_column("event_type").cast(pl.String).to_list() == ["Open", "Click", "Bounce"]
    assert frame.get_column("event_time").to_list() == [
        dt.datetime(2026, 1, 15, 15, 59, tzinfo=UTC),
        dt.datetime(2026, 1, 15, 16, 0, tzinfo=UTC),
        dt.datetime(2026, 1, 15, 16, 1, tzinfo=UTC),
    ]
    assert frame.get_column("link_name").to_list() == [None, "Blog", None]
    assert frame.get_column("bounce_category").to_list() == [None, None, "Technical"]


def test_bounce_category_id_alone(tmp_path: Path) -> None:
    write(
        tmp_path,
        "_Bounce.csv",
        "JobID,BatchID,SubscriberID,SubscriberKey,EventDate,BounceCategoryID\n"
        f"300,0,12,{KEY_B},2026-01-15 10:01:00,1\n",
    )
    assert events(tmp_path).get_column("bounce_category").to_list() == ["Hard"]


# --- malformed input ------------------------------------------------------------------------


def _bad(tmp_path: Path, name: str, text: str) -> str:
    write(tmp_path, name, text)
    with pytest.raises(ExtractFormatError) as caught:
        land_events([tmp_path], tmp_path / "store")
    # Nothing reaches the store when a file is malformed.
    assert stored_jobs(events_dir(tmp_path / "store")) == []
    return str(caught.value)


def test_bad_date_names_file_line_and_column(tmp_path: Path) -> None:
    message = _bad(
        tmp_path,
        "Clicks.csv",
        f"{HEAD},URL\n"
        f"1,100,{KEY_A},,11,5,1/15/2026 10:00:00 AM,Click,0,,https://x.com\n"
        f"1,100,{KEY_A},,11,5,31/12/2026 10:00,Click,0,,https://x.com\n",
    )
    assert message == (
        "Clicks.csv, line 3, column EventDate: '31/12/2026 10:00' is not M/D/YYYY h:mm:ss AM/PM"
    )


def test_non_numeric_send_id(tmp_path: Path) -> None:
    message = _bad(
        tmp_path,
        "Sent.csv",
        f"{HEAD}\n1,100,{KEY_A},,11,5,1/15/2026 10:00:00 AM,Sent,0,\n"
        f"1,100,{KEY_A},,11,5,1/15/2026 10:00:00 AM,Sent,0,\n"
        f"1,10x,{KEY_B},,12,5,1/15/2026 10:00:00 AM,Sent,0,\n",
    )
    assert message == "Sent.csv, line 4, column SendID: '10x' is not a whole number"


def test_missing_required_column(tmp_path: Path) -> None:
    message = _bad(
        tmp_path,
        "Opens.csv",
        "ClientID,SubscriberKey,EventDate\n1,x,1/15/2026 10:00:00 AM\n",
    )
    assert message.startswith("Opens.csv, line 1: missing required column SendID")


def test_missing_url_in_clicks(tmp_path: Path) -> None:
    message = _bad(tmp_path, "Clicks.csv", f"{HEAD}\n")
    assert message.startswith("Clicks.csv, line 1: missing required column URL")


def test_blank_event_date(tmp_path: Path) -> None:
    message = _bad(tmp_path, "Opens.csv", f"{HEAD}\n1,100,{KEY_A},,11,5,,Open,0,\n")
    assert message == "Opens.csv, line 2, column EventDate: is blank"


def test_bad_value_inside_a_zip_names_the_member(tmp_path: Path) -> None:
    archive = tmp_path / "extract.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Opens.csv", f"{HEAD}\n1,100,{KEY_A},,11,5,2026-01-15 10:00,Open,0,\n")
    with pytest.raises(ExtractFormatError, match=r"^extract\.zip:Opens\.csv, line 2, column "):
        extract.check_extract(archive)


def test_not_an_extract(tmp_path: Path) -> None:
    write(tmp_path, "notes.csv", "a,b\n1,2\n")
    with pytest.raises(ExtractFormatError, match="no tracking file found"):
        extract.read_extract(tmp_path)


def test_send_jobs(extract_folder: Path) -> None:
    jobs = extract.read_send_jobs(extract_folder).collect()
    assert jobs.row(0, named=True) == {
        "job_id": 100,
        "email_name": "Monthly Newsletter - January",
        "from_name": "Acme",
        "from_address": "news@acme.test",
        "subject_line": "Hello",
    }


def test_blank_and_repeated_header_names(tmp_path: Path) -> None:
    # The first SendID is the one read; a repeated or blank extra column does not shift others.
    write(
        tmp_path,
        "Opens.csv",
        f"SendID,,SubscriberKey,EventDate,sendid\n100,x,{KEY_A},1/15/2026 10:00:00 AM,zzz\n",
    )
    row = events(tmp_path).row(0, named=True)
    assert (row["job_id"], row["subscriber_key"]) == (100, KEY_A)
