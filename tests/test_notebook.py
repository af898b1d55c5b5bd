"""What the notebooks share: parameters, the cached session, and widgets that redraw in place."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from ierkit import demo, notebook, reports
from ierkit.decision import DecisionThresholds


@pytest.mark.parametrize(
    ("as_of", "source", "expected"),
    [
        ("", "demo", demo.DEMO_AS_OF),
        (None, "demo", demo.DEMO_AS_OF),
        (" 2026-10-01 ", "/some/folder", dt.date(2026, 10, 1)),
        ("", "/no/such/folder", dt.datetime.now(dt.UTC).date()),
        (dt.date(2026, 1, 2), "demo", dt.date(2026, 1, 2)),
    ],
)
def test_report_date(as_of: object, source: str, expected: dt.date) -> None:
    assert notebook.report_date(as_of, source) == expected  # type: ignore[arg-type]


def test_a_demo_folder_reports_at_its_own_date(small_demo_path: Path) -> None:
    assert notebook.report_date("", str(small_demo_path)) == demo.DEMO_AS_OF


def test_report_date_names_the_parameter() -> None:
    with pytest.raises(notebook.ParameterError, match="parameter as_of: '20/11/2026' is not"):
        notebook.report_date("20/11/2026", "demo")


def test_owner_filter() -> None:
    frame = pl.LazyFrame({"owner_name": ["Ann", "Bo", "Ann"], "n": [1, 2, 3]})
    assert notebook.owner_filter(frame, "").collect().height == 3
    assert notebook.owner_filter(frame, notebook.ALL).collect().height == 3
    assert notebook.owner_filter(frame, "Ann").collect()["n"].to_list() == [1, 3]


def _count(widget_html: str) -> int:
    return int(re.search(r"ierkit-worklist-count'>(\d+)<", widget_html).group(1))  # type: ignore[union-attr]


def test_worklist_explorer_redraws_when_the_window_or_owner_changes(demo_path: Path) -> None:
    session = notebook.Session.open(str(demo_path), "")
    explorer = notebook.worklist_explorer(session, window_days=7)
    window, owner, _campaign = explorer.children[0].children
    count = explorer.children[1]

    def expected(days: int, who: str = notebook.ALL) -> int:
        frame = reports.engagement_worklist(session.tables, as_of=session.day, days=days)
        return notebook.owner_filter(frame, who).collect().height

    assert _count(count.value) == expected(7) > 0
    window.value = 30
    assert _count(count.value) == expected(30) > expected(7)
    someone = owner.options[1]
    owner.value = someone
    assert _count(count.value) == expected(30, someone) < expected(30)
    assert "clicked in the 30 days to 2026-11-20" in count.value


def test_decision_explorer_reapplies_thresholds(demo_path: Path) -> None:
    session = notebook.Session.open(str(demo_path), "")
    explorer = notebook.decision_explorer(session, thresholds=DecisionThresholds())
    track_at, skip_under, _window = explorer.children[0].children
    table = explorer.children[1]
    assert "Monthly Newsletter" in table.value
    skipped = "&quot;skip&quot;"
    before = table.value.count(skipped)
    assert before >= 1 and "so reps hardly use these IERs" in table.value  # reasons in full
    skip_under.value = 0.0  # nothing is skipped any more
    track_at.value = 0.0
    assert table.value.count(skipped) == 0


def test_cleanup_target_never_touches_the_shared_demo(
    demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IERKIT_OUTPUTS_DIR", str(tmp_path))
    session = notebook.Session("demo", demo.DEMO_AS_OF)
    assert notebook.cleanup_target(session, execute=False) is session.org
    target = notebook.cleanup_target(session, execute=True)
    assert Path(target.path) == tmp_path / "demo-cleanup-org"  # type: ignore[attr-defined]
    assert Path(target.path) != Path(session.org.path)  # type: ignore[attr-defined]
    assert target.record_counts() == session.org.record_counts()
