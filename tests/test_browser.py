"""Real-browser tests: the engagement report in JupyterLab, and the weekly run's offline HTML.

Both drive Debian's Chromium through Playwright (no browser download); they are skipped with a
reason where ``chromium`` is not installed. Each screenshot is kept in the test's tmp_path.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ierkit import views
from ierkit.session import Session
from tests.browser_helpers import (
    MIN_COLOURS,
    JupyterLabServer,
    chromium_context,
    jupyterlab_server,
    png_stats,
    requires_chromium,
)
from tests.demo_week import DemoWeek

pytestmark = [requires_chromium, pytest.mark.slow]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REPORT = "engagement_report.ipynb"

#: Milliseconds Playwright waits for one step in JupyterLab. Generous for a loaded 2-core
#: machine; the whole JupyterLab test still ends well within 90 s when something hangs, because
#: only the notebook run can take that long.
STEP_MS = 30_000
#: Milliseconds the whole notebook may take to run in the kernel.
RUN_ALL_MS = 75_000

#: Selector of cell outputs that show a traceback (JupyterLab renders errors as stderr text).
_TRACEBACK = ".jp-OutputArea-output[data-mime-type$='stderr']"

#: True once every code cell's prompt shows an execution count (``[12]:``, not ``[ ]:`` or
#: ``[*]:``), or a cell has failed (Run All stops there, so waiting longer would only time out).
_ALL_CELLS_RAN_JS = (
    """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .map((p) => p.textContent.trim());
  const failed = [...document.querySelectorAll("TRACEBACK_SELECTOR")]
    .some((o) => o.textContent.includes('Traceback'));
  return failed || (prompts.length > 0 && prompts.every((p) => /^\\[\\d+\\]:$/.test(p)));
}"""
).replace("TRACEBACK_SELECTOR", _TRACEBACK)


def expected_worklist_count(window_days: int) -> int:
    """The explorer's count as the package computes it (every owner, every campaign)."""
    session = Session.open("demo", "")
    return views.worklist_with_campaign(session, window_days=window_days).collect().height


@pytest.fixture
def lab(demo_path: Path, tmp_path: Path) -> Iterator[JupyterLabServer]:
    """JupyterLab serving a temporary copy of notebooks/ (nothing is written into the repo).

    ``demo_path`` builds the cached demo first, so the kernel only reads it.
    """
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    state = tmp_path / "jupyter"
    state.mkdir()
    with jupyterlab_server(root, state) as server:
        yield server


def test_engagement_report_explorer_redraws_the_count_in_jupyterlab(
    lab: JupyterLabServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    expected = {7: expected_worklist_count(7), 30: expected_worklist_count(30)}
    # The demo has more clicks in 30 days than in 7, so a count that did not redraw fails below.
    assert expected[30] > expected[7] > 0

    with chromium_context(tmp_path / "profile", viewport={"width": 1400, "height": 1000}) as ctx:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.set_default_timeout(STEP_MS)
        page.goto(lab.lab_url(REPORT))
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        # The kernel named in the notebook (python3) has started and is idle.
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()

        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        page.wait_for_function(_ALL_CELLS_RAN_JS, timeout=RUN_ALL_MS, polling=250)
        errors = page.locator(_TRACEBACK, has_text="Traceback")
        if errors.count():
            raise AssertionError(f"a cell failed in JupyterLab: {errors.first.text_content()}")

        count = page.locator(".ierkit-worklist-count")
        count.scroll_into_view_if_needed()
        # text_content, not inner_text: JupyterLab skips rendering cells outside the viewport
        # (content-visibility), and inner_text of an unrendered element is empty.
        assert int(count.text_content() or "") == expected[7]

        slider = page.locator(".widget-slider", has_text="Window (days)")
        handle = slider.locator("[role=slider]")
        assert handle.get_attribute("aria-valuetext") == "7"
        # Type the new value into the slider's readout, as a user would.
        readout = slider.locator(".widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("30")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "([n]) => document.querySelector('.ierkit-worklist-count').textContent.trim() === n",
            arg=[str(expected[30])],
        )
        assert handle.get_attribute("aria-valuetext") == "30"
        assert int(count.text_content() or "") == expected[30]
        assert "in the 30 days" in (page.locator(".widget-html", has=count).text_content() or "")

        # The kernel has finished redrawing the table too before the screenshot.
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
        shot = tmp_path / "jupyterlab-explorer.png"
        page.screenshot(path=str(shot))
        stats = png_stats(ctx, shot.read_bytes())
    assert (stats.width, stats.height) == (1400, 1000)
    assert stats.colours > MIN_COLOURS, f"{shot} looks blank: {stats}"
    assert time.monotonic() - started < 90


@pytest.fixture
def weekly_html(demo_week: DemoWeek) -> Path:
    """The engagement report's HTML from the session's weekly run on the demo (conftest.py)."""
    (report,) = [p for p in demo_week.result.html_reports if p.name == "engagement_report.html"]
    return report


def test_weekly_html_report_renders_every_chart_offline(weekly_html: Path, tmp_path: Path) -> None:
    refused: list[tuple[str, str]] = []

    def refuse_network(route: object) -> None:
        request = route.request  # type: ignore[attr-defined]
        if request.url.startswith(("file:", "data:")):
            route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append((request.resource_type, request.url))
            route.abort()  # type: ignore[attr-defined]

    with chromium_context(tmp_path / "profile", viewport={"width": 1280, "height": 900}) as ctx:
        ctx.route("**/*", refuse_network)
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto(weekly_html.as_uri(), wait_until="load")

        images = page.locator("img")
        assert images.count() >= 3, "the engagement report has at least three charts"
        for index in range(images.count()):
            image = images.nth(index)
            image.scroll_into_view_if_needed()
            natural = image.evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight]")
            source = image.get_attribute("src") or ""
            assert natural[0] and natural[1] > 0 and natural[2] > 0, (
                f"chart {index} did not render offline: {source[:80]!r}"
            )
            # Embedded in the file, not fetched from anywhere.
            assert source.startswith("data:image/png;base64,"), source[:80]
        # Nothing the report shows was refused (the template's optional scripts may be).
        assert not [url for kind, url in refused if kind in ("image", "stylesheet", "font")]

        # The report has no code cells (markdown cells keep their rendered "input" area).
        assert page.locator(".jp-CodeCell").count() > 0
        assert page.locator(".jp-CodeCell:not(.jp-mod-noInput)").count() == 0
        assert page.locator(".jp-CodeCell .jp-InputArea, .jp-InputPrompt").count() == 0
        text = page.locator("body").inner_text()
        assert "Engagement report" in text and "Engagement worklist" in text
        for code in ("import polars", "from ierkit import", "notebook.Session.open"):
            assert code not in text

        shot = tmp_path / "engagement_report.png"
        page.screenshot(path=str(shot), full_page=True)
        stats = png_stats(ctx, shot.read_bytes())
    assert stats.height > 900, f"the full page is longer than one screen: {stats}"
    assert stats.colours > MIN_COLOURS, f"{shot} looks blank: {stats}"
