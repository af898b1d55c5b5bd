"""What people see of a weekly run on the demo: the reports, the index and the emails.

One weekly run (the session's ``demo_week``, shared with test_weekly.py) is checked as a reader
meets it: no polars repr anywhere, no widget output in the HTML, every record link well formed;
in real Chromium each page fits a 1280 px window (an email 600 px) and its screenshot is not
blank; every email parsed with Python's ``email`` has a text part listing the same people as its
HTML part, no script, no external source, and a manager's roll-up sums their reps.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

import nbformat
import polars as pl
import pytest

from ierkit import demo, weekly
from tests.browser_helpers import MIN_COLOURS, chromium_context, png_stats, requires_chromium
from tests.demo_week import DemoWeek

#: What a polars repr leaves in text: a shape line, a dtype row, box-drawing characters.
POLARS_REPR = re.compile(r"shape: \(|\n\s*(?:---\s*){2,}|[\u2500-\u257f]|│ (?:str|i64|u32|f64) ")
RECORD_LINK = re.compile(r'href="(https://[^"]*/lightning/r/[^"]*)"')
WELL_FORMED = re.compile(
    r"https://ierkit-demo\.my\.salesforce\.com/lightning/r/[A-Za-z][A-Za-z0-9_]*/"
    r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?/view"
)


@pytest.fixture
def week(demo_week: DemoWeek) -> weekly.WeeklyResult:
    """The session's weekly run on the demo (tests/conftest.py), whose output folder already
    held an earlier week (2026-W46) that the index must link; shared with test_weekly.py."""
    return demo_week.result


def _messages(result: weekly.WeeklyResult) -> list[EmailMessage]:
    parsed = []
    for path in [*result.messages, *result.team_messages]:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        parsed.append(message)
    return parsed


def test_no_polars_repr_in_any_notebook_page_or_email(week: weekly.WeeklyResult) -> None:
    texts: dict[str, str] = {}
    for path in week.notebooks:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                for value in [output.get("text", ""), *output.get("data", {}).values()]:
                    texts[f"{path.name}"] = texts.get(path.name, "") + str(value)
    for path in [*week.html_reports, week.index, *week.folder.glob("worklists/*.html")]:
        assert path is not None
        texts[path.name] = path.read_text()
    for message in _messages(week):
        for part in message.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                texts[str(message["To"])] = str(part.get_content())
    assert len(texts) > 30
    for name, text in texts.items():
        assert not POLARS_REPR.search(text), (name, POLARS_REPR.search(text))
        assert '"Avery Collins"' not in text and "datetime[" not in text, name


def test_weekly_html_has_no_widget_output_and_no_empty_explore_heading(
    week: weekly.WeeklyResult,
) -> None:
    for path in week.html_reports:
        page = path.read_text()
        assert "application/vnd.jupyter.widget" not in page, path.name
        assert "Explore" not in page and "What if</h3>" not in page, path.name
    executed = nbformat.read(week.folder / "engagement_report.ipynb", as_version=4)
    tagged = [c for c in executed.cells if "widgets" in c.metadata.get("tags", [])]
    assert tagged, "the notebook keeps its widget cells for JupyterLab"


def test_every_record_link_is_well_formed(week: weekly.WeeklyResult) -> None:
    pages = [*week.html_reports, *week.folder.glob("worklists/*.html")]
    links = [link for p in pages for link in RECORD_LINK.findall(p.read_text())]
    assert len(links) > 100
    assert [link for link in links if not WELL_FORMED.fullmatch(link)] == []
    assert {link.split("/")[5] for link in links} >= {"Contact", "Lead", "User"}


def test_index_links_every_report_worklist_and_earlier_week(week: weekly.WeeklyResult) -> None:
    assert week.index is not None
    page = week.index.read_text()
    for report in week.html_reports:
        assert f'href="{report.name}"' in page
    for worklist in week.folder.glob("worklists/*.html"):
        assert f'href="worklists/{worklist.name}"' in page
    assert 'href="../2026-W46/"' in page
    assert "people clicked in the 7 days to 20 Nov" in page


def test_emails_have_a_text_part_with_the_same_people_and_nothing_external(
    week: weekly.WeeklyResult,
) -> None:
    messages = _messages(week)
    reps = [m for m in messages if not str(m["Subject"]).startswith("Team")]
    assert reps and len(messages) > len(reps)  # managers get a roll-up too
    for message in reps:
        assert message.get_content_type() == "multipart/mixed"
        text = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        html = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert "<script" not in html.lower() and "<style" not in html.lower()
        assert not re.search(r"""src=["']?(?:https?:)?//""", html)
        people_html = re.findall(r'/lightning/r/(?:Contact|Lead)/[^"]+"[^>]*>([^<]+)</a>', html)
        assert people_html, message["To"]
        for person in people_html:
            assert person in text, (message["To"], person)
        attachments = list(message.iter_attachments())
        assert [a.get_filename() for a in attachments] == ["worklist-2026-W47.csv"]
        subject = str(message["Subject"]).strip()  # a long subject is folded
        assert re.fullmatch(r"\d+ to follow up this week \(2026-W47\), first .+", subject)


def test_a_managers_rollup_sums_their_reps(week: weekly.WeeklyResult) -> None:
    from ierkit import reports
    from ierkit.orgs import open_org

    org = open_org("demo")
    users = org.table("users").collect()
    worklist = reports.owner_worklist(org, as_of=demo.DEMO_AS_OF, window_days=7)
    rollup = weekly.team_rollup(worklist, users)
    teams, _ = weekly.team_documents(worklist, users, week="2026-W47")
    assert len(teams) == 2
    for team in teams:
        reps = users.filter(pl.col("manager_id") == team.manager_id)["id"].to_list()
        mine = worklist.filter(pl.col("owner_id").is_in(reps))
        assert team.team["to_follow_up"].sum() == mine.filter(~pl.col("followed_up")).height
        assert team.team["followed_up"].sum() == mine.filter(pl.col("followed_up")).height
        assert f"{team.team['to_follow_up'].sum():,} to follow up" in team.subject
    assert rollup["to_follow_up"].sum() + rollup["followed_up"].sum() <= worklist.height


@requires_chromium
def test_pages_fit_the_window_in_chromium(week: weekly.WeeklyResult, tmp_path: Path) -> None:
    assert week.index is not None
    pages = [(p, 1280) for p in [*week.html_reports, week.index]]
    pages += [(sorted(week.folder.glob("worklists/*.html"))[0], 600)]
    with chromium_context(tmp_path / "profile", viewport={"width": 1280, "height": 800}) as ctx:
        for path, width in pages:
            page = ctx.new_page()
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(path.as_uri(), wait_until="load")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, (path.name, scroll)
            shot = tmp_path / f"{path.stem}-{width}.png"
            page.screenshot(path=str(shot))
            stats = png_stats(ctx, shot.read_bytes())
            assert stats.colours > MIN_COLOURS, f"{shot} looks blank: {stats}"
            page.close()


def test_the_index_names_the_reports_time_zone(tmp_path: Path) -> None:
    from ierkit.weekly._index import write_index

    week = tmp_path / "2026-W47"
    week.mkdir()
    page = write_index(
        week,
        week="2026-W47",
        out_root=tmp_path,
        source="demo",
        as_of="2026-11-20",
        headlines=None,
        reports=["engagement_report.html"],
        worklists=[],
        timezone="America/Chicago",
    )
    assert "times in America/Chicago" in page.read_text()


def test_a_reps_rows_put_the_highest_score_first_among_those_waiting() -> None:
    from ierkit.weekly._email import rep_order

    rows = pl.DataFrame(
        {
            "recipient_name": ["Low", "High", "Done", "Mid"],
            "followed_up": [False, False, True, False],
            "engagement_score": [1.0, 8.4, 9.9, 3.1],
            "clicked_at": [dt.datetime(2026, 11, 20, h) for h in (9, 8, 10, 11)],
        }
    )
    assert rep_order(rows)["recipient_name"].to_list() == ["High", "Mid", "Low", "Done"]
