"""Widgets that redraw in place: explorers over the session's lazy tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ierkit import decision, reports, views, widgets
from ierkit.decision import DecisionThresholds
from ierkit.display import html_table
from ierkit.session import Session


def _count(widget_html: str) -> int:
    return int(re.search(r"ierkit-worklist-count'>(\d+)<", widget_html).group(1))  # type: ignore[union-attr]


def test_worklist_explorer_redraws_when_the_window_or_owner_changes(demo_path: Path) -> None:
    session = Session.open(str(demo_path), "")
    explorer = widgets.worklist_explorer(session, window_days=7)
    window, owner, _campaign = explorer.children[0].children
    count = explorer.children[1]

    def expected(days: int, who: str = views.ALL) -> int:
        frame = reports.engagement_worklist(session.tables, as_of=session.day, days=days)
        return views.owner_filter(frame, who).collect().height

    assert _count(count.value) == expected(7) > 0
    window.value = 30
    assert _count(count.value) == expected(30) > expected(7)
    someone = owner.options[1]
    owner.value = someone
    assert _count(count.value) == expected(30, someone) < expected(30)
    assert "clicked in the 30 days to 2026-11-20" in count.value


def test_decision_explorer_reapplies_thresholds(demo_path: Path) -> None:
    session = Session.open(str(demo_path), "")
    explorer = widgets.decision_explorer(session, thresholds=DecisionThresholds())
    track_at, skip_under, _window = explorer.children[0].children
    table = explorer.children[1]
    assert "Monthly Newsletter" in table.value
    skipped = ">skip<"  # a table cell holding the recommendation
    before = table.value.count(skipped)
    assert before >= 1 and "so reps hardly use these IERs" in table.value  # reasons in full
    skip_under.value = 0.0  # nothing is skipped any more
    track_at.value = 0.0
    assert table.value.count(skipped) == 0


def test_decision_explorer_computes_measures_once_per_window(
    demo_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []
    measure = decision.programme_measures

    def counted(*args: object, **kwargs: object) -> object:
        options = kwargs["options"]
        assert isinstance(options, decision.MeasureOptions)
        calls.append(options.followup_days)
        return measure(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(decision, "programme_measures", counted)
    session = Session.open(str(demo_path), "")
    explorer = widgets.decision_explorer(session, thresholds=DecisionThresholds())
    track_at, skip_under, window = explorer.children[0].children
    skip_under.value, track_at.value = 0.0, 0.0
    assert calls == [7]  # threshold moves re-apply the rules only
    window.value = 14
    window.value = 7
    assert calls == [7, 14]  # each window measured once


def test_decision_explorer_matches_decide(demo_path: Path) -> None:
    session = Session.open(str(demo_path), "")
    chosen = DecisionThresholds(min_actionability=0.05, skip_below=0.01)
    explorer = widgets.decision_explorer(session, thresholds=chosen, followup_days=5)
    decided = decision.decide(
        session.tables,
        as_of=session.as_of,
        thresholds=chosen,
        options=decision.MeasureOptions(followup_days=5),
    )
    table = views.decision_table(decided.collect())
    assert explorer.children[1].value == html_table(table)


def test_slider_thresholds_order_crossed_sliders() -> None:
    base = DecisionThresholds(max_mb_per_followup=2.0, retention_days=30)
    chosen = widgets.slider_thresholds(base, track_at=0.01, skip_under=0.04)
    assert (chosen.min_actionability, chosen.skip_below) == (0.04, 0.01)
    assert (chosen.max_mb_per_followup, chosen.retention_days) == (2.0, 30)
