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


# --- encodings, separators, names, date forms (issue 16) --------------------------------------

OPEN_ROW = f"1,100,{KEY_A},a@example.com,11,5,1/15/2026 10:00:00 AM,Open,0,"
OPEN_EVENT = (100, KEY_A, dt.datetime(2026, 1, 15, 16, tzinfo=UTC))


def opens_text(separator: str = ",") -> str:
    return f"{HEAD}\n{OPEN_ROW}\n".replace(",", separator)


def first_event(path: Path) -> tuple[int, str, dt.datetime]:
    row = extract.read_extract(path).collect().row(0, named=True)
    return row["job_id"], row["subscriber_key"], row["event_time"]


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),  # no byte-order mark: found from the NUL bytes
        ("utf-16-be", b""),
    ],
)
def test_encodings(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    (tmp_path / "Opens.csv").write_bytes(prefix + opens_text().encode(encoding))
    assert first_event(tmp_path) == OPEN_EVENT


def test_utf16_in_a_zip_with_non_ascii_values(tmp_path: Path) -> None:
    text = f"{HEAD}\n1,100,{KEY_A},zoë@exämple.com,11,5,1/15/2026 10:00:00 AM,Open,0,\n"
    archive = tmp_path / "extract.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("extract/Opens.csv", b"\xff\xfe" + text.encode("utf-16-le"))
    assert extract.read_extract(archive).collect().item(0, "email") == "zoë@exämple.com"
    with extract.open_extract(archive) as files:
        assert files[0].note == "extract.zip:extract/Opens.csv: UTF-16-LE transcoded to UTF-8"


@pytest.mark.parametrize("separator", [",", "\t", "|", ";"])
def test_separators_from_the_header(tmp_path: Path, separator: str) -> None:
    write(tmp_path, "Opens.csv", opens_text(separator))
    assert first_event(tmp_path) == OPEN_EVENT


def test_quoted_separator_inside_a_value(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Bounces.csv",
        f"{HEAD}|BounceCategory|BounceReason\n".replace(",", "|")
        + f'1|100|{KEY_A}||11|5|1/15/2026 10:00:00 AM|Bounce|0||Hard bounce|"550 | no such user"\n',
    )
    assert extract.read_extract(tmp_path).collect().item(0, "bounce_category") == "Hard"


@pytest.mark.parametrize(
    ("name", "header", "value", "kind"),
    [
        # A data-view export named by the admin: the word in the name says Open.
        ("TH_Action_Open_20261101.csv", "JobID,SubscriberKey,EventDate,IsUnique", "1", "Open"),
        # An EventType column says what it holds, whatever the name.
        ("export_a.csv", "SendID,SubscriberKey,EventDate,EventType", "Unsub", "Unsub"),
        # Clicks and bounces by their own columns.
        ("export_b.txt", "SendID,SubscriberKey,EventDate,URL,URLID", "https://x,8", "Click"),
        ("export_c.txt", "JobID,SubscriberKey,EventDate,BounceCategoryID", "1", "Bounce"),
    ],
)
def test_kind_from_columns_when_the_name_is_unknown(
    tmp_path: Path, name: str, header: str, value: str, kind: str
) -> None:
    write(tmp_path, name, f"{header}\n100,{KEY_A},1/15/2026 10:00:00 AM,{value}\n")
    frame = extract.read_extract(tmp_path).collect()
    assert frame.get_column("event_type").cast(pl.String).to_list() == [kind]
    with extract.open_extract(tmp_path) as files:
        assert files[0].note == f"{name}: read as {kind} (from its columns)"


def test_kind_cannot_be_told(tmp_path: Path) -> None:
    write(
        tmp_path,
        "export.csv",
        f"SendID,SubscriberKey,EventDate\n100,{KEY_A},1/15/2026 1:00:00 AM\n",
    )
    with pytest.raises(ExtractFormatError, match=r"^export\.csv: .*put Sent, Open or Unsub"):
        extract.read_extract(tmp_path)


def test_send_jobs_by_columns(tmp_path: Path) -> None:
    write(tmp_path, "jobs_2026.csv", "SendID,EmailName,Subject\n100,Newsletter,Hi\n")
    write(tmp_path, "Opens.csv", opens_text())
    assert extract.read_send_jobs(tmp_path).collect().item(0, "email_name") == "Newsletter"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # Marketing Cloud's own form: its fixed UTC-6, all year.
        ("7/15/2026 10:05:12 AM", dt.datetime(2026, 7, 15, 16, 5, 12, tzinfo=UTC)),
        # ISO with Z or an offset: honoured as written.
        ("2026-07-15T10:05:12Z", dt.datetime(2026, 7, 15, 10, 5, 12, tzinfo=UTC)),
        ("2026-07-15 10:05:12.250Z", dt.datetime(2026, 7, 15, 10, 5, 12, 250_000, tzinfo=UTC)),
        ("2026-07-15T10:05:12+02:00", dt.datetime(2026, 7, 15, 8, 5, 12, tzinfo=UTC)),
        ("2026-07-15T10:05:12-0500", dt.datetime(2026, 7, 15, 15, 5, 12, tzinfo=UTC)),
        # ISO without a zone: Marketing Cloud's UTC-6.
        ("2026-07-15 10:05:12", dt.datetime(2026, 7, 15, 16, 5, 12, tzinfo=UTC)),
        ("2026-07-15T10:05:12.000", dt.datetime(2026, 7, 15, 16, 5, 12, tzinfo=UTC)),
    ],
)
def test_date_forms(tmp_path: Path, written: str, expected: dt.datetime) -> None:
    write(tmp_path, "Sent.csv", f"{HEAD}\n1,100,{KEY_A},,11,5,{written},Sent,0,\n")
    assert extract.read_extract(tmp_path).collect().item(0, "event_time") == expected


def test_link_ids(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Clicks.csv",
        f"{HEAD},SendURLID,URLID,URL,Alias\n"
        f"1,100,{KEY_A},,11,5,1/15/2026 1:00:00 PM,Click,0,,71,8,https://x.com/p,Logo\n"
        f"1,100,{KEY_A},,11,5,1/15/2026 1:00:01 PM,Click,0,,,9,https://x.com/q,Button\n"
        f"1,100,{KEY_A},,11,5,1/15/2026 1:00:02 PM,Click,0,,,,https://x.com/r,Footer\n",
    )
    # SendURLID first, else URLID, else none.
    assert events(tmp_path).get_column("link_id").to_list() == [71, 9, None]


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "Opens.csv", f"{HEAD}\n{OPEN_ROW}\n\n{OPEN_ROW}\n\n")
    assert extract.check_extract(tmp_path) == 2


# --- bad rows: lines, encodings, quotes, skipping ----------------------------------------------

REASON_HEAD = f"{HEAD},BounceCategory,SMTPCode,BounceReason"


def bounce(reason: str, *, job: str = "100", date: str = "1/15/2026 10:06:00 AM") -> str:
    return f'1,{job},{KEY_B},b@example.com,12,5,{date},Bounce,0,,Hard bounce,550,"{reason}"\n'


def test_line_numbers_count_quoted_line_breaks(tmp_path: Path) -> None:
    # Rows 1 and 2 hold reasons of three and two lines: the bad date is on line 7, not line 4.
    message = _bad(
        tmp_path,
        "Bounces.csv",
        f"{REASON_HEAD}\n"
        + bounce("550 mailbox\nunknown\nat host")
        + bounce("554 spam\r\nrejected")
        + bounce("ok", date="13/45/2026 10:00"),
    )
    assert message == (
        "Bounces.csv, line 7, column EventDate: '13/45/2026 10:00' is not M/D/YYYY h:mm:ss AM/PM"
    )


def test_negative_send_id(tmp_path: Path) -> None:
    message = _bad(tmp_path, "Bounces.csv", f"{REASON_HEAD}\n" + bounce("x", job="-100"))
    assert message == "Bounces.csv, line 2, column SendID: '-100' is negative"


def test_latin1_names_file_and_line(tmp_path: Path) -> None:
    text = f"{HEAD}\n{OPEN_ROW}\n1,100,{KEY_A},zoë@example.com,11,5,1/15/2026 10:00:00 AM,Open,0,\n"
    (tmp_path / "Opens.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(ExtractFormatError) as caught:
        land_events([tmp_path], tmp_path / "store")
    assert str(caught.value).startswith("Opens.csv, line 3: not UTF-8 or UTF-16 text")
    with pytest.raises(ExtractFormatError, match=r"^Opens\.csv, line 3: not UTF-8"):
        extract.read_extract(tmp_path).collect()


def test_unclosed_quote_names_the_line_and_never_the_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ierkit import cli

    rows = [bounce("fine") for _ in range(3)]
    rows.insert(1, bounce("never closed").replace('closed"', "closed"))
    write(tmp_path / "x", "Bounces.csv", f"{REASON_HEAD}\n" + "".join(rows))
    message = _bad(tmp_path / "x", "Bounces.csv", f"{REASON_HEAD}\n" + "".join(rows))
    assert message.startswith("Bounces.csv, line 3: a quoted value starts here and is never closed")
    # check prints one line on stderr, no traceback, no email address.
    assert cli.main(["check", "--extract", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 3: a quoted value" in err
    assert "@example.com" not in err


def test_skip_bad_rows_loads_the_rest_and_lists_them(tmp_path: Path) -> None:
    from ierkit import aggregate

    write(
        tmp_path / "in",
        "Bounces.csv",
        f"{REASON_HEAD}\n"
        + bounce("two\nlines")
        + bounce("bad send", job="")
        + bounce("negative", job="-7")
        + bounce("ok")
        + bounce("bad date", date="=1+1"),
    )
    out = tmp_path / "out"
    landed, written = aggregate.aggregate_extracts([tmp_path / "in"], out, skip_bad_rows=True)
    assert (landed.events_read, landed.rejected, written.iers) == (2, 3, 1)
    rejected = pl.read_csv(out / "rejected_rows.csv", infer_schema=False)
    assert rejected.rows() == [
        ("Bounces.csv", "4", "SendID", None, "is blank"),
        ("Bounces.csv", "5", "SendID", "'-7", "is negative"),
        # A value a spreadsheet would run as a formula is neutralised.
        ("Bounces.csv", "7", "EventDate", "'=1+1", "is not M/D/YYYY h:mm:ss AM/PM"),
    ]
    assert oct((out / "rejected_rows.csv").stat().st_mode & 0o777) == "0o600"


def test_without_skip_a_bad_row_writes_nothing(tmp_path: Path) -> None:
    from ierkit import aggregate

    write(tmp_path / "in", "Bounces.csv", f"{REASON_HEAD}\n" + bounce("ok") + bounce("x", job=""))
    with pytest.raises(ExtractFormatError, match="line 3, column SendID: is blank"):
        aggregate.aggregate_extracts([tmp_path / "in"], tmp_path / "out")
    assert not (tmp_path / "out" / "individual_email_results.parquet").exists()
    assert not (tmp_path / "out" / "rejected_rows.csv").exists()


# --- zips: size guard, private unpacking, cleanup after a crash --------------------------------


def test_zip_member_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "extract.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Opens.csv", opens_text() + OPEN_ROW * 1000)
    limits = extract.ZipLimits(max_member_bytes=10_000)
    with (
        pytest.raises(ExtractFormatError, match=r"Opens\.csv: [\d,]+ bytes unpacked is more"),
        extract.open_extract(archive, limits=limits),
    ):
        pass


def test_zip_bomb_ratio_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Opens.csv", opens_text() + "\n" * 2_000_000)
    limits = extract.ZipLimits(ratio_from_bytes=1_000_000)
    with (
        pytest.raises(ExtractFormatError, match="possible zip bomb"),
        extract.open_extract(archive, limits=limits),
    ):
        pass


def test_unpacking_counts_the_bytes_written_not_only_the_declared_size(tmp_path: Path) -> None:
    import io

    from ierkit.extract import _encoding

    # What a member yields is counted as it is copied: past the bound, the copy stops.
    stream = io.BytesIO(b"x" * 20_000)
    with pytest.raises(ExtractFormatError, match="larger than 5,000 bytes unpacked; refused"):
        _encoding.private_copy(stream, tmp_path / "out.csv", name="Opens.csv", max_bytes=5_000)
    assert stream.tell() <= _encoding.BUFFER


def test_unpacked_files_are_private(tmp_path: Path) -> None:
    archive = tmp_path / "extract.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Opens.csv", opens_text())
    with extract.open_extract(archive) as files:
        assert oct(files[0].path.stat().st_mode & 0o777) == "0o600"
        assert oct(files[0].path.parent.stat().st_mode & 0o777) == "0o700"
        folder = files[0].path.parent
    assert not folder.exists()


def test_unpacked_extract_of_a_killed_process_is_removed_next_start(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    archive = tmp_path / "extract.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("Opens.csv", opens_text())
    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_root)}
    script = (
        "import sys, time\n"
        "from ierkit import extract\n"
        "with extract.open_extract(sys.argv[1]) as files:\n"
        "    print(files[0].path, flush=True)\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(archive)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    unpacked = Path(child.stdout.readline().strip())
    assert unpacked.is_file() and unpacked.parent.parent == tmp_root
    # A live owner's folder is left alone.
    assert extract.sweep_stale(tmp_root) == []
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=20)
    assert unpacked.exists()  # the kill left it behind, email addresses and all
    old = tempfile.tempdir
    tempfile.tempdir = str(tmp_root)
    try:
        with extract.open_extract(archive):  # the next start sweeps it
            assert not unpacked.parent.exists()
    finally:
        tempfile.tempdir = old
    assert list(tmp_root.iterdir()) == []
