"""The engagement signal on small inline frames: each rule, its edge cases, and the score."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from ierkit import schema, signal
from ierkit.extract import EVENT_SCHEMA

T0 = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def events(rows: list[tuple[str, str, float, int | None]], *, email_domain: str = "x.example"):
    """Events of send 1: (subscriber_key, type, seconds after T0, link id)."""
    return pl.LazyFrame(
        {
            "job_id": [1] * len(rows),
            "batch_id": [0] * len(rows),
            "subscriber_key": [r[0] for r in rows],
            "subscriber_id": [None] * len(rows),
            "list_id": [None] * len(rows),
            "email": [f"{r[0]}@{email_domain}" for r in rows],
            "event_type": [r[1] for r in rows],
            "event_time": [at(r[2]) for r in rows],
            "url": [None if r[3] is None else f"https://e.example/{r[3]}" for r in rows],
            "link_name": [None] * len(rows),
            "bounce_category": [None] * len(rows),
            "is_unique": [None] * len(rows),
            "link_id": [r[3] for r in rows],
        },
        schema=EVENT_SCHEMA,
    )


def classify(rows, **kw) -> pl.DataFrame:
    return signal.classify_events(events(rows, **kw)).collect()


def flags(frame: pl.DataFrame, kind: str) -> list[bool]:
    return frame.filter(pl.col("event_type") == kind)["automated"].to_list()


@pytest.mark.parametrize(
    ("click_at", "automated"),
    [(3, True), (20, True), (21, False), (50, False), (3600, False)],
)
def test_a_click_soon_after_delivery_is_automated(click_at: float, automated: bool) -> None:
    out = classify(
        [("a", "Sent", 0, None), ("a", "Open", click_at, None), ("a", "Click", click_at, 7)]
    )
    assert flags(out, "Click") == [automated]
    if automated:
        assert "after delivery" in out.filter(pl.col("event_type") == "Click")["signal_reason"][0]


def test_a_human_click_50_seconds_after_delivery_stays_human() -> None:
    out = classify([("a", "Sent", 0, None), ("a", "Open", 35, None), ("a", "Click", 50, 7)])
    assert out["automated"].to_list() == [False, False, False]
    assert out["machine_open"].to_list() == [False, False, False]
    assert out["signal_reason"].is_null().all()


def test_several_links_within_seconds_are_a_burst_even_late() -> None:
    # An hour after delivery (no timing rule applies), three links within 4 s.
    out = classify(
        [
            ("a", "Sent", 0, None),
            ("a", "Click", 3600, 1),
            ("a", "Click", 3602, 2),
            ("a", "Click", 3604, 3),
        ]
    )
    assert flags(out, "Click") == [True, True, True]
    assert "3 different links clicked within 4 s" in out["signal_reason"].drop_nulls()[0]


def test_one_link_clicked_twice_quickly_is_not_a_burst() -> None:
    out = classify([("a", "Sent", 0, None), ("a", "Click", 3600, 1), ("a", "Click", 3603, 1)])
    assert flags(out, "Click") == [False, False]


def test_a_domain_burst_at_the_same_second_is_a_gateway() -> None:
    rows = [(k, "Sent", 0, None) for k in "abc"] + [(k, "Click", 7200.2, 1) for k in "abc"]
    out = classify(rows)
    assert flags(out, "Click") == [True, True, True]
    assert (
        "3 recipients at x.example clicked in the same second"
        in out["signal_reason"].drop_nulls()[0]
    )
    # Two people of one company at the same second could be chance.
    assert flags(classify(rows[:2] + rows[3:5]), "Click") == [False, False]


def test_a_scanner_that_also_opens() -> None:
    out = classify(
        [("a", "Sent", 0, None), ("a", "Open", 2, None), ("a", "Click", 3, 1), ("a", "Click", 5, 2)]
    )
    assert out["automated"].to_list() == [False, True, True, True]
    opened = out.filter(pl.col("event_type") == "Open")
    assert opened["signal_reason"][0] == "opened 2 s after delivery, with the scanner's clicks"
    per = signal.recipient_signal(out.lazy()).collect()
    assert per.select("human_opens", "machine_opens", "human_clicks", "automated_clicks").row(
        0
    ) == (0, 1, 0, 2)


def test_a_real_click_after_a_scanner_burst_stays_human() -> None:
    out = classify(
        [
            ("a", "Sent", 0, None),
            ("a", "Open", 2, None),
            ("a", "Click", 3, 1),
            ("a", "Click", 6, 2),
            ("a", "Open", 5400, None),
            ("a", "Click", 5460, 1),
        ]
    )
    assert out["automated"].to_list() == [False, True, True, True, False, False]
    per = signal.recipient_signal(out.lazy()).collect()
    assert per.select("human_opens", "human_clicks", "automated_clicks", "human_links").row(0) == (
        1,
        1,
        2,
        1,
    )


@pytest.mark.parametrize(
    ("rows", "machine"),
    [
        (
            [("a", "Sent", 0, None), ("a", "Open", 40, None)],
            True,
        ),  # opened on delivery, nothing after
        ([("a", "Sent", 0, None), ("a", "Open", 61, None)], False),  # after a minute
        ([("a", "Sent", 0, None), ("a", "Open", 40, None), ("a", "Open", 9000, None)], False),
        ([("a", "Sent", 0, None), ("a", "Open", 40, None), ("a", "Click", 300, 1)], False),
    ],
)
def test_an_open_within_a_minute_with_nothing_after_is_a_possible_machine_open(
    rows, machine
) -> None:
    out = classify(rows)
    first_open = out.filter(pl.col("event_type") == "Open").row(0, named=True)
    assert first_open["machine_open"] is machine
    assert first_open["automated"] is False
    if machine:
        assert "Apple Mail Privacy Protection" in first_open["signal_reason"]


def test_events_without_a_sent_row_keep_their_data_and_no_timing_rule() -> None:
    out = classify([("a", "Click", 3, 1)])
    assert out.height == 1 and out["delivered_at"].is_null().all()
    assert out["automated"].to_list() == [False]


# --- from the org alone ----------------------------------------------------------------------


def org_tables(specs: list[dict]) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """IERs of one send with link details: spec = {id, opened_at, clicks: [(link, seconds, n)]}."""
    iers = pl.DataFrame(
        {
            "id": [s["id"] for s in specs],
            "contact_id": [s.get("who", "003" + s["id"]) for s in specs],
            "email_send_id": ["a0Psend"] * len(specs),
            "date_sent": [T0] * len(specs),
            "opened": [s.get("opened_at") is not None for s in specs],
            "date_opened": [
                None if s.get("opened_at") is None else at(s["opened_at"]) for s in specs
            ],
            "unique_clicks": [len(s.get("clicks", [])) for s in specs],
            "clicked": [bool(s.get("clicks")) for s in specs],
        }
    )
    iers = iers.with_columns(
        [
            pl.lit(None, dtype=c.dtype).alias(c.name)
            for c in schema.table("individual_email_results").columns
            if c.name not in iers.columns
        ]
    ).select(schema.table("individual_email_results").column_names)
    link_rows = [
        {
            "id": f"L{s['id']}{link}",
            "individual_email_result_id": s["id"],
            "link_name": {1: "Pricing", 2: "Read the Blog", 3: "Case Study"}[link],
            "link_url": f"https://e.example/{link}",
            "exact_target_link_id": str(link),
            "last_clicked": at(secs),
            "total_clicks": n,
        }
        for s in specs
        for link, secs, n in s.get("clicks", [])
    ]
    links = schema.table("individual_links").empty()
    if link_rows:
        frame = pl.DataFrame(link_rows)
        links = frame.with_columns(
            [
                pl.lit(None, dtype=c.dtype).alias(c.name)
                for c in schema.table("individual_links").columns
                if c.name not in frame.columns
            ]
        ).select(schema.table("individual_links").column_names)
        links = schema.validate("individual_links", links.lazy()).collect()
    iers = schema.validate("individual_email_results", iers.lazy()).collect()
    return iers.lazy(), links.lazy()


def classify_org(specs) -> pl.DataFrame:
    iers, links = org_tables(specs)
    return signal.classify_iers(iers, links).collect()


def test_org_every_link_within_seconds_of_the_send_is_automated() -> None:
    out = classify_org(
        [
            {"id": "s", "opened_at": 2, "clicks": [(1, 3, 1), (2, 5, 1), (3, 8, 1)]},  # scanner
            {"id": "h", "opened_at": 600, "clicks": [(1, 700, 2)]},  # a person
        ]
    )
    h, s = out.row(0, named=True), out.row(1, named=True)
    assert (h["ier_id"], h["automated_clicks"], h["human_clicked"], h["human_opened"]) == (
        "h",
        False,
        True,
        True,
    )
    assert (s["ier_id"], s["automated_clicks"], s["machine_open"], s["human_opened"]) == (
        "s",
        True,
        True,
        False,
    )
    assert (
        s["signal_reason"] == "every one of the send's 3 links clicked within 5 s of each other, "
        "the last 8 s after the send"
    )


def test_org_a_fast_open_with_fast_clicks_is_automated_but_a_50_second_human_is_not() -> None:
    out = classify_org(
        [
            {"id": "a", "opened_at": 4, "clicks": [(1, 6, 1)]},
            {"id": "b", "opened_at": 30, "clicks": [(2, 50, 1)]},
        ]
    )
    assert out["automated_clicks"].to_list() == [True, False]
    assert out["signal_reason"][0] == "opened 4 s after the send and every click within 6 s of it"
    assert out["human_clicked"].to_list() == [False, True]


def test_org_a_real_click_after_the_scanner_moves_last_clicked_and_stays_human() -> None:
    out = classify_org([{"id": "a", "opened_at": 2, "clicks": [(1, 4, 1), (2, 7200, 2)]}])
    assert out.select("automated_clicks", "human_clicked", "human_opened").row(0) == (
        False,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("opened_at", "clicks", "machine"),
    [
        (40, [], True),
        (59, [], True),
        (61, [], False),
        (30, [(1, 900, 1)], False),
        (None, [], False),
    ],
)
def test_org_open_within_a_minute_and_no_click_is_a_possible_machine_open(
    opened_at, clicks, machine
) -> None:
    out = classify_org([{"id": "a", "opened_at": opened_at, "clicks": clicks}])
    assert out["machine_open"].to_list() == [machine]
    assert out["human_opened"].to_list() == [opened_at is not None and not machine]


# --- the score -------------------------------------------------------------------------------

AS_OF = T0 + dt.timedelta(days=30)


def test_score_orders_people_as_a_person_would() -> None:
    day = 86_400
    specs = [
        # Pricing twice in the last three days: the hottest.
        {
            "id": "pricing",
            "opened_at": 27 * day,
            "clicks": [(1, 27 * day + 60, 1), (1, 29 * day, 1)],
        },
        # Read the blog yesterday.
        {"id": "blog", "opened_at": 29 * day, "clicks": [(2, 29 * day + 100, 1)]},
        # Clicked pricing a month ago.
        {"id": "old", "opened_at": 100, "clicks": [(1, 200, 1)]},
        # Only opened, recently.
        {"id": "opener", "opened_at": 29 * day},
        # A scanner: every link within seconds (counts nothing).
        {"id": "scanner", "opened_at": 2, "clicks": [(1, 3, 1), (2, 4, 1), (3, 6, 1)]},
        # Apple Mail: opened within a minute, never clicks (counts nothing).
        {"id": "apple", "opened_at": 30},
    ]
    iers, links = org_tables(specs)
    # Give every IER its own send date: the scanner and Apple rules time from it.
    sent = {
        "pricing": 27 * day,
        "blog": 29 * day,
        "old": 0,
        "opener": 29 * day - 3600,
        "scanner": 0,
        "apple": 0,
    }
    iers = iers.with_columns(
        date_sent=pl.col("id").replace_strict(
            {k: at(v) for k, v in sent.items()}, return_dtype=schema.UTC_DATETIME
        )
    )
    flags_ = signal.classify_iers(iers, links)
    scores = signal.engagement_score(flags_, links, as_of=AS_OF).collect()
    order = [r.removeprefix("003") for r in scores["recipient_id"]]
    # Intent outweighs a month of age: pricing a month ago before the blog yesterday.
    assert order[:4] == ["pricing", "old", "blog", "opener"]
    assert set(order[4:]) == {"scanner", "apple"}
    assert scores["engagement_score"][4:].to_list() == [0.0, 0.0]
    explained = dict(zip(order, scores["score_explanation"], strict=True))
    assert explained["pricing"].startswith(
        "clicked Pricing twice in 3 days, last yesterday (intent 3.0)"
    )
    assert (
        explained["scanner"]
        == "not counted: 3 suspected automated clicks, 1 possible machine opens"
    )
    assert explained["apple"] == "not counted: 1 possible machine opens"
    # Deterministic: the same input gives the same scores, row for row.
    again = signal.engagement_score(signal.classify_iers(iers, links), links, as_of=AS_OF).collect()
    assert again.equals(scores)


def test_score_params_are_checked() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        signal.SignalParams(half_life_days=0)
