"""Tests for ierkit.decision: measures per programme, the recommendation and its reason."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ierkit import decision, storage
from ierkit.reports import ReportTables

UTC = dt.UTC
AS_OF = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)
SENT = dt.datetime(2026, 10, 1, 10, tzinfo=UTC)


def _iers(
    programme: str,
    send_id: str,
    *,
    n: int,
    opened: int = 0,
    clicked: int = 0,
    bounced: int = 0,
    sent: dt.datetime = SENT,
    tag: str,
    email_name: str | None = None,
) -> pl.DataFrame:
    """``n`` IERs of one send: the first ``opened`` opened, the first ``clicked`` clicked, the
    last ``bounced`` hard-bounced. Contact ``003<tag><i>``."""
    return pl.DataFrame(
        {
            "id": [f"a0R{tag}{i:012d}" for i in range(n)],
            "name": [email_name or f"{programme} - {send_id}"] * n,
            "contact_id": [f"003{tag}{i:012d}" for i in range(n)],
            "email_send_id": [send_id] * n,
            "batch_id": [0] * n,
            "date_sent": [sent] * n,
            "opened": [i < opened for i in range(n)],
            "date_opened": [sent + dt.timedelta(hours=2) if i < opened else None for i in range(n)],
            "unique_clicks": [1 if i < clicked else 0 for i in range(n)],
            "hard_bounce": [i >= n - bounced for i in range(n)],
        }
    )


def _tasks(who_ids: list[str], created: dt.datetime = SENT + dt.timedelta(days=1)) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"00T{i:015d}" for i in range(len(who_ids))],
            "who_id": who_ids,
            "subject": ["Follow up"] * len(who_ids),
            "created_date": [created] * len(who_ids),
        }
    )


def _contacts(tag: str, count: int) -> list[str]:
    return [f"003{tag}{i:012d}" for i in range(count)]


@pytest.fixture
def three_programmes() -> ReportTables:
    """A newsletter nobody follows up, a sales send half followed up, a send from 3 hours ago."""
    iers = pl.concat(
        [
            _iers(
                "Monthly Newsletter",
                "a0S000000000000001",
                n=1_000,
                opened=200,
                clicked=20,
                tag="NWS",
            ),
            _iers("Sales Outreach", "a0S000000000000002", n=100, opened=40, clicked=8, tag="SAL"),
            _iers(
                "Product Announcement",
                "a0S000000000000003",
                n=500,
                opened=10,
                sent=AS_OF - dt.timedelta(hours=3),
                tag="ANN",
            ),
        ]
    )
    # One newsletter opener and 21 of 40 sales engagers get a Task the day after the send.
    tasks = _tasks(_contacts("NWS", 1) + _contacts("SAL", 21))
    return ReportTables.of(iers=iers, tasks=tasks)


def _by_programme(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["programme"]: row for row in frame.iter_rows(named=True)}


def test_decision_on_known_programmes(three_programmes: ReportTables) -> None:
    got = decision.decide(three_programmes, as_of=AS_OF).collect()
    assert got.get_column("programme").to_list() == [
        "Monthly Newsletter",
        "Product Announcement",
        "Sales Outreach",
    ]
    rows = _by_programme(got)
    news, sales = rows["Monthly Newsletter"], rows["Sales Outreach"]
    new = rows["Product Announcement"]
    assert (news["recommendation"], sales["recommendation"], new["recommendation"]) == (
        "skip",
        "track",
        "too new",
    )
    # Newsletter: 1,000 IERs = 1.953125 MB written in one send, one follow-up out of 200.
    assert news["engaged"] == 200 and news["followed_up"] == 1
    assert news["actionability"] == pytest.approx(0.005)
    assert news["mb_per_followup"] == pytest.approx(1_000 * 2 / 1024)
    assert news["reason"] == (
        "Skip: only 0.5% of 200 engaged recipients got a follow-up within 7 days (under 2.0%), "
        "so reps hardly use these IERs; each follow-up costs 2.0 MB of IER storage and the "
        "programme writes 1.2 MB a month."
    )
    assert sales["actionability"] == pytest.approx(21 / 40)
    assert sales["reason"] == (
        "Track: 52.5% of 40 engaged recipients got a follow-up within 7 days, at 0.0093 MB of "
        "IER storage per follow-up (0.12 MB a month)."
    )
    assert new["sent"] == 0 and new["iers"] == 500
    assert new["reason"] == (
        "Too new: its 1 send(s) went out less than 7 days plus 2 days of grace before the as-of "
        "date; judge it from 2026-11-29."
    )
    assert got.get_column("retention_days").null_count() == 3


def test_storage_per_month_is_records_a_month_times_record_size(
    three_programmes: ReportTables,
) -> None:
    rows = _by_programme(decision.programme_measures(three_programmes, as_of=AS_OF).collect())
    news = rows["Monthly Newsletter"]
    months = (AS_OF - SENT).total_seconds() / 86_400 / storage.DAYS_PER_MONTH
    assert news["months_observed"] == pytest.approx(months)
    assert news["records_per_month"] == pytest.approx(1_000 / months)
    assert news["mb_per_month"] == pytest.approx(1_000 / months * 2 / 1024)
    # A first send three hours ago counts as one month, not as 240 months' rate.
    assert rows["Product Announcement"]["months_observed"] == 1.0
    assert rows["Product Announcement"]["mb_per_month"] == pytest.approx(500 * 2 / 1024)


def test_rates_over_sent_and_over_delivered() -> None:
    iers = _iers("P", "a0S000000000000001", n=100, opened=30, clicked=9, bounced=10, tag="RAT")
    row = (
        decision.programme_measures(ReportTables.of(iers=iers), as_of=AS_OF)
        .collect()
        .row(0, named=True)
    )
    assert (row["sent"], row["delivered"], row["opened"], row["clicked"]) == (100, 90, 30, 9)
    assert row["open_rate_over_sent"] == pytest.approx(0.30)
    assert row["open_rate_over_delivered"] == pytest.approx(30 / 90)
    assert row["click_rate_over_sent"] == pytest.approx(0.09)
    assert row["click_rate_over_delivered"] == pytest.approx(0.10)


def test_link_details_count_as_storage() -> None:
    iers = _iers("P", "a0S000000000000001", n=10, opened=2, clicked=2, tag="LNK")
    links = pl.DataFrame(
        {
            "id": ["a0L000000000000001", "a0L000000000000002", "a0L000000000000003"],
            "individual_email_result_id": [iers["id"][0], iers["id"][0], iers["id"][1]],
            "last_clicked": [SENT + dt.timedelta(hours=3)] * 3,
        }
    )
    row = (
        decision.programme_measures(ReportTables.of(iers=iers, links=links), as_of=AS_OF)
        .collect()
        .row(0, named=True)
    )
    assert (row["iers"], row["links"], row["records"]) == (10, 3, 13)
    assert row["mb"] == pytest.approx(13 * 2 / 1024)


@pytest.mark.parametrize(
    ("task_delay", "counted"),
    [
        (dt.timedelta(hours=-1), False),  # before the send: not a follow-up
        (dt.timedelta(hours=3), True),
        (dt.timedelta(days=7, hours=1), True),  # 7 days after the open (2 h after the send)
        (dt.timedelta(days=7, hours=3), False),  # more than 7 days after the open
    ],
)
def test_follow_up_window(task_delay: dt.timedelta, counted: bool) -> None:
    iers = _iers("P", "a0S000000000000001", n=4, opened=1, tag="WIN")
    tasks = _tasks(_contacts("WIN", 1), created=SENT + task_delay)
    row = (
        decision.programme_measures(
            ReportTables.of(iers=iers, tasks=tasks),
            as_of=AS_OF,
            options=decision.MeasureOptions(followup_days=7),
        )
        .collect()
        .row(0, named=True)
    )
    assert row["followed_up"] == int(counted)


def test_follow_up_on_the_contact_a_lead_became_counts() -> None:
    iers = pl.DataFrame(
        {
            "id": ["a0R000000000000001", "a0R000000000000002"],
            "name": ["P - 1", "P - 1"],
            "lead_id": ["00Q000000000000001", "00Q000000000000002"],
            "email_send_id": ["a0S000000000000001"] * 2,
            "date_sent": [SENT] * 2,
            "opened": [True, True],
            # An open in the second of the send with no click is what Apple Mail Privacy
            # Protection looks like (ierkit.signal): these are people, opening an hour later.
            "date_opened": [SENT + dt.timedelta(hours=1)] * 2,
        }
    )
    leads = pl.DataFrame(
        {
            "id": ["00Q000000000000001", "00Q000000000000002"],
            "converted_contact_id": ["003000000000000009", None],
        }
    )
    tasks = _tasks(["003000000000000009"])
    row = (
        decision.programme_measures(
            ReportTables.of(iers=iers, leads=leads, tasks=tasks), as_of=AS_OF
        )
        .collect()
        .row(0, named=True)
    )
    assert (row["engaged"], row["followed_up"]) == (2, 1)


def test_task_filter_keeps_only_matching_tasks(three_programmes: ReportTables) -> None:
    got = decision.programme_measures(
        three_programmes,
        as_of=AS_OF,
        options=decision.MeasureOptions(task_filter=pl.col("subject").str.starts_with("Call")),
    ).collect()
    assert got.get_column("followed_up").sum() == 0


def test_track_with_retention_between_the_thresholds_and_when_dear() -> None:
    # 4% of 100 engaged followed up: between skip_below 2% and min_actionability 5%.
    mid = _iers("Nurture", "a0S000000000000001", n=1_000, opened=100, tag="MID")
    # 50% followed up, but 1,000 IERs for 5 follow-ups: 0.39 MB each, over a 0.1 MB limit.
    dear = _iers("Big", "a0S000000000000002", n=1_000, opened=10, tag="DEA")
    tasks = _tasks(_contacts("MID", 4) + _contacts("DEA", 5))
    thresholds = decision.DecisionThresholds(
        min_actionability=0.05, max_mb_per_followup=0.1, retention_days=60
    )
    got = decision.decide(
        ReportTables.of(iers=pl.concat([mid, dear]), tasks=tasks),
        as_of=AS_OF,
        thresholds=thresholds,
    ).collect()
    rows = _by_programme(got)
    assert rows["Nurture"]["recommendation"] == "track with retention"
    assert rows["Nurture"]["retention_days"] == 60
    assert rows["Nurture"]["reason"] == (
        "Track with retention (keep 60 days): 4.0% of 100 engaged recipients got a follow-up "
        "within 7 days (between 2.0% and 5.0%): reps act on a few, and only within days; each "
        "follow-up costs 0.49 MB of IER storage."
    )
    assert rows["Big"]["recommendation"] == "track with retention"
    assert rows["Big"]["reason"].startswith(
        "Track with retention (keep 60 days): 50.0% of 10 engaged recipients got a follow-up "
        "within 7 days, but each follow-up costs 0.39 MB of IER storage (limit 0.1 MB)"
    )


def test_skip_without_any_follow_up_says_so() -> None:
    iers = _iers("Digest", "a0S000000000000001", n=12_345, opened=6_000, tag="DIG")
    row = decision.decide(ReportTables.of(iers=iers), as_of=AS_OF).collect().row(0, named=True)
    assert row["recommendation"] == "skip"
    assert row["reason"].startswith(
        "Skip: none of 6,000 engaged recipients got a follow-up within 7 days, and the programme "
        "writes 14.7 MB of IER storage a month."
    )


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("email_name", ["Newsletter", "Outreach"]),
        ("campaign", ["(no campaign)", "Q4 Newsletter", "Rep push"]),
        ("campaign_type", ["(no campaign)", "Newsletter", "Sales Outreach"]),
        ("send_type", ["Email Send", "Triggered Send"]),
    ],
)
def test_grouping(group_by: str, expected: list[str]) -> None:
    iers = pl.concat(
        [
            _iers("Newsletter", "a0S000000000000001", n=3, tag="GR1"),
            _iers("Outreach", "a0S000000000000002", n=2, tag="GR2"),
            _iers("Outreach", "a0T000000000000001", n=1, tag="GR3").rename(
                {"email_send_id": "triggered_send_id"}
            ),
        ],
        how="diagonal",
    )
    email_sends = pl.DataFrame(
        {
            "id": ["a0S000000000000001", "a0S000000000000002"],
            "email_name": ["Newsletter - Oct", "Outreach - Oct"],
            "campaign_id": ["701000000000000001", "701000000000000002"],
        }
    )
    triggered = pl.DataFrame({"id": ["a0T000000000000001"], "name": ["Outreach - welcome"]})
    campaigns = pl.DataFrame(
        {
            "id": ["701000000000000001", "701000000000000002"],
            "name": ["Q4 Newsletter", "Rep push"],
            "type": ["Newsletter", "Sales Outreach"],
        }
    )
    tables = ReportTables.of(
        iers=iers, email_sends=email_sends, triggered_sends=triggered, campaigns=campaigns
    )
    got = decision.programme_measures(
        tables, as_of=AS_OF, options=decision.MeasureOptions(group_by=group_by)
    ).collect()
    assert got.get_column("programme").to_list() == expected
    assert got.get_column("iers").sum() == 6


def test_unknown_grouping_is_refused(three_programmes: ReportTables) -> None:
    with pytest.raises(decision.DecisionError, match="group_by 'owner' is not one of"):
        decision.programme_measures(
            three_programmes, as_of=AS_OF, options=decision.MeasureOptions(group_by="owner")
        )


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(decision.DecisionError, match="skip_below <= min_actionability"):
        decision.DecisionThresholds(min_actionability=0.01, skip_below=0.05)


def test_plan_from_history_repeats_recent_sends() -> None:
    weekly = pl.concat(
        [
            _iers(
                "Nurture",
                f"a0S00000000000000{w}",
                n=300,
                sent=AS_OF - dt.timedelta(weeks=w),
                tag=f"NU{w}",
            )
            for w in range(1, 9)
        ]
    )
    old = _iers(
        "Nurture", "a0S000000000000099", n=300, sent=AS_OF - dt.timedelta(days=200), tag="OLD"
    )
    links = pl.DataFrame(
        {
            "id": [f"a0L{i:015d}" for i in range(30)],
            "individual_email_result_id": weekly.get_column("id").head(30),
        }
    )
    plan = storage.plan_from_history(
        ReportTables.of(iers=pl.concat([weekly, old]), links=links), as_of=AS_OF, months=1
    ).collect()
    row = plan.row(0, named=True)
    # Within the last 30.44 days: the sends 1 to 4 weeks ago.
    assert row["sends_per_month"] == 4.0
    assert row["list_size"] == 300.0
    assert row["links_per_recipient"] == pytest.approx(30 / 1_200)
    assert row["tracking_mb_now"] == pytest.approx((2_700 + 30) * 2 / 1024)
    assert plan.columns == list(storage.PLAN_COLUMNS.names())


def test_apply_decisions_turns_off_skipped_and_sets_retention() -> None:
    plan = pl.DataFrame(
        {"programme": ["A", "B", "C"], "list_size": [1.0, 1.0, 1.0], "sends_per_month": [1.0] * 3}
    )
    decisions = pl.LazyFrame(
        {
            "programme": ["A", "B", "C"],
            "recommendation": ["skip", "track with retention", "track"],
            "retention_days": [None, 90, None],
        }
    )
    got = storage.apply_decisions(plan, decisions).collect()
    assert got.get_column("tracked").to_list() == [False, True, True]
    assert got.get_column("retention_days").to_list() == [None, 90.0, None]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1_000, "1,000"),
        (6_000.4, "6,000"),
        (1_234_567, "1,234,567"),
        (10_000_001, "10,000,001"),
    ],
)
def test_thousands_separators(value: float, text: str) -> None:
    got = pl.select(decision._int_text(pl.lit(value))).item()
    assert got == text


def test_default_thresholds_track_from_three_percent() -> None:
    # 3 of 100 engaged followed up: exactly min_actionability tracks; 2 of 100: retention.
    three = _iers("Three", "a0S000000000000001", n=100, opened=100, tag="TH3")
    two = _iers("Two", "a0S000000000000002", n=100, opened=100, tag="TH2")
    tasks = _tasks(_contacts("TH3", 3) + _contacts("TH2", 2))
    got = decision.decide(ReportTables.of(iers=pl.concat([three, two]), tasks=tasks), as_of=AS_OF)
    assert dict(got.select("programme", "recommendation").collect().rows()) == {
        "Three": "track",
        "Two": "track with retention",
    }


def test_newer_sends_of_a_judged_programme_are_left_out_and_said_so() -> None:
    old = _iers("Weekly", "a0S000000000000001", n=100, opened=50, tag="WOL")
    new = _iers(
        "Weekly",
        "a0S000000000000002",
        n=100,
        opened=100,
        sent=AS_OF - dt.timedelta(days=3),
        tag="WNE",
    )
    tasks = _tasks(_contacts("WOL", 25))
    row = (
        decision.decide(ReportTables.of(iers=pl.concat([old, new]), tasks=tasks), as_of=AS_OF)
        .collect()
        .row(0, named=True)
    )
    assert (row["sends"], row["sends_judged"], row["iers"], row["sent"]) == (2, 1, 200, 100)
    assert row["engaged"] == 50 and row["actionability"] == 0.5
    assert row["reason"].endswith(" 1 newer send(s) too new to judge are left out of the rates.")


def test_recommend_over_measures_computed_once_equals_decide() -> None:
    # Four programmes across the rules: 40%, 4%, 1% and 0% of engaged recipients followed up.
    iers = pl.concat(
        [
            _iers("High", "a0S000000000000001", n=200, opened=50, tag="HIG"),
            _iers("Mid", "a0S000000000000002", n=1_000, opened=100, tag="MID"),
            _iers("Low", "a0S000000000000003", n=1_000, opened=100, tag="LOW"),
            _iers("None", "a0S000000000000004", n=300, opened=30, tag="NON"),
            _iers("New", "a0S000000000000005", n=50, sent=AS_OF - dt.timedelta(days=1), tag="NEW"),
        ]
    )
    tasks = _tasks(_contacts("HIG", 20) + _contacts("MID", 4) + _contacts("LOW", 1))
    tables = ReportTables.of(iers=iers, tasks=tasks)
    options = decision.MeasureOptions(followup_days=10, grace_days=1)
    measures = decision.programme_measures(tables, as_of=AS_OF, options=options).collect()
    for thresholds in (
        decision.DecisionThresholds(),
        decision.DecisionThresholds(min_actionability=0.05, skip_below=0.005),
        decision.DecisionThresholds(max_mb_per_followup=0.01, retention_days=30),
        decision.DecisionThresholds(min_actionability=0.5, skip_below=0.5, max_mb_per_month=0.1),
    ):
        expected = decision.decide(
            tables, as_of=AS_OF, thresholds=thresholds, options=options
        ).collect()
        got = decision.recommend(measures, thresholds=thresholds, options=options).collect()
        assert_frame_equal(got, expected)
    # A lazy frame of measures works the same.
    lazy = decision.recommend(measures.lazy(), options=options).collect()
    assert_frame_equal(lazy, decision.decide(tables, as_of=AS_OF, options=options).collect())


# --- the demo org --------------------------------------------------------------------------------


def test_demo_decision_tracks_sales_and_nurture_and_skips_the_newsletter(demo_org) -> None:
    from ierkit import demo

    got = decision.decide(demo_org, as_of=demo.as_of_instant(demo.DEMO_AS_OF)).collect()
    rows = _by_programme(got)
    assert rows["Sales Outreach"]["recommendation"] == "track"
    assert rows["Product Nurture"]["recommendation"] == "track"
    newsletter = rows["Monthly Newsletter"]
    assert newsletter["recommendation"] == "skip"
    assert newsletter["actionability"] < 0.02
    assert newsletter["reason"].startswith("Skip: only 1.")
    assert "so reps hardly use these IERs" in newsletter["reason"]
    # The announcement sent three hours before the as-of instant cannot be judged yet.
    assert rows["Product Announcement"]["recommendation"] == "too new"
    # Rates are shown over sent and over delivered; delivered excludes bounces.
    assert newsletter["open_rate_over_delivered"] > newsletter["open_rate_over_sent"]
    # The demo plants machine opens (Apple Mail Privacy Protection, gateway scanners): the raw
    # rate counts them, the human rate does not.
    assert 0.26 < newsletter["open_rate_over_sent"] < 0.34
    assert 0.15 < newsletter["open_rate_without_machine_opens"] < 0.22
    assert newsletter["click_rate_without_automated_clicks"] < newsletter["click_rate_over_sent"]
    assert newsletter["human_engaged"] < newsletter["engaged"]
    assert rows["Sales Outreach"]["actionability"] > 0.4


def test_demo_plan_projects_from_history(demo_org) -> None:
    from ierkit import demo

    as_of = demo.as_of_instant(demo.DEMO_AS_OF)
    plan = storage.plan_from_history(demo_org, as_of=as_of, months=3).collect()
    rows = _by_programme(plan)
    newsletter = rows["Monthly Newsletter"]
    assert 2 <= newsletter["sends_per_month"] * 3 <= 4
    assert 15_000 < newsletter["list_size"] < 30_000
    assert 3 < rows["Product Nurture"]["sends_per_month"] < 5
    decisions = decision.decide(demo_org, as_of=as_of)
    followed = storage.apply_decisions(plan, decisions).collect()
    assert not _by_programme(followed)["Monthly Newsletter"]["tracked"]
    usage = storage.project_storage(
        followed, start=as_of.date(), used_mb=1_000.0, allocation_mb=10_640.0
    ).collect()
    keep_all = storage.project_storage(
        plan, start=as_of.date(), used_mb=1_000.0, allocation_mb=10_640.0
    ).collect()
    # Following the decision writes less than keeping everything.
    assert usage.item(-1, "used_mb") < keep_all.item(-1, "used_mb")


def test_actionability_counts_human_engagement_only() -> None:
    # Three IERs of one send: a machine open 10 s after the send (no click), a person opening
    # two hours later, and a scanner that opened 3 s after the send and clicked both of the
    # send's links 5 s after it. Every recipient got a Task the next day.
    ids = [f"a0R00000000000000{i}" for i in range(3)]
    contacts = [f"00300000000000000{i}" for i in range(3)]
    iers = pl.DataFrame(
        {
            "id": ids,
            "name": ["P - 1"] * 3,
            "contact_id": contacts,
            "email_send_id": ["a0S000000000000001"] * 3,
            "date_sent": [SENT] * 3,
            "opened": [True] * 3,
            "date_opened": [
                SENT + dt.timedelta(seconds=10),
                SENT + dt.timedelta(hours=2),
                SENT + dt.timedelta(seconds=3),
            ],
            "unique_clicks": [0, 0, 2],
        }
    )
    links = pl.DataFrame(
        {
            "id": ["a0T000000000000001", "a0T000000000000002"],
            "individual_email_result_id": [ids[2]] * 2,
            "link_url": ["https://x.example/a", "https://x.example/b"],
            "last_clicked": [SENT + dt.timedelta(seconds=5)] * 2,
        }
    )
    row = (
        decision.programme_measures(
            ReportTables.of(iers=iers, links=links, tasks=_tasks(contacts)), as_of=AS_OF
        )
        .collect()
        .row(0, named=True)
    )
    assert (row["opened"], row["clicked"], row["engaged"]) == (3, 1, 3)
    assert (row["human_opened"], row["human_clicked"], row["human_engaged"]) == (1, 0, 1)
    assert row["open_rate_without_machine_opens"] == pytest.approx(1 / 3)
    assert row["click_rate_without_automated_clicks"] == 0.0
    # Only the person's follow-up counts: actionability is 1 of 1, not 3 of 3 or 1 of 3.
    assert (row["followed_up"], row["actionability"]) == (1, 1.0)
