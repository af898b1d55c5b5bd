"""What a rep and a manager read: the worklist email's HTML and plain text, the team roll-up.

Email is not a web page: the HTML is one 600 px table layout with every style inline (Outlook,
Gmail and Apple Mail drop ``<style>`` blocks and ignore most layout CSS), no script and no image;
the plain-text part lists the same people as aligned text. Tables come from ``ierkit.present``
(great_tables with inline CSS), so they read like the weekly reports: names link to the record,
times are in the rep's own time zone (``User.TimeZoneSidKey``) and the zone is named.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import polars as pl

from ierkit import present

#: Width of an email's content: what Outlook, Gmail and Apple Mail show without scrolling.
EMAIL_WIDTH_PX = 600

#: The worklist columns an email shows, in order (those the frame has); the Ids stay for links.
#: Whether a person is a Contact or a Lead is left to the record link: the list must fit 600 px.
EMAIL_COLUMNS = (
    "recipient_name",
    "recipient_id",
    "recipient",
    "company",
    "engagement_score",
    "links",
    "clicked_at",
    "followed_up",
)

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

#: The message frame: one centred table 600 px wide (Outlook needs the width attribute), styles
#: inline. The tables inside come from great_tables, already escaped and inlined.
_EMAIL = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"
 style="background:#f4f4f4;"><tr><td align="center" style="padding:16px 8px;">
<table role="presentation" width="{{ width }}" cellpadding="0" cellspacing="0" border="0"
 style="width:100%;max-width:{{ width }}px;background:#ffffff;border:1px solid #dddddd;
 font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;color:#222222;">
<tr><td style="padding:20px 20px 4px 20px;">
<h1 style="margin:0 0 8px 0;font-size:20px;line-height:26px;">{{ title }}</h1>
{% for line in lines %}<p style="margin:0 0 10px 0;line-height:20px;">{{ line }}</p>{% endfor %}
</td></tr>
<tr><td style="padding:0 12px 12px 12px;">{{ table | safe }}</td></tr>
<tr><td style="padding:8px 20px 20px 20px;font-size:12px;color:#666666;line-height:18px;">
{{ footer }}</td></tr>
</table></td></tr></table></body></html>
"""
)


@dataclass(frozen=True)
class EmailBody:
    """One message's content: subject, HTML and the plain-text version of the same list."""

    subject: str
    html: str
    text: str


def _followed(frame: pl.DataFrame) -> pl.Expr:
    return pl.col("followed_up") if "followed_up" in frame.columns else pl.lit(False)


def rep_order(rows: pl.DataFrame) -> pl.DataFrame:
    """A rep's rows in priority order: not followed up first, then the highest engagement score
    (``ierkit.signal``), then the latest click."""
    order = {"followed_up": False, "engagement_score": True, "clicked_at": True}
    keys = [c for c in order if c in rows.columns]
    if not keys:
        return rows
    return rows.sort(keys, descending=[order[k] for k in keys], nulls_last=True)


def rep_email(
    rows: pl.DataFrame, *, name: str, week: str, timezone: str, instance_url: str | None
) -> EmailBody:
    """A rep's worklist email.

    Args:
        rows: The rep's worklist rows (any worklist columns; those in ``EMAIL_COLUMNS`` show).
        name: The rep's name, for the greeting.
        week: The ISO week label.
        timezone: The rep's time zone (IANA); times are shown there and the zone is named.
        instance_url: The org's My Domain URL for record links; None shows names unlinked.

    Returns:
        "3 to follow up this week (2026-W47), first Northbeam Ltd" and the message parts.
    """
    ordered = rep_order(rows)
    waiting = ordered.filter(~_followed(ordered)).height
    shown = [c for c in EMAIL_COLUMNS if c in ordered.columns] or ordered.columns
    table = ordered.select(shown)
    # The top account: the company of the person at the head of the list (the highest score
    # among those waiting), the one a rep should open first.
    companies = ordered.get_column("company") if "company" in ordered.columns else None
    top = next((c for c in companies if c), None) if companies is not None else None
    subject = f"{waiting:,} to follow up this week ({week})" + (f", first {top}" if top else "")
    look = present.Look(timezone=timezone, instance_url=instance_url, rows=max(ordered.height, 1))
    lines = [
        f"Hello {name}, {ordered.height:,} of your contacts and leads clicked a link in week "
        f"{week}; {waiting:,} of them are waiting for a follow-up.",
        f"Highest engagement score first, those already followed up last; times are in "
        f"{timezone}. The full list is attached as CSV.",
    ]
    html = _EMAIL.render(
        title=f"Your worklist: {waiting:,} to follow up",
        lines=lines,
        table=present.html_table(table, look, inline_css=True, width="100%"),
        footer="Names open the record in Salesforce. Sent by ierkit's weekly run.",
        width=EMAIL_WIDTH_PX,
    )
    text = "\n".join(
        [*lines, "", present.text_table(table, look), "", "Sent by ierkit's weekly run."]
    )
    return EmailBody(subject, html, text)


def team_rollup(worklist: pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    """Per manager and rep: how many to follow up and how many were followed up in the window.

    Args:
        worklist: The week's worklist (``owner_id``, ``followed_up``).
        users: The users table (``id``, ``name``, ``manager_id``).

    Returns:
        ``manager_id``, ``owner_name``, ``owner_id``, ``to_follow_up``, ``followed_up``: every
        rep who reports to a manager (also those with nothing this week), by manager, then the
        most to follow up first.
    """
    counts = worklist.group_by("owner_id").agg(
        to_follow_up=(~_followed(worklist)).sum().cast(pl.Int64),
        followed_up=_followed(worklist).sum().cast(pl.Int64),
    )
    return (
        users.filter(pl.col("manager_id").is_not_null())
        .select("manager_id", owner_name="name", owner_id="id")
        .join(counts, on="owner_id", how="left")
        .with_columns(pl.col("to_follow_up", "followed_up").fill_null(0))
        .sort(
            ["manager_id", "to_follow_up", "owner_name", "owner_id"],
            descending=[False, True, False, False],
        )
    )


def manager_email(
    team: pl.DataFrame, *, name: str, week: str, instance_url: str | None
) -> EmailBody:
    """A manager's team roll-up: per rep, to follow up and followed up; the team total first."""
    waiting = int(team.get_column("to_follow_up").sum())
    done = int(team.get_column("followed_up").sum())
    table = team.select(
        pl.col("owner_name").alias("rep"), "owner_id", "to_follow_up", "followed_up"
    )
    look = present.Look(instance_url=instance_url, rows=max(team.height, 1))
    lines = [
        f"Hello {name}, your team of {team.height:,} has {waiting:,} people to follow up this "
        f"week; {done:,} who clicked in week {week} were followed up.",
    ]
    subject = f"Team worklist {week}: {waiting:,} to follow up across {team.height:,} reps"
    html = _EMAIL.render(
        title=f"Your team: {waiting:,} to follow up",
        lines=lines,
        table=present.html_table(table, look, inline_css=True, width="100%"),
        footer="Each rep has their own list in their email. Sent by ierkit's weekly run.",
        width=EMAIL_WIDTH_PX,
    )
    text = "\n".join([*lines, "", present.text_table(table, look), ""])
    return EmailBody(subject, html, text)
