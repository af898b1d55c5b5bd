"""The week's front page: ``outputs/<week>/index.html`` ties the reports and worklists together.

It opens with the week's headline figures, then links every report, every rep's worklist and
every manager's roll-up, and the earlier weeks found beside it in the output folder. Like the
reports it loads nothing from anywhere; its links are relative, so the week folder can be
copied or shared as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import jinja2

from ierkit import _files, present

#: What each report is called on the index, by notebook stem; others are named from the stem.
REPORT_TITLES = {
    "engagement_report": "Engagement report: who to call this week",
    "sync_health": "Sync health: are the IERs arriving?",
    "tracking_decision": "Tracking decision: which programmes are worth an IER",
    "storage_forecast": "Storage forecast: when do IERs fill the org",
    "cleanup_run": "Cleanup run",
}

_WEEK = re.compile(r"\d{4}-W\d{2}")

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ierkit weekly reports, {{ week }}</title>
<style>
  body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222;
         max-width: 1100px; margin: 0 auto; padding: 16px 24px; line-height: 1.45; }
  h1 { font-size: 26px; margin: 8px 0 4px 0; } h2 { font-size: 18px; margin-top: 28px; }
  a { color: {{ link_colour }}; } ul { padding-left: 20px; }
  .people { columns: 3 260px; } .muted { color: #666; font-size: 13px; }
  @media print { body { max-width: none; } a { color: #000; } }
</style></head>
<body>
<h1>Weekly reports, {{ week }}</h1>
<p class="muted">Source {{ source }} · as of {{ as_of }} · times in {{ timezone }}</p>
{% if headlines %}{{ headlines | safe }}{% endif %}
<h2>Reports</h2>
<ul>{% for title, href in reports %}<li><a href="{{ href }}">{{ title }}</a></li>{% endfor %}</ul>
<h2>Worklists per rep ({{ worklists | length }})</h2>
<ul class="people">{% for name, href, csv in worklists %}<li><a href="{{ href }}">{{ name }}</a>
 (<a href="{{ csv }}">CSV</a>)</li>{% endfor %}</ul>
{% if teams %}<h2>Team roll-ups per manager</h2>
<ul>{% for name, href in teams %}<li><a href="{{ href }}">{{ name }}</a></li>{% endfor %}</ul>
{% endif %}
<h2>Earlier weeks</h2>
{% if earlier %}<ul>{% for name, href in earlier %}<li><a href="{{ href }}">{{ name }}</a></li>
{% endfor %}</ul>{% else %}<p class="muted">None yet in this folder.</p>{% endif %}
</body></html>
"""
)


def earlier_weeks(out_root: Path, week: str) -> list[tuple[str, str]]:
    """Week folders beside ``week`` in ``out_root`` that come before it, newest first."""
    found = [p for p in out_root.iterdir() if p.is_dir() and _WEEK.fullmatch(p.name)]
    earlier = sorted((p for p in found if p.name < week), key=lambda p: p.name, reverse=True)
    return [
        (p.name, f"../{p.name}/index.html" if (p / "index.html").exists() else f"../{p.name}/")
        for p in earlier
    ]


def write_index(
    folder: Path,
    *,
    week: str,
    out_root: Path,
    source: str,
    as_of: str,
    headlines: present.Headlines | None,
    reports: Sequence[str],
    worklists: Sequence[tuple[str, str]],
    teams: Sequence[tuple[str, str]] = (),
    timezone: str = "UTC",
) -> Path:
    """Write ``folder/index.html``.

    Args:
        folder: The week's (staging) folder.
        week: The ISO week label.
        out_root: The folder holding every week (earlier weeks are found there).
        source: The source, as the run names it.
        as_of: The report date.
        headlines: The week's headline figures; None leaves them out.
        reports: The report HTML file names, in reading order.
        worklists: Per rep: name and file stem (``worklists/<stem>.html`` and ``.csv``).
        teams: Per manager: name and file stem (``teams/<stem>.html``).
        timezone: The zone the week's reports show times in, named on the page.
    """
    page = _PAGE.render(
        week=week,
        source=source,
        as_of=as_of,
        timezone=timezone,
        link_colour=present.LINK_COLOUR,
        headlines=headlines.html() if headlines else "",
        reports=[(REPORT_TITLES.get(Path(r).stem, Path(r).stem), r) for r in reports],
        worklists=[
            (name, f"worklists/{stem}.html", f"worklists/{stem}.csv") for name, stem in worklists
        ],
        teams=[(name, f"teams/{stem}.html") for name, stem in teams],
        earlier=earlier_weeks(out_root, week),
    )
    target = folder / "index.html"
    _files.write_text(target, page)
    return target
