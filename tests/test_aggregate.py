"""Tests for ierkit.aggregate: events to IERs and link details, incremental merges, the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from ierkit import aggregate, cli, extract, ids, reasons, schema
from ierkit.orgs import LocalOrg
from ierkit.store import events_dir

UTC = dt.UTC
CONTACT = ids.to_18("0035g00000AbCdE")
CONTACT_2 = ids.to_18("0035g00000ZzYyX")
LEAD = ids.to_18("00Q5g00000XyZaB")
T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def ev(
    kind: str,
    minutes: float,
    key: str | None = CONTACT,
    *,
    job: int = 100,
    batch: int = 0,
    sid: int = 11,
    url: str | None = None,
    name: str | None = None,
    category: str | None = None,
    link: int | None = None,
) -> dict[str, object]:
    return {
        "job_id": job,
        "batch_id": batch,
        "subscriber_key": key,
        "subscriber_id": sid,
        "list_id": 5,
        "email": None,
        "event_type": kind,
        "event_time": at(minutes),
        "url": url,
        "link_name": name,
        "bounce_category": category,
        "is_unique": None,
        "link_id": link,
    }


def frame(*rows: dict[str, object]) -> pl.LazyFrame:
    return pl.LazyFrame(list(rows), schema=extract.EVENT_SCHEMA)


def iers(*rows: dict[str, object]) -> pl.DataFrame:
    return (
        aggregate.aggregate_iers(frame(*rows))
        .collect()
        .sort("job_id", "batch_id", "subscriber_key", "subscriber_id", nulls_last=True)
    )


def one(*rows: dict[str, object]) -> dict[str, object]:
    result = iers(*rows)
    assert result.height == 1
    return result.row(0, named=True)


def test_one_ier_per_recipient_per_send_and_batch() -> None:
    result = iers(
        ev("Sent", 0),
        ev("Sent", 0, CONTACT_2, sid=12),
        ev("Sent", 60, batch=1),
        ev("Sent", 0, job=101),
        ev("Open", 5),
    )
    assert result.select("job_id", "batch_id", "subscriber_key").rows() == [
        (100, 0, CONTACT),
        (100, 0, CONTACT_2),
        (100, 1, CONTACT),
        (101, 0, CONTACT),
    ]
    assert result.get_column("id").to_list() == [
        f"100-0-{CONTACT}",
        f"100-0-{CONTACT_2}",
        f"100-1-{CONTACT}",
        f"101-0-{CONTACT}",
    ]


def test_sent_only() -> None:
    row = one(ev("Sent", 0))
    assert row["date_sent"] == at(0)
    assert row["created_date"] == at(0)
    assert (row["opened"], row["open_count"], row["date_opened"], row["last_opened"]) == (
        False,
        0,
        None,
        None,
    )
    assert (row["total_clicks"], row["unique_clicks"], row["clicked"]) == (0, 0, False)
    assert (row["hard_bounce"], row["soft_bounce"], row["unsubscribed"]) == (False, False, False)
    assert row["has_sent_row"] is True
    assert row["tracking_as_of"] == at(0)


def test_opens_first_last_and_count() -> None:
    row = one(ev("Sent", 0), ev("Open", 30), ev("Open", 10), ev("Open", 90))
    assert (row["opened"], row["open_count"]) == (True, 3)
    assert row["date_opened"] == at(10)
    assert row["last_opened"] == at(90)
    assert row["tracking_as_of"] == at(90)


def test_click_implies_open_when_the_pixel_was_blocked() -> None:
    row = one(ev("Sent", 0), ev("Click", 20, url="https://x/a"), ev("Click", 40, url="https://x/a"))
    assert row["opened"] is True
    assert row["date_opened"] == at(20)
    assert (row["open_count"], row["last_opened"]) == (1, at(20))


def test_click_before_the_tracked_open_sets_date_opened() -> None:
    row = one(ev("Sent", 0), ev("Click", 20, url="https://x/a"), ev("Open", 50))
    assert row["date_opened"] == at(20)
    assert (row["open_count"], row["last_opened"]) == (1, at(50))


def test_total_and_unique_clicks() -> None:
    row = one(
        ev("Sent", 0),
        ev("Open", 5),
        ev("Click", 6, url="https://x/a"),
        ev("Click", 7, url="https://x/b"),
        ev("Click", 8, url="https://x/a"),
    )
    assert (row["total_clicks"], row["unique_clicks"], row["clicked"]) == (3, 2, True)


@pytest.mark.parametrize(
    ("category", "hard", "soft"),
    [
        ("Hard", True, False),
        ("Soft", False, True),
        ("Block", False, True),
        ("Technical", False, True),
        ("Unknown", False, True),
    ],
)
def test_bounce_categories(category: str, hard: bool, soft: bool) -> None:
    row = one(ev("Sent", 0), ev("Bounce", 2, category=category))
    assert (row["hard_bounce"], row["soft_bounce"]) == (hard, soft)
    assert row["date_bounced"] == at(2)


def test_first_bounce_date_and_hard_wins() -> None:
    row = one(ev("Sent", 0), ev("Bounce", 9, category="Hard"), ev("Bounce", 3, category="Soft"))
    assert (row["hard_bounce"], row["soft_bounce"], row["date_bounced"]) == (True, False, at(3))


def test_unsubscribe() -> None:
    row = one(ev("Sent", 0), ev("Open", 5), ev("Unsub", 7), ev("Unsub", 9))
    assert (row["unsubscribed"], row["date_unsubscribed"]) == (True, at(7))


def test_events_without_sent_row_are_kept_and_flagged() -> None:
    # A subscriber deleted in Marketing Cloud: blank key, no Sent row; two of them in one send.
    result = iers(
        ev("Sent", 0),
        ev("Open", 5, None, sid=21),
        ev("Click", 6, None, sid=21, url="https://x/a"),
        ev("Open", 8, None, sid=22),
    )
    assert result.select("subscriber_key", "subscriber_id", "has_sent_row", "date_sent").rows() == [
        (CONTACT, 11, True, at(0)),
        (None, 21, False, None),
        (None, 22, False, None),
    ]
    assert result.get_column("id").to_list()[1:] == ["100-0-#21", "100-0-#22"]
    assert result.get_column("total_clicks").to_list() == [0, 1, 0]


@pytest.mark.parametrize(
    ("key", "contact", "lead"),
    [
        (CONTACT, CONTACT, None),
        (LEAD, None, LEAD),
        (CONTACT[:15], None, None),  # 15-character Id: Connect writes no IER for it
        (CONTACT[:15] + "AAA", None, None),  # wrong case suffix
        (ids.to_18("0015g00000AbCdE"), None, None),  # an Account Id
        ("someone@example.com", None, None),
    ],
)
def test_contact_and_lead_from_subscriber_key(
    key: str, contact: str | None, lead: str | None
) -> None:
    row = one(ev("Sent", 0, key))
    assert (row["contact_id"], row["lead_id"], row["subscriber_key"]) == (contact, lead, key)


def test_every_character_case_counts_in_the_id_check() -> None:
    # Each of the 15 characters has its own bit in the suffix: flipping the case of any letter
    # without fixing the suffix makes the key invalid; with the right suffix it is valid again.
    base = "003aBcDeFgHiJkL"
    keys = []
    for i in range(3, 15):
        flipped = base[:i] + base[i].swapcase() + base[i + 1 :]
        keys += [flipped + ids.to_18(base)[15:], ids.to_18(flipped)]
    result = aggregate.with_person_ids(pl.LazyFrame({"subscriber_key": keys})).collect()
    valid = result.get_column("contact_id").is_not_null().to_list()
    assert valid == [False, True] * 12
    assert result.get_column("lead_id").null_count() == len(keys)


def test_ier_frame_validates_against_the_schema() -> None:
    result = iers(ev("Sent", 0), ev("Sent", 0, LEAD, sid=12), ev("Open", 3, None, sid=9))
    validated = schema.validate("individual_email_results", result)
    assert validated.columns == schema.table("individual_email_results").column_names
    assert result.columns[-1] == "has_sent_row"


def test_send_details_from_send_jobs() -> None:
    jobs = pl.LazyFrame(
        {
            "job_id": [100],
            "email_name": ["News - March"],
            "from_name": ["Acme"],
            "from_address": ["n@acme.test"],
            "subject_line": ["Hi"],
        }
    )
    row = (
        aggregate.aggregate_iers(frame(ev("Sent", 0)), send_jobs=jobs).collect().row(0, named=True)
    )
    assert (row["name"], row["from_name"], row["from_address"], row["subject_line"]) == (
        "News - March",
        "Acme",
        "n@acme.test",
        "Hi",
    )


def test_link_details_one_row_per_ier_per_link() -> None:
    links = (
        aggregate.aggregate_links(
            frame(
                ev("Sent", 0),
                ev("Click", 6, url="https://x/a", name="Pricing"),
                ev("Click", 9, url="https://x/a", name="Pricing"),
                ev("Click", 7, url="https://x/b", name="Blog"),
                ev("Click", 8, CONTACT_2, sid=12, url="https://x/a", name="Pricing"),
            )
        )
        .collect()
        .sort("individual_email_result_id", "link_url")
    )
    schema.validate("individual_links", links)
    assert links.select(
        "individual_email_result_id", "link_url", "link_name", "total_clicks", "last_clicked"
    ).rows() == [
        (f"100-0-{CONTACT}", "https://x/a", "Pricing", 2, at(9)),
        (f"100-0-{CONTACT}", "https://x/b", "Blog", 1, at(7)),
        (f"100-0-{CONTACT_2}", "https://x/a", "Pricing", 1, at(8)),
    ]
    assert links.get_column("id").to_list()[0] == f"100-0-{CONTACT}|https://x/a"
    assert links.get_column("exact_target_link_id").to_list() == [None, None, None]


LOGO, BUTTON = 71, 72  # SendURLIDs of two links to the same URL in one email


@pytest.mark.parametrize(
    ("clicks", "expected_links", "unique_clicks"),
    [
        # Two links to one URL (a logo and a button): two link details, two links clicked.
        (
            [("https://x/a", LOGO, 6), ("https://x/a", BUTTON, 7), ("https://x/a", LOGO, 9)],
            [("https://x/a", "71", 2, at(9)), ("https://x/a", "72", 1, at(7))],
            2,
        ),
        # One link whose URL varies per click (tracking parameters): one link detail by its id.
        (
            [("https://x/a?c=1", LOGO, 6), ("https://x/a?c=2", LOGO, 8)],
            [("https://x/a?c=2", "71", 2, at(8))],
            1,
        ),
        # No ids (data-view exports): links by URL, as before.
        (
            [("https://x/a", None, 6), ("https://x/a", None, 7), ("https://x/b", None, 8)],
            [("https://x/a", None, 2, at(7)), ("https://x/b", None, 1, at(8))],
            2,
        ),
        # An id and a URL without one are two links.
        (
            [("https://x/a", LOGO, 6), ("https://x/a", None, 7)],
            [("https://x/a", "71", 1, at(6)), ("https://x/a", None, 1, at(7))],
            2,
        ),
    ],
)
def test_links_by_marketing_cloud_link_id(
    clicks: list[tuple[str, int | None, float]],
    expected_links: list[tuple[str, str | None, int, dt.datetime]],
    unique_clicks: int,
) -> None:
    events = frame(ev("Sent", 0), *(ev("Click", t, url=url, link=link) for url, link, t in clicks))
    links = aggregate.aggregate_links(events).collect()
    schema.validate("individual_links", links)
    assert (
        links.select("link_url", "exact_target_link_id", "total_clicks", "last_clicked").rows()
        == expected_links
    )
    assert links.get_column("id").n_unique() == links.height  # the unique external id
    ier = aggregate.aggregate_iers(events).collect().row(0, named=True)
    assert (ier["unique_clicks"], ier["total_clicks"]) == (unique_clicks, len(clicks))


def test_link_ids_from_an_extract_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Clicks.csv").write_text(
        f"{HEAD},SendURLID,URLID,URL,Alias\n"
        f"1,100,{CONTACT},,11,5,{mc(6)},Click,0,,71,8,https://x/a,Logo\n"
        f"1,100,{CONTACT},,11,5,{mc(7)},Click,0,,72,8,https://x/a,Button\n"
    )
    aggregate.aggregate_extracts([tmp_path / "in"], tmp_path / "out")
    _, links = tables(tmp_path / "out")
    assert links.select("link_name", "exact_target_link_id").rows() == [
        ("Logo", "71"),
        ("Button", "72"),
    ]


# --- incremental merges through extract files -----------------------------------------------

HEAD = (
    "ClientID,SendID,SubscriberKey,EmailAddress,SubscriberID,ListID,EventDate,EventType,"
    "BatchID,TriggeredSendExternalKey"
)


def mc(minutes: float) -> str:
    """A time as Marketing Cloud writes it (UTC-6)."""
    local = (at(minutes) - dt.timedelta(hours=6)).replace(tzinfo=None)
    return f"{local.month}/{local.day}/{local.year} {local:%I:%M:%S %p}".replace(" 0", " ")


def write_extract(folder: Path, days: range) -> Path:
    """An extract covering whole days (0 = send day) of one send to two recipients.

    Day d holds: the sends (day 0), one open by CONTACT each day, a click by CONTACT on day 1
    and 3, an open by LEAD on day 2.
    """
    sent, opens, clicks = [], [], []
    for day in days:
        minute = day * 1440
        if day == 0:
            sent += [
                f"1,100,{CONTACT},,11,5,{mc(0)},Sent,0,",
                f"1,100,{LEAD},,12,5,{mc(0)},Sent,0,",
            ]
        opens.append(f"1,100,{CONTACT},,11,5,{mc(minute + 30)},Open,0,")
        if day in (1, 3):
            clicks.append(f"1,100,{CONTACT},,11,5,{mc(minute + 31)},Click,0,,https://x/{day}")
        if day == 2:
            opens.append(f"1,100,{LEAD},,12,5,{mc(minute + 45)},Open,0,")
    folder.mkdir(parents=True)
    (folder / "Sent.csv").write_text("\n".join([HEAD, *sent]) + "\n")
    (folder / "Opens.csv").write_text("\n".join([HEAD, *opens]) + "\n")
    (folder / "Clicks.csv").write_text("\n".join([HEAD + ",URL", *clicks]) + "\n")
    return folder


def tables(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    org = LocalOrg(out)
    return (
        org.table("individual_email_results").collect().sort("id"),
        org.table("individual_links").collect().sort("id"),
    )


def test_next_days_extract_updates_counts_and_dates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aggregate.aggregate_extracts([write_extract(tmp_path / "d0", range(0, 2))], out)
    first, _ = tables(out)
    contact = first.filter(pl.col("contact_id") == CONTACT).row(0, named=True)
    assert (contact["open_count"], contact["total_clicks"], contact["last_opened"]) == (
        2,
        1,
        at(1440 + 30),
    )
    aggregate.aggregate_extracts([write_extract(tmp_path / "d2", range(2, 4))], out)
    after, links = tables(out)
    contact = after.filter(pl.col("contact_id") == CONTACT).row(0, named=True)
    lead = after.filter(pl.col("lead_id") == LEAD).row(0, named=True)
    assert (contact["open_count"], contact["total_clicks"], contact["unique_clicks"]) == (4, 2, 2)
    assert (contact["date_opened"], contact["last_opened"]) == (at(30), at(3 * 1440 + 30))
    assert contact["date_sent"] == at(0)
    assert (lead["opened"], lead["date_opened"]) == (True, at(2 * 1440 + 45))
    assert links.height == 2


def test_same_extract_twice_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder = write_extract(tmp_path / "e", range(0, 4))
    aggregate.aggregate_extracts([folder], out)
    once = tables(out)
    aggregate.aggregate_extracts([folder], out)
    aggregate.aggregate_extracts([folder, folder], out)
    twice = tables(out)
    assert once[0].equals(twice[0]) and once[1].equals(twice[1])


def test_overlapping_windows_never_double_count(tmp_path: Path) -> None:
    # Rolling extracts: days 0-2, 1-3, 2-4 applied daily give what one extract of 0-4 gives.
    rolling = tmp_path / "rolling"
    for start in range(3):
        aggregate.aggregate_extracts(
            [write_extract(tmp_path / f"w{start}", range(start, start + 3))], rolling
        )
    whole = tmp_path / "whole"
    aggregate.aggregate_extracts([write_extract(tmp_path / "all", range(0, 5))], whole)
    rolled, rolled_links = tables(rolling)
    expected, expected_links = tables(whole)
    assert rolled.equals(expected) and rolled_links.equals(expected_links)
    contact = rolled.filter(pl.col("contact_id") == CONTACT).row(0, named=True)
    assert (contact["open_count"], contact["total_clicks"]) == (5, 2)


def test_small_groups_give_the_same_tables(tmp_path: Path) -> None:
    # Memory is bounded by processing a few sends at a time: the answer must not change.
    folder = tmp_path / "x"
    folder.mkdir()
    rows = [f"1,{job},{CONTACT},,11,5,{mc(job)},Sent,0," for job in range(100, 110)]
    (folder / "Sent.csv").write_text("\n".join([HEAD, *rows]) + "\n")
    aggregate.aggregate_extracts([folder], tmp_path / "big")
    aggregate.aggregate_extracts([folder], tmp_path / "small", limit=2)
    assert tables(tmp_path / "big")[0].equals(tables(tmp_path / "small")[0])
    assert tables(tmp_path / "small")[0].height == 10


# --- the command line -----------------------------------------------------------------------


def test_cli_aggregate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_extract(tmp_path / "e", range(0, 4))
    assert cli.main(["aggregate", str(folder), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 individual email results (0 without a Sent row) and 2 link details" in printed
    assert (tmp_path / "out" / "individual_email_results.parquet").is_file()
    assert (tmp_path / "out" / "individual_links.parquet").is_file()


def test_cli_malformed_extract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "Opens.csv").write_text(
        f"{HEAD}\n1,100,{CONTACT},,11,5,13/1/2026 1:00:00 PM,Open,0,\n"
    )
    assert cli.main(["aggregate", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert "Opens.csv, line 2, column EventDate: '13/1/2026 1:00:00 PM' is not" in (
        capsys.readouterr().err
    )


# --- end to end on the demo org --------------------------------------------------------------


def test_demo_extract_matches_the_orgs_healthy_iers(demo_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    aggregate.aggregate_extracts([demo_path / "tracking_extract.zip"], out)
    truth = pl.scan_parquet(demo_path / "ground_truth.parquet").filter(
        pl.col("reason") == reasons.HEALTHY, pl.col("has_ier")
    )
    columns = [
        "date_sent",
        "opened",
        "date_opened",
        "total_clicks",
        "unique_clicks",
        "hard_bounce",
        "soft_bounce",
        "date_bounced",
        "unsubscribed",
        "date_unsubscribed",
    ]
    org = LocalOrg(demo_path).table("individual_email_results").rename({"id": "ier_id"})
    expected = (
        truth.join(org, on="ier_id")
        .select("job_id", "batch_id", "subscriber_key", *columns)
        .collect()
    )
    mine = LocalOrg(out).table("individual_email_results")
    compared = (
        expected.lazy()
        .join(
            mine.select("job_id", "batch_id", "subscriber_key", *columns),
            on=["job_id", "batch_id", "subscriber_key"],
            how="left",
            suffix="_mine",
        )
        .collect()
    )
    assert expected.height > 100_000
    for column in columns:
        differ = compared.filter(pl.col(column).ne_missing(pl.col(f"{column}_mine")))
        assert differ.height == 0, f"{column}: {differ.head(3)}"


def test_output_tables_are_sorted_by_ier_key(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aggregate.aggregate_extracts([write_extract(tmp_path / "e", range(0, 4))], out)
    ier_table = pl.read_parquet(out / "individual_email_results.parquet")
    key = ["job_id", "batch_id", "subscriber_key", "subscriber_id"]
    assert ier_table.equals(ier_table.sort(key, nulls_last=True))
    assert ier_table.get_column("subscriber_key").to_list() == sorted([CONTACT, LEAD])
    link_table = pl.read_parquet(out / "individual_links.parquet")
    assert link_table.get_column("link_url").to_list() == ["https://x/1", "https://x/3"]


def test_untouched_sends_are_copied_and_missing_ones_recomputed(tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    rows = [f"1,{job},{CONTACT},,11,5,{mc(job)},Sent,0," for job in (100, 101, 102)]
    (folder / "Sent.csv").write_text("\n".join([HEAD, *rows]) + "\n")
    out = tmp_path / "out"
    aggregate.aggregate_extracts([folder], out)
    store = out / "event_store"
    before, _ = tables(out)
    # Only job 101 recomputed: 100 and 102 come from the previous output, in key order.
    result = aggregate.aggregate_store(store, out, job_ids=[101])
    after, _ = tables(out)
    assert result.job_ids == (101,) and after.equals(before)
    written = pl.read_parquet(out / "individual_email_results.parquet")
    assert written.get_column("job_id").to_list() == [100, 101, 102]
    # Without a previous output there is nothing to copy: every send is recomputed.
    (out / "individual_email_results.parquet").unlink()
    result = aggregate.aggregate_store(store, out, job_ids=[101])
    assert result.job_ids == (100, 101, 102) and tables(out)[0].equals(before)


@pytest.mark.parametrize(
    ("fresh", "expected"),
    [
        ({1, 2, 3, 4}, [(True, [1, 2, 3, 4])]),
        ({2}, [(False, [1]), (True, [2]), (False, [3, 4])]),
        ({1, 4}, [(True, [1]), (False, [2, 3]), (True, [4])]),
        (set(), [(False, [1, 2, 3, 4])]),
    ],
)
def test_segments_alternate_recomputed_and_copied_runs(
    fresh: set[int], expected: list[tuple[bool, list[int]]]
) -> None:
    assert aggregate._segments([1, 2, 3, 4], fresh) == expected


def test_ier_cut_by_a_chunk_end_is_counted_once(tmp_path: Path) -> None:
    # Chunks of 2 events: every IER with more events spans chunks, and must come out whole.
    folder = write_extract(tmp_path / "e", range(0, 4))
    aggregate.aggregate_extracts([folder], tmp_path / "one")
    aggregate.aggregate_extracts([folder], tmp_path / "small", limit=2)
    for one, small in zip(tables(tmp_path / "one"), tables(tmp_path / "small"), strict=True):
        assert small.equals(one)
    contact = tables(tmp_path / "small")[0].filter(pl.col("contact_id") == CONTACT)
    assert contact.height == 1


def test_rollup_refuses_events_out_of_store_order() -> None:
    rows = frame(ev("Sent", 0), ev("Open", 5), ev("Open", 3)).collect()
    with pytest.raises(aggregate.StoreOrderError, match="event 2 "):
        aggregate._rollup_runs(rows)
    other = frame(ev("Sent", 0, CONTACT_2), ev("Sent", 0, CONTACT)).collect()
    with pytest.raises(aggregate.StoreOrderError, match="IER 1 "):
        aggregate._rollup_runs(other)
    # An IER split in two runs: its key goes down after another key.
    split = frame(ev("Sent", 0, CONTACT), ev("Sent", 0, LEAD), ev("Open", 9, CONTACT)).collect()
    with pytest.raises(aggregate.StoreOrderError, match="IER 2 "):
        aggregate._rollup_runs(split)
    blank_last = frame(ev("Sent", 0, CONTACT), ev("Open", 0, None, sid=3)).collect()
    assert aggregate._rollup_runs(blank_last)[0].height == 2
    # Across chunks: the first IER of a chunk must come after the last IER of the one before.
    later = frame(ev("Sent", 0, CONTACT_2)).collect().select(aggregate.IER_KEY)
    with pytest.raises(aggregate.StoreOrderError, match="IER 0 "):
        aggregate._rollup_runs(frame(ev("Sent", 0, CONTACT)).collect(), later)


def test_store_out_of_order_is_sorted_and_gives_the_same_tables(tmp_path: Path) -> None:
    folder = write_extract(tmp_path / "e", range(0, 4))
    out = tmp_path / "out"
    aggregate.aggregate_extracts([folder], out)
    before = tables(out)
    # A send's folder rewritten in reverse (as a tool appending files might leave it).
    store = out / "event_store"
    for job_folder in events_dir(store).iterdir():
        for file in job_folder.glob("*.parquet"):
            pl.read_parquet(file).reverse().write_parquet(file)
    result = aggregate.aggregate_store(store, out)
    assert result.resorted
    for again, first in zip(tables(out), before, strict=True):
        assert again.equals(first)
    assert not aggregate.aggregate_store(store, out).resorted
