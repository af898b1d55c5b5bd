"""Tests for ierkit.present: each formatter on small inline frames, headlines from the numbers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from ierkit import present
from ierkit.present import _format

LOOK = present.Look(timezone="America/New_York", instance_url="https://acme.my.salesforce.com")
CONTACT = "003Dn00003GyWg0IAF"
USER = "005Dn00003XvPWDIA3"
LEAD = "00QDn00000AbCdEMAV"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.026312, "2.6%"), (0.5, "50.0%"), (0.004, "0.40%"), (0.0, "0.0%"), (None, "")],
)
def test_rate_as_percentage(value: float | None, expected: str) -> None:
    assert present.percent(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(54.421875, "54.4 MB"), (2048.0, "2.0 GB"), (0.05, "51 KB"), (None, ""), (float("nan"), "")],
)
def test_size_with_unit(value: float | None, expected: str) -> None:
    assert present.size_mb(value) == expected


def test_time_in_a_named_zone() -> None:
    instant = dt.datetime(2026, 11, 20, 15, 5, tzinfo=dt.UTC)
    assert present.when(instant, "America/New_York") == "20 Nov 2026 10:05"
    assert present.when(instant, "Europe/London") == "20 Nov 2026 15:05"
    with pytest.raises(present.PresentError, match="'Mars/Base' is not an IANA zone"):
        present.Look(timezone="Mars/Base")


def test_record_link_is_well_formed_and_refuses_what_is_not_an_id() -> None:
    assert (
        present.record_url("https://acme.my.salesforce.com/", "Contact", CONTACT)
        == f"https://acme.my.salesforce.com/lightning/r/Contact/{CONTACT}/view"
    )
    with pytest.raises(present.PresentError, match="not a 15- or 18-character"):
        present.record_url("https://acme.my.salesforce.com", "Contact", "../../evil")
    with pytest.raises(present.PresentError, match="is not like https://"):
        present.Look(instance_url="javascript:alert(1)")


def test_prepare_formats_each_column_and_hides_ids() -> None:
    frame = pl.DataFrame(
        {
            "owner_id": [USER, USER],
            "owner_name": ["Avery Collins", "Avery Collins"],
            "recipient_id": [CONTACT, None],
            "recipient_type": ["Contact", "Lead"],
            "recipient_name": ["Sandra Thompson", "No Id"],
            "unique_clicks": [1234, None],
            "click_rate_over_delivered": [0.026312, None],
            "mb": [54.421875, 2048.0],
            "clicked_at": [dt.datetime(2026, 11, 20, 15, 5, tzinfo=dt.UTC), None],
            "followed_up": [True, False],
            "links": [["Pricing", "Events"], []],
        }
    )
    cells = present.prepare(frame, LOOK)
    assert cells.frame.columns == [
        "Owner",
        "Record",
        "Person",
        "Unique clicks",
        "Click rate (of delivered)",
        "Storage",
        "Last click (America/New_York)",
        "Followed up",
        "Links clicked",
    ]
    assert cells.frame.row(0) == (
        "Avery Collins",
        "Contact",
        "Sandra Thompson",
        "1,234",
        "2.6%",
        "54.4 MB",
        "20 Nov 2026 10:05",
        present.YES,
        "Pricing; Events",
    )
    # Nulls are blank, never "null" or "None".
    assert cells.frame.row(1)[3:7] == ("", "", "2.0 GB", "")
    assert cells.links["Person"] == [
        f"https://acme.my.salesforce.com/lightning/r/Contact/{CONTACT}/view",
        None,
    ]
    assert cells.links["Owner"][0] == (
        f"https://acme.my.salesforce.com/lightning/r/User/{USER}/view"
    )
    # No instance URL: names, no links.
    assert present.prepare(frame, present.Look()).links == {}


def test_html_table_links_names_cuts_long_tables_and_writes_the_rest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = pl.DataFrame(
        {
            "recipient_id": [CONTACT] * 30,
            "recipient_type": ["Contact"] * 30,
            "recipient_name": [f"Person {i}" for i in range(30)],
            "company": ['=HYPERLINK("x")'] + ["Acme"] * 29,
        }
    )
    look = present.Look(instance_url="https://acme.my.salesforce.com", rows=5, csv_dir=tmp_path)
    html = present.html_table(frame, look, name="people")
    assert html.count("/lightning/r/Contact/") == 5
    assert "The first 5 of 30 rows; 25 more in" in html and 'href="people.csv"' in html
    assert CONTACT not in html.replace(f"/Contact/{CONTACT}/view", "")  # no Id as text
    assert "shape:" not in html and "<script" not in html
    saved = pl.read_csv(tmp_path / "people.csv")
    assert saved.height == 30 and saved["Company"][0].startswith("'=")
    assert present.html_table(frame, look, name="people") == html  # stable ids, stable page


def test_text_table_aligns_columns() -> None:
    frame = pl.DataFrame({"recipient_name": ["Al", "Beatrice"], "total_clicks": [3, 1200]})
    assert present.text_table(frame, present.Look()).splitlines() == [
        "Person    Clicks",
        "--------  ------",
        "Al             3",
        "Beatrice   1,200",
    ]


def test_engagement_headline_is_written_from_the_numbers() -> None:
    def rows(owners: list[str], followed: list[bool]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "owner_name": owners,
                "recipient_id": [f"r{i}" for i in range(len(owners))],
                "followed_up": followed,
            }
        )

    now = rows(["Avery Collins"] * 3 + ["Bo Best"], [False, False, False, True])
    before = rows(["Bo Best"] * 2, [False, True])
    headlines = present.headlines.engagement(now, before, day=dt.date(2026, 11, 20), window_days=7)
    assert headlines.sentences[:2] == (
        "4 people clicked in the 7 days to 20 Nov; 3 have not been followed up.",
        "Avery Collins has the most, 3.",
    )
    figures = {f.label: (f.value, f.change) for f in headlines.figures}
    assert figures["People who clicked"] == ("4", "+2 vs last week")
    assert figures["Not followed up"] == ("3", "+2 vs last week")
    assert figures["Followed up"][0] == "25.0%"
    assert 3 <= len(headlines.figures) <= 5
    assert "Avery Collins" in headlines.html() and "<script" not in headlines.html()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("no_response_share", "62.0%"), ("coverage", "62.0%"), ("mb_per_month", "0.6 MB")],
)
def test_shares_and_rates_read_as_percentages(name: str, expected: str) -> None:
    assert _format.formatter(name, pl.Float64(), LOOK)(0.62) == expected


def test_sync_health_reasons_read_in_words() -> None:
    from ierkit import reasons

    show = _format.formatter("main_reason", pl.String(), LOOK)
    assert show(reasons.TRACKING_OFF) == "Tracking off for the send"
    assert show(None) == ""
    assert set(reasons.LABEL) >= set(reasons.ALL)  # every reason has its words


def test_a_person_links_to_the_right_object_from_the_id_when_no_column_says() -> None:
    frame = pl.DataFrame({"recipient_name": ["Ann", "Bo"], "recipient_id": [CONTACT, LEAD]})
    cells = present.prepare(frame, LOOK)
    assert cells.links["Person"] == [
        f"https://acme.my.salesforce.com/lightning/r/Contact/{CONTACT}/view",
        f"https://acme.my.salesforce.com/lightning/r/Lead/{LEAD}/view",
    ]
