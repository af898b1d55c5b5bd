"""The rules the notebooks show, out of their cells: worklist, link interest, storage, sync."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from ierkit import reports, views
from ierkit.session import Session


def test_owner_filter() -> None:
    frame = pl.LazyFrame({"owner_name": ["Ann", "Bo", "Ann"], "n": [1, 2, 3]})
    assert views.owner_filter(frame, "").collect().height == 3
    assert views.owner_filter(frame, views.ALL).collect().height == 3
    assert views.owner_filter(frame, "Ann").collect()["n"].to_list() == [1, 3]


def test_worklist_summary_and_by_owner() -> None:
    worklist = pl.DataFrame(
        {"owner_name": ["Ann", "Bo", "Ann", "Cy"], "followed_up": [True, False, False, False]}
    )
    line = views.worklist_summary(worklist, window_days=7, day=dt.date(2026, 11, 20))
    assert line == (
        "Worklist: 4 recipients clicked in the 7 days to 2026-11-20; 3 not yet followed up."
    )
    by_owner = views.worklist_by_owner(worklist).collect()
    assert by_owner.rows() == [("Ann", 2, 1), ("Bo", 1, 1), ("Cy", 1, 1)]
    assert by_owner.columns == ["owner_name", "recipients", "not_followed_up"]


def test_link_interest_window_is_the_librarys_30_days(demo_path: Path) -> None:
    session = Session.open(str(demo_path), "")
    interest = views.recent_link_interest(
        session.tables, pattern="pricing", as_of=session.as_of
    ).collect()
    library = reports.all_reports(session.tables, as_of=session.day)["link_interest"]
    assert views.LINK_INTEREST_DAYS == 30
    assert interest.height > 0
    assert interest.equals(library)
    first = interest.get_column("last_clicked").min()
    assert first is not None and first >= session.as_of - dt.timedelta(days=30)
    line = views.link_interest_summary(interest, pattern="pricing", day=session.day)
    assert line.endswith(f"matching 'pricing' in the 30 days to {session.day}.")


def test_link_interest_of_one_owner(demo_path: Path) -> None:
    session = Session.open(str(demo_path), "")
    every = views.recent_link_interest(session.tables, pattern="pricing", as_of=session.as_of)
    owner = every.collect().get_column("owner_name").drop_nulls()[0]
    mine = views.recent_link_interest(
        session.tables, pattern="pricing", as_of=session.as_of, owner=owner
    ).collect()
    assert 0 < mine.height <= every.collect().height
    assert set(mine.get_column("owner_name")) == {owner}


def test_sync_health_lines() -> None:
    coverage = pl.DataFrame(
        {"status": ["ok", "broken", "ok", "syncing"], "coverage": [1.0, 0.123456, 0.99999, 0.5]}
    )
    assert views.coverage_summary(coverage) == "4 sends: 2 ok, 1 broken, 1 syncing"
    assert views.coverage_table(coverage).get_column("coverage").to_list() == [
        1.0,
        0.1235,
        1.0,
        0.5,
    ]
    fixable = pl.DataFrame({"repaired_key": ["003A", None, "00QB"]})
    assert views.fixable_summary(fixable) == "3 Subscriber Keys to fix; 2 with a repaired key."


def test_decision_table() -> None:
    decisions = pl.DataFrame(
        {
            "programme": ["b", "a"],
            "recommendation": ["skip", "track"],
            "reason": ["x", "y"],
            "n": [1, 2],
        }
    )
    assert views.decision_table(decisions).rows() == [("a", "track", "y"), ("b", "skip", "x")]


def test_automated_clicks_per_company_most_first() -> None:
    clicks = pl.DataFrame(
        {
            "company": ["Acme", "Acme", "Acme", "Globex", None],
            "recipient_id": ["003A", "003A", "003B", "003C", "003D"],
            "send_id": ["a0S1", "a0S2", "a0S1", "a0S1", "a0S1"],
        }
    )
    assert views.automated_by_company(clicks).collect().rows() == [
        ("Acme", 2, 2, 3),
        ("(no company)", 1, 1, 1),
        ("Globex", 1, 1, 1),
    ]
