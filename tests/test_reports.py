"""Tests for ierkit.reports: each report on small inline org data whose answer is known."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from ierkit import reports
from ierkit.orgs import LocalOrg
from ierkit.reports import ReportError, ReportTables
from ierkit.reports._tables import _TABLE_FIELDS, _conform

AS_OF = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def ago(days: float) -> dt.datetime:
    return AS_OF - days * DAY


#: The default send date of a test IER.
TEN_DAYS_AGO = ago(10)


USERS = pl.DataFrame(
    {
        "id": ["005A", "005B"],
        "name": ["Alice Rep", "Bob Rep"],
        "email": ["alice@example.com", "bob@example.com"],
    }
)
CONTACTS = pl.DataFrame(
    {
        "id": ["003C1", "003C2", "003C3", "003C4"],
        "first_name": ["Ann", "Carl", "Dee", None],
        "last_name": ["Archer", "Cole", "Dunn", "Evans"],
        "email": ["ann@a.example", "carl@b.example", "dee@c.example", "evans@d.example"],
        "company": ["Acme", "Beta", "Gamma", "Delta"],
        "industry": ["Technology", "Finance", None, "Finance"],
        "owner_id": ["005A", "005B", "005A", "005X"],  # 005X: not in users
    }
)
LEADS = pl.DataFrame(
    {
        "id": ["00QL1"],
        "first_name": ["Lee"],
        "last_name": ["Lane"],
        "company": ["Lane Ltd"],
        "industry": ["Technology"],
        "owner_id": ["005B"],
    }
)
CAMPAIGNS = pl.DataFrame(
    {
        "id": ["701N", "701S"],
        "name": ["Newsletter 2026", "Q4 Outreach"],
        "type": ["Newsletter", "Sales Outreach"],
    }
)
EMAIL_SENDS = pl.DataFrame(
    {
        "id": ["a0SN", "a0SS"],
        "campaign_id": ["701N", "701S"],
        "email_name": ["Monthly Newsletter - November", "Sales Outreach - Pricing"],
        "subject_line": ["November news", "Our new prices"],
        "date_sent": [ago(10), ago(2)],
    }
)
TRIGGERED_SENDS = pl.DataFrame({"id": ["a0TW"], "name": ["Welcome Email"]})


def ier(
    ier_id: str,
    *,
    contact: str | None = None,
    lead: str | None = None,
    send: str | None = "a0SN",
    triggered: str | None = None,
    name: str = "Monthly Newsletter - November",
    sent: dt.datetime = TEN_DAYS_AGO,
    opened: bool = False,
    clicks: int = 0,
    hard: bool = False,
    soft: bool = False,
    unsub: bool = False,
    tracking_as_of: dt.datetime | None = None,
) -> dict:
    return {
        "id": ier_id,
        "name": name,
        "contact_id": contact,
        "lead_id": lead,
        "email_send_id": None if triggered else send,
        "triggered_send_id": triggered,
        "date_sent": sent,
        "opened": opened,
        "date_opened": sent + dt.timedelta(hours=1) if opened else None,
        "unique_clicks": clicks,
        "total_clicks": clicks,
        "clicked": clicks > 0,
        "hard_bounce": hard,
        "soft_bounce": soft,
        "date_bounced": sent if (hard or soft) else None,
        "unsubscribed": unsub,
        "date_unsubscribed": sent + dt.timedelta(hours=2) if unsub else None,
        "tracking_as_of": tracking_as_of or sent + dt.timedelta(hours=3),
    }


def link(link_id: str, ier_id: str, name: str, url: str, clicked: dt.datetime, n: int = 1) -> dict:
    return {
        "id": link_id,
        "individual_email_result_id": ier_id,
        "link_name": name,
        "link_url": url,
        "last_clicked": clicked,
        "total_clicks": n,
    }


def task(task_id: str, who: str, created: dt.datetime) -> dict:
    return {"id": task_id, "who_id": who, "subject": "Follow up", "created_date": created}


def tables(iers: list[dict], links: list[dict] = (), tasks: list[dict] = ()) -> ReportTables:
    link_schema = {
        "id": pl.String,
        "individual_email_result_id": pl.String,
        "link_name": pl.String,
        "link_url": pl.String,
        "last_clicked": pl.Datetime("us", "UTC"),
        "total_clicks": pl.Int32,
    }
    task_schema = {
        "id": pl.String,
        "who_id": pl.String,
        "subject": pl.String,
        "created_date": pl.Datetime("us", "UTC"),
    }
    return ReportTables.of(
        iers=pl.DataFrame(iers),
        links=pl.DataFrame(list(links), schema=link_schema),
        tasks=pl.DataFrame(list(tasks), schema=task_schema),
        contacts=CONTACTS,
        leads=LEADS,
        users=USERS,
        campaigns=CAMPAIGNS,
        email_sends=EMAIL_SENDS,
        triggered_sends=TRIGGERED_SENDS,
    )


# --- engagement worklist -----------------------------------------------------------------------

SALES = {"send": "a0SS", "name": "Sales Outreach - Pricing", "sent": ago(2)}
WELCOME = {"triggered": "a0TW", "name": "Welcome Email - Day 1", "sent": ago(9)}


def worklist_tables() -> ReportTables:
    return tables(
        [
            ier("a0RA", contact="003C1", opened=True, clicks=1),  # click 8 days ago: out
            ier("a0RB", contact="003C2", opened=True, clicks=1),  # click 1 day ago: in
            # No link rows: tracking_as_of (2 days ago) stands in for the click time.
            ier("a0RC", lead="00QL1", opened=True, clicks=1, tracking_as_of=ago(2), **SALES),
            ier("a0RD", contact="003C3", opened=True, **SALES),  # opened, no click: out
            ier("a0RE", contact="003C1", opened=True, clicks=2, **WELCOME),  # two links
        ],
        links=[
            link("a0LA", "a0RA", "Pricing", "https://www.example.com/pricing", ago(8)),
            link("a0LB", "a0RB", "Webinar Signup", "https://www.example.com/webinar", ago(1)),
            link("a0LE1", "a0RE", "Pricing", "https://www.example.com/pricing", ago(6)),
            link("a0LE2", "a0RE", "Case Study", "https://www.example.com/case", ago(3)),
        ],
        tasks=[
            task("00T1", "003C2", ago(0.5)),  # after B's click: followed up
            task("00T2", "00QL1", ago(3)),  # before C's click: not a follow-up
            task("00T3", "003C1", AS_OF + dt.timedelta(hours=1)),  # after as_of: ignored
        ],
    )


def test_worklist_keeps_clicks_in_window_grouped_by_owner() -> None:
    result = reports.engagement_worklist(worklist_tables(), as_of=AS_OF).collect()
    assert result.select(
        "owner_name", "recipient_name", "ier_id", "clicked_at", "clicked_at_source"
    ).rows() == [
        ("Alice Rep", "Ann Archer", "a0RE", ago(3), "link detail"),
        ("Bob Rep", "Carl Cole", "a0RB", ago(1), "link detail"),
        ("Bob Rep", "Lee Lane", "a0RC", ago(2), "tracking as of"),
    ]


def test_worklist_details_links_followups_and_send() -> None:
    result = reports.engagement_worklist(worklist_tables(), as_of=AS_OF).collect()
    rows = {r["ier_id"]: r for r in result.to_dicts()}
    assert rows["a0RE"]["links"] == "Case Study; Pricing"
    assert rows["a0RE"]["send_id"] == "a0TW"
    assert rows["a0RE"]["programme"] == "Welcome Email"
    assert rows["a0RC"]["links"] is None
    assert rows["a0RC"]["recipient_type"] == "Lead"
    assert rows["a0RC"]["company"] == "Lane Ltd"
    assert rows["a0RB"]["followed_up"] is True
    assert rows["a0RB"]["first_follow_up_at"] == ago(0.5)
    assert rows["a0RC"]["followed_up"] is False  # the task came before the click
    assert rows["a0RE"]["followed_up"] is False  # the task came after as_of


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (7, {"a0RB", "a0RC", "a0RE"}),
        (8, {"a0RB", "a0RC", "a0RE"}),  # exactly 8 days ago is on the open edge: out
        (8.01, {"a0RA", "a0RB", "a0RC", "a0RE"}),
        (dt.timedelta(days=2), {"a0RB"}),  # C's click is exactly 2 days ago: out
        (1.5, {"a0RB"}),
    ],
)
def test_worklist_window(days: float | dt.timedelta, expected: set[str]) -> None:
    result = reports.engagement_worklist(worklist_tables(), as_of=AS_OF, days=days).collect()
    assert set(result["ier_id"]) == expected


def test_worklist_as_of_excludes_later_clicks() -> None:
    result = reports.engagement_worklist(worklist_tables(), as_of=ago(2.5), days=7).collect()
    # At 2.5 days ago, B (1 day ago) and C (2 days ago) had not clicked yet; A (8 days) is
    # within 7 days of then; E's latest click (3 days ago) is in.
    assert set(result["ier_id"]) == {"a0RA", "a0RE"}


def test_worklist_rejects_negative_window() -> None:
    with pytest.raises(ReportError, match="days"):
        reports.engagement_worklist(worklist_tables(), as_of=AS_OF, days=-1)


# --- no response -------------------------------------------------------------------------------


def no_response_tables() -> ReportTables:
    return tables(
        [
            ier("a0R1", contact="003C1"),  # delivered, never opened: no response
            ier("a0R2", contact="003C2", hard=True),  # bounced: not reached
            ier("a0R3", contact="003C3", opened=True),  # opened
            ier("a0R4", lead="00QL1", soft=True),  # soft bounce: not reached
            ier("a0R5", contact="003C4", unsub=True),  # unsubscribed: answered
            ier("a0R6", lead="00QL1", clicks=1),  # clicked with images off: answered
            ier("a0R7", contact="003C3", **SALES),  # 2 days old: not due yet with wait 3
        ]
    )


def test_no_response_lists_delivered_unopened_only() -> None:
    result = reports.no_response(no_response_tables(), as_of=AS_OF, wait_days=3).collect()
    assert result.select(
        "ier_id", "recipient_name", "owner_name", "campaign_name", "days_since_sent"
    ).rows() == [("a0R1", "Ann Archer", "Alice Rep", "Newsletter 2026", 10)]
    assert result["subject_line"].to_list() == ["November news"]


def test_bounced_recipient_is_not_no_response() -> None:
    result = reports.no_response(no_response_tables(), as_of=AS_OF, wait_days=0).collect()
    assert "a0R2" not in result["ier_id"].to_list()
    assert "a0R4" not in result["ier_id"].to_list()


@pytest.mark.parametrize(
    ("wait_days", "max_age_days", "expected"),
    [
        (3, 28, ["a0R1"]),
        (1, 28, ["a0R1", "a0R7"]),  # sorted by campaign name: Newsletter, then Q4 Outreach
        (11, 28, []),  # nothing is 11 days old yet
        (1, 7, ["a0R7"]),  # the newsletter is older than 7 days
        (1, None, ["a0R1", "a0R7"]),
    ],
)
def test_no_response_wait_and_age(
    wait_days: int, max_age_days: int | None, expected: list[str]
) -> None:
    result = reports.no_response(
        no_response_tables(), as_of=AS_OF, wait_days=wait_days, max_age_days=max_age_days
    ).collect()
    assert result["ier_id"].to_list() == expected


def test_no_response_by_send_counts_over_delivered() -> None:
    result = reports.no_response_by_send(no_response_tables(), as_of=AS_OF, wait_days=1).collect()
    assert result.select(
        "campaign_name", "send_id", "delivered", "no_response", "no_response_share"
    ).rows() == [
        # Newsletter: 6 IERs minus 2 bounces = 4 delivered; only a0R1 is silent.
        ("Newsletter 2026", "a0SN", 4, 1, 0.25),
        ("Q4 Outreach", "a0SS", 1, 1, 1.0),
    ]


# --- link interest -----------------------------------------------------------------------------


def test_link_interest_matches_url_or_name_newest_first() -> None:
    base = worklist_tables()
    extra = pl.DataFrame(
        [link("a0LX", "a0RB", "See plans", "https://www.example.com/Pricing?utm=x", ago(0.2))]
    )
    links = pl.concat([base.links, _conform("individual_links", extra)])
    with_extra = ReportTables(**{**base.__dict__, "links": links})
    result = reports.link_interest(
        with_extra, pattern="pricing", since=ago(7), until=AS_OF
    ).collect()
    assert result.select("link_id", "recipient_name", "owner_name", "last_clicked").rows() == [
        ("a0LX", "Carl Cole", "Bob Rep", ago(0.2)),
        ("a0LE1", "Ann Archer", "Alice Rep", ago(6)),
    ]  # a0LA (8 days ago) is outside the period; Webinar and Case Study do not match


def test_link_interest_regex_and_literal() -> None:
    t = worklist_tables()

    def ids(pattern: str, *, literal: bool = False) -> set[str]:
        found = reports.link_interest(
            t, pattern=pattern, since=ago(30), until=AS_OF, literal=literal
        ).collect()
        return set(found["link_id"])

    assert ids("pricing|webinar") == {"a0LA", "a0LB", "a0LE1"}
    # "." is any character in a regular expression, a dot in literal text.
    assert ids("example.com/case") == ids("example.com/case", literal=True) == {"a0LE2"}
    assert ids("example,com") == set()
    assert ids("example.com", literal=True) == {"a0LA", "a0LB", "a0LE1", "a0LE2"}
    assert ids("example.co.", literal=True) == set()
    assert ids("example.co.") == {"a0LA", "a0LB", "a0LE1", "a0LE2"}


@pytest.mark.parametrize("pattern", ["", "pricing("])
def test_link_interest_bad_pattern(pattern: str) -> None:
    with pytest.raises(ReportError, match="pattern"):
        reports.link_interest(worklist_tables(), pattern=pattern, since=ago(7), until=AS_OF)


# --- summaries ---------------------------------------------------------------------------------


def summary_tables() -> ReportTables:
    """Newsletter: 10 sent, 2 bounced, 4 opened, 2 clicked, 1 unsubscribed. Sales: 2 sent."""
    contacts = ["003C1", "003C2", "003C3", "003C4"]
    rows = []
    for i in range(10):
        rows.append(
            ier(
                f"a0RN{i}",
                contact=contacts[i % 4] if i < 9 else None,
                lead="00QL1" if i == 9 else None,
                hard=i == 0,
                soft=i == 1,
                opened=i in (2, 3, 4, 5),
                clicks=1 if i in (2, 3) else 0,
                unsub=i == 4,
            )
        )
    rows.append(ier("a0RS1", contact="003C1", opened=True, clicks=2, **SALES))
    rows.append(ier("a0RS2", contact="003C2", **SALES))
    return tables(rows)


def test_campaign_summary_rates_over_sent_and_delivered_differ() -> None:
    result = reports.campaign_summary(summary_tables()).collect()
    assert result["campaign_name"].to_list() == ["Newsletter 2026", "Q4 Outreach"]
    news = result.row(0, named=True)
    assert (news["sent"], news["delivered"], news["bounces"]) == (10, 8, 2)
    assert (news["unique_opens"], news["unique_clicks"], news["unsubscribes"]) == (4, 2, 1)
    assert news["open_rate_over_sent"] == pytest.approx(0.4)
    assert news["open_rate_over_delivered"] == pytest.approx(0.5)
    assert news["click_rate_over_sent"] == pytest.approx(0.2)
    assert news["click_rate_over_delivered"] == pytest.approx(0.25)
    assert news["unsubscribe_rate_over_delivered"] == pytest.approx(0.125)
    assert news["bounce_rate_over_sent"] == pytest.approx(0.2)
    sales = result.row(1, named=True)
    # No bounces: the two bases agree.
    assert sales["open_rate_over_sent"] == sales["open_rate_over_delivered"] == 0.5


def test_campaign_summary_all_bounced_has_null_delivered_rates() -> None:
    t = tables([ier("a0R1", contact="003C1", hard=True)])
    row = reports.campaign_summary(t).collect().row(0, named=True)
    assert row["delivered"] == 0
    assert row["open_rate_over_sent"] == 0.0
    assert row["open_rate_over_delivered"] is None


def test_campaign_summary_period() -> None:
    result = reports.campaign_summary(summary_tables(), since=ago(5), until=AS_OF).collect()
    assert result.select("campaign_name", "sent").rows() == [("Q4 Outreach", 2)]


def test_triggered_sends_have_no_campaign() -> None:
    t = tables([ier("a0R1", contact="003C1", opened=True, **WELCOME)])
    result = reports.campaign_summary(t).collect()
    assert result.select("campaign_id", "campaign_name", "sent", "unique_opens").rows() == [
        (None, reports.NO_CAMPAIGN, 1, 1)
    ]


def test_owner_summary() -> None:
    result = reports.owner_summary(summary_tables()).collect()
    # C1 (Alice): N0, N4, N8, S1; C3 (Alice): N2, N6. C2 (Bob): N1, N5, S2; L1 (Bob): N9.
    # C4 (N3, N7)'s owner 005X is not a user: no owner name. Opens: N2-N5 and S1; clicks N2, N3, S1.
    counts = ["sent", "bounces", "unique_opens", "unique_clicks"]
    assert result.select("owner_name", *counts).rows() == [
        ("(no owner)", 2, 0, 1, 1),
        ("Alice Rep", 6, 1, 3, 2),
        ("Bob Rep", 4, 1, 1, 0),
    ]


def test_segment_summary_by_industry() -> None:
    result = reports.segment_summary(summary_tables(), segment="industry").collect()
    # Finance: C2 (N1, N5, S2) + C4 (N3, N7); Technology: C1 (N0, N4, N8, S1) + L1 (N9);
    # not set: C3 (N2, N6).
    assert result.select("segment", "segment_value", "sent", "unique_opens").rows() == [
        ("industry", "(not set)", 2, 1),
        ("industry", "Finance", 5, 2),
        ("industry", "Technology", 5, 2),
    ]


def test_segment_summary_rejects_unknown_field() -> None:
    with pytest.raises(ReportError, match="lifecycle_stage"):
        reports.segment_summary(summary_tables(), segment="owner_id")


def test_programme_trend_weekly() -> None:
    monday = dt.datetime(2026, 11, 9, 8, tzinfo=dt.UTC)
    t = tables(
        [
            ier("a0R1", contact="003C1", sent=monday, opened=True, clicks=1),
            ier("a0R2", contact="003C2", sent=monday + 6.5 * DAY, opened=True),  # Sunday
            ier("a0R3", contact="003C3", sent=monday + 7 * DAY),  # next Monday
            ier("a0R4", contact="003C1", sent=monday, name="Product Nurture - Week 45"),
            ier("a0R5", contact="003C2", sent=monday - 1 * DAY, name="Product Nurture - Wk 44"),
        ]
    )
    result = reports.programme_trend(t).collect()
    counts = ["sent", "unique_opens", "unique_clicks"]
    assert result.select("week_start", "programme", *counts).rows() == [
        (dt.date(2026, 11, 2), "Product Nurture", 1, 0, 0),
        (dt.date(2026, 11, 9), "Monthly Newsletter", 2, 2, 1),
        (dt.date(2026, 11, 9), "Product Nurture", 1, 0, 0),
        (dt.date(2026, 11, 16), "Monthly Newsletter", 1, 0, 0),
    ]


# --- click heat map ----------------------------------------------------------------------------


def test_click_heatmap_weekday_hour_and_zone() -> None:
    monday_0930 = dt.datetime(2026, 11, 16, 9, 30, tzinfo=dt.UTC)
    t = tables(
        [],
        links=[
            link("a0L1", "a0R1", "Pricing", "u", monday_0930, n=3),
            link("a0L2", "a0R2", "Pricing", "u", monday_0930 + dt.timedelta(minutes=20)),
            link("a0L3", "a0R3", "Pricing", "u", dt.datetime(2026, 11, 17, 3, tzinfo=dt.UTC)),
        ],
    )
    utc = reports.click_heatmap(t).collect()
    assert utc.select("weekday_name", "hour", "links_clicked", "total_clicks").rows() == [
        ("Monday", 9, 2, 4),
        ("Tuesday", 3, 1, 1),
    ]
    # Central time (UTC-6 in November): Tuesday 03:00 UTC is Monday 21:00.
    central = reports.click_heatmap(t, time_zone="America/Chicago").collect()
    assert central.select("weekday", "hour", "links_clicked").rows() == [(1, 3, 2), (1, 21, 1)]
    with pytest.raises(ReportError, match="time zone"):
        reports.click_heatmap(t, time_zone="Mars/Olympus")


# --- doors in ----------------------------------------------------------------------------------


def test_reports_read_a_local_org(tmp_path) -> None:
    source = summary_tables()
    org = LocalOrg(tmp_path)
    for attr, name in _TABLE_FIELDS.items():
        org.write_table(name, getattr(source, attr).collect())
    from_org = reports.campaign_summary(org).collect()
    assert from_org.equals(reports.campaign_summary(source).collect())


def test_tables_of_rejects_unknown_name() -> None:
    with pytest.raises(ReportError, match="ierz"):
        ReportTables.of(ierz=pl.DataFrame({"id": ["x"]}))


def test_naive_as_of_is_utc() -> None:
    naive = AS_OF.replace(tzinfo=None)
    aware = reports.engagement_worklist(worklist_tables(), as_of=AS_OF).collect()
    assert reports.engagement_worklist(worklist_tables(), as_of=naive).collect().equals(aware)


def test_owner_worklist_for_a_date_covers_whole_days() -> None:
    # As of 2026-11-20 (a date): the window is the 7 days up to the end of that day, i.e. after
    # 2026-11-14 00:00 UTC. A's click (8 days before noon on the 20th) is on the 12th: out.
    result = reports.owner_worklist(worklist_tables(), as_of=AS_OF.date(), window_days=7)
    assert isinstance(result, pl.DataFrame)
    assert result.columns[:3] == ["owner_id", "owner_name", "owner_email"]
    assert result.select("owner_email", "ier_id").rows() == [
        ("alice@example.com", "a0RE"),
        ("bob@example.com", "a0RB"),
        ("bob@example.com", "a0RC"),
    ]
    # A 9-day window reaches back to 2026-11-12 00:00 and takes in A's click.
    wider = reports.owner_worklist(worklist_tables(), as_of=AS_OF.date(), window_days=9)
    assert "a0RA" in wider["ier_id"].to_list()


def test_summary_period_accepts_dates() -> None:
    # until is exclusive: a date means 00:00 UTC that day.
    result = reports.campaign_summary(
        summary_tables(), since=AS_OF.date() - 2 * DAY, until=AS_OF.date()
    ).collect()
    assert result.select("campaign_name", "sent").rows() == [("Q4 Outreach", 2)]
    assert (
        reports.campaign_summary(summary_tables(), since=AS_OF.date() - DAY, until=AS_OF.date())
        .collect()
        .height
        == 0
    )


def test_all_reports_match_the_single_reports() -> None:
    t = worklist_tables()
    everything = reports.all_reports(t, as_of=AS_OF, segment="company", link_pattern="case")
    assert tuple(everything) == reports.REPORT_NAMES
    assert everything["engagement_worklist"].equals(
        reports.engagement_worklist(t, as_of=AS_OF).collect()
    )
    assert everything["link_interest"]["link_id"].to_list() == ["a0LE2"]
    assert everything["segment_summary"].equals(
        reports.segment_summary(t, segment="company", until=AS_OF).collect()
    )
    assert everything["no_response_by_send"].equals(
        reports.no_response_by_send(t, as_of=AS_OF).collect()
    )
    assert everything["click_heatmap"]["links_clicked"].sum() == 4


# --- human engagement only (ierkit.signal) -----------------------------------------------------

SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)


def signal_tables() -> ReportTables:
    """One newsletter, four recipients who all "opened": a person (open an hour later), an
    Apple-Mail-like machine open (10 s after the send, no click), a gateway scanner (open 3 s,
    both links 5 s after the send) and a person who clicked Pricing two hours later."""
    sent = TEN_DAYS_AGO
    rows = [
        ier("a0RH", contact="003C1", opened=True),
        {**ier("a0RM", contact="003C2", opened=True), "date_opened": sent + 10 * SECOND},
        {**ier("a0RA", contact="003C3", opened=True, clicks=2), "date_opened": sent + 3 * SECOND},
        ier("a0RC", contact="003C4", opened=True, clicks=1),
    ]
    links = [
        link("a0LA1", "a0RA", "Pricing", "https://x.example/pricing", sent + 5 * SECOND),
        link("a0LA2", "a0RA", "Blog", "https://x.example/blog", sent + 5 * SECOND),
        link("a0LC1", "a0RC", "Pricing", "https://x.example/pricing", sent + 2 * HOUR),
    ]
    return tables(rows, links)


def test_summary_shows_rates_with_and_without_machine_engagement() -> None:
    news = reports.campaign_summary(signal_tables()).collect().row(0, named=True)
    assert (news["unique_opens"], news["unique_clicks"]) == (4, 2)
    assert (news["human_opens"], news["human_clicks"]) == (2, 1)
    assert news["open_rate_over_sent"] == pytest.approx(1.0)
    assert news["open_rate_without_machine_opens"] == pytest.approx(0.5)
    assert news["click_rate_over_sent"] == pytest.approx(0.5)
    assert news["click_rate_without_automated_clicks"] == pytest.approx(0.25)
    owners = reports.owner_summary(signal_tables()).collect()
    assert owners["human_opens"].sum() == 2 and owners["unique_opens"].sum() == 4


def test_no_response_counts_machine_opens_and_scanner_clicks_as_silence() -> None:
    got = reports.no_response(signal_tables(), as_of=AS_OF, wait_days=3).collect()
    assert sorted(got["ier_id"]) == ["a0RA", "a0RM"]
    by_send = reports.no_response_by_send(signal_tables(), as_of=AS_OF, wait_days=3).collect()
    assert (by_send.item(0, "delivered"), by_send.item(0, "no_response")) == (4, 2)


def test_link_interest_leaves_out_a_scanners_pricing_click() -> None:
    got = reports.link_interest(
        signal_tables(), pattern="pricing", since=ago(30), until=AS_OF
    ).collect()
    assert got["link_id"].to_list() == ["a0LC1"]
    automated = reports.suspected_automated_clicks(signal_tables()).collect()
    assert automated["ier_id"].to_list() == ["a0RA"]
