"""``run_weekly``: one week's folder built aside under a lock, published in one step, delivered.

The week's folder is built in a uniquely named staging folder beside it and swapped in when
complete (``_files.replace_folder``), so a reader never sees a half-written week. One run at a
time writes a week: an exclusive lock on ``.<week>.lock`` in the output folder, held from the
first cleanup to the last email; a second run waits ``lock_wait`` seconds, then stops naming the
holder. Under the lock, a run first clears what a killed run left: staging folders, and the
hidden old copy of the week (put back when a kill came between the swap's two renames).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ierkit import _files, present
from ierkit.errors import IerkitError
from ierkit.orgs import Org, open_org
from ierkit.weekly._delivery import LEDGER_NAME, SmtpSettings, deliver, sender_from_env
from ierkit.weekly._documents import (
    Outgoing,
    OwnerDocument,
    SkippedOwner,
    owner_documents,
    team_documents,
    write_teams,
    write_worklists,
)
from ierkit.weekly._errors import WeeklyRunError
from ierkit.weekly._index import write_index
from ierkit.weekly._notebooks import (
    WEEKLY_NOTEBOOKS,
    execute_notebook,
    notebook_to_html,
    notebooks_dir,
)

#: Seconds a run waits for another run of the same week to finish before it stops.
DEFAULT_LOCK_WAIT = 60.0
#: The week's own log and its list of owners who were not emailed, inside the week's folder.
LOG_NAME = "run.log"
SKIPPED_NAME = "skipped.txt"


def iso_week_label(day: dt.date) -> str:
    """The ISO week a date falls in, as a folder name: ``2026-W47``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class WeeklyResult:
    """What a weekly run produced."""

    folder: Path
    notebooks: list[Path] = field(default_factory=list)
    html_reports: list[Path] = field(default_factory=list)
    worklists: list[Path] = field(default_factory=list)
    messages: list[Path] = field(default_factory=list)
    team_messages: list[Path] = field(default_factory=list)
    index: Path | None = None
    emailed: list[str] = field(default_factory=list)
    emailed_before: list[str] = field(default_factory=list)
    skipped: list[SkippedOwner] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class _WeekLog:
    """Progress lines, shown as they come and kept in the week's ``run.log``."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.lines: list[str] = []
        self.warnings: list[str] = []
        self.path: Path | None = None

    def __call__(self, line: str) -> None:
        self.progress(line)
        if line.startswith("warning:"):
            self.warnings.append(line)
        stamped = f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} {line}"
        self.lines.append(stamped)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as log:
                log.write(stamped + "\n")

    def write_to(self, path: Path) -> None:
        """Write the lines so far to ``path`` and append every later line there."""
        path.write_text("".join(line + "\n" for line in self.lines), encoding="utf-8")
        self.path = path


def recover_week(out_root: Path, week: str, log: Callable[[str], None]) -> None:
    """Clear what killed runs of ``week`` left in ``out_root``; call only under the week's lock.

    A kill between the swap's two renames leaves no week folder and the previous week under a
    hidden ``.<week>.old-*`` name: it is put back. Staging folders and other old copies go.
    """
    if _files.recover_replaced(out_root, name=week):
        log(f"week {week}: put back the previous week's folder (a run was killed while swapping)")
    debris = list(out_root.glob(f".{week}.staging-*"))
    for path in debris:
        shutil.rmtree(path, ignore_errors=True)
    if debris:
        log(f"week {week}: removed {len(debris)} folder(s) left by a killed run")


def run_weekly(
    *,
    source: str = "demo",
    as_of: dt.date,
    out_root: Path = Path("outputs"),
    notebooks: Sequence[str] = WEEKLY_NOTEBOOKS,
    notebook_folder: Path | None = None,
    worklist: Callable[[], pl.DataFrame] | None = None,
    org_context: OrgContext | None = None,
    window_days: int = 7,
    timezone: str = "UTC",
    extract: str | None = None,
    email: bool = False,
    smtp: SmtpSettings | None = None,
    resend: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    kernel_name: str | None = None,
    execution_timeout: int = 900,
    progress: Callable[[str], None] = print,
) -> WeeklyResult:
    """Run the weekly report suite into ``out_root/<ISO week>/``.

    Args:
        source: The org the notebooks read (``demo``, ``salesforce`` or a folder).
        as_of: The report date; the week folder is the ISO week it falls in.
        out_root: Folder that holds one folder per week.
        notebooks: Notebook file names to run, in order.
        notebook_folder: Where the notebooks are; the suite's ``notebooks/`` when None.
        worklist: Returns the collected engagement worklist with owner columns; by default the
            engagement worklist of ``source`` for the ``window_days`` before ``as_of``.
        org_context: The users table (time zones, managers), the instance URL and last week's
            worklist; read from ``source`` when ``worklist`` is None, else none.
        window_days: The worklist's look-back window.
        timezone: The zone the report notebooks show times in (each rep's email uses the
            rep's own ``User.TimeZoneSidKey``).
        extract: The Marketing Cloud tracking extract the sync-health notebook matches against;
            the demo's own when None. Without one, a source other than the demo skips that
            notebook (said in the progress lines).
        email: Send each owner their worklist over SMTP (settings from the environment), except
            the owners the week's delivery ledger lists as sent already.
        smtp: SMTP settings; read from the environment when None and ``email`` is true.
        resend: With ``email``, send every owner their message again, ledger or not.
        lock_wait: Seconds to wait for another run of the same week to finish.
        kernel_name: Jupyter kernel to run the notebooks with (the notebook's own when None).
        execution_timeout: Seconds a single cell may run before the run fails.
        progress: Called with one line per step (warnings start with ``warning:``).

    Returns:
        The files written, who was emailed, and the owners skipped with their reasons.

    Raises:
        WeeklyRunError: A notebook failed (named, with its cell; the executed notebook is
            kept), or email delivery failed (``DeliveryError``: the week's folder is in place by
            then, and the error says who was sent and who was not).
        LockHeldError: Another run of the same week still held its lock after ``lock_wait``.
    """
    if email and smtp is None:
        smtp = SmtpSettings.from_env()
    log = _WeekLog(progress)
    if worklist is None:
        # Fail on a wrong source now, not in the first notebook's fourth cell.
        org = open_org(source)
        if not org.has_table("users"):
            log(
                f"warning: source {source!r} has no users table: worklist rows have no owner "
                "and no one can be emailed"
            )
        worklist = _default_worklist(source, as_of, window_days)
        org_context = org_context or _org_context(org, as_of, window_days)
    sender, reply_to = sender_from_env()
    if smtp is not None:
        sender = smtp.sender
    week = iso_week_label(as_of)
    # Absolute: the notebooks write their tables into the week's folder by this path.
    out_root = Path(out_root).absolute()
    if out_root.exists() and not out_root.is_dir():
        raise WeeklyRunError(f"--out {out_root} is a file; give a folder for the week folders")
    out_root.mkdir(parents=True, exist_ok=True)
    with _files.exclusive_lock(
        out_root / f".{week}.lock", wait=lock_wait, what=f"the week {week} in {out_root}"
    ):
        recover_week(out_root, week, log)
        result, outgoing = _build_and_publish(
            out_root=out_root,
            week=week,
            parameters={
                "source": str(source),
                "as_of": as_of.isoformat(),
                "window_days": window_days,
                "extract": extract or "",
                "timezone": timezone,
            },
            notebooks=[n for n in notebooks if _has_extract(n, source, extract, log)],
            notebook_folder=notebook_folder or notebooks_dir(),
            worklist=worklist,
            context=org_context or OrgContext(),
            sender=sender,
            reply_to=reply_to,
            kernel_name=kernel_name,
            execution_timeout=execution_timeout,
            log=log,
        )
        if email:
            assert smtp is not None
            report = deliver(
                outgoing,
                smtp,
                ledger=result.folder / "messages" / LEDGER_NAME,
                resend=resend,
                progress=log,
            )
            result.emailed, result.emailed_before = report.sent, report.sent_before
            log(
                f"emailed {len(report.sent)} owners through {smtp.host}"
                + (f"; {len(report.sent_before)} had theirs already" if report.sent_before else "")
            )
    return result


def _build_and_publish(
    *,
    out_root: Path,
    week: str,
    parameters: dict[str, object],
    notebooks: list[str],
    notebook_folder: Path,
    worklist: Callable[[], pl.DataFrame],
    context: OrgContext,
    sender: str,
    reply_to: str | None,
    kernel_name: str | None,
    execution_timeout: int,
    log: _WeekLog,
) -> tuple[WeeklyResult, list[Outgoing]]:
    """Build the week in a staging folder and swap it in; the caller holds the week's lock.

    Returns:
        What was written, and the messages to send.
    """
    final = out_root / week
    # Named uniquely, not by PID: containers reuse PIDs, so two runs could share a name.
    staging = out_root / f".{week}.staging-{uuid.uuid4().hex}"
    staging.mkdir(mode=0o700)
    result = WeeklyResult(folder=final)
    try:
        for index, name in enumerate(notebooks, start=1):
            started = time.perf_counter()
            log(f"[{index}/{len(notebooks)}] {name}: running")
            executed = staging / name
            try:
                execute_notebook(
                    notebook_folder / name,
                    executed,
                    # Long tables' full CSVs go beside the report, linked by file name.
                    {**parameters, "tables_dir": str(staging)},
                    kernel_name=kernel_name,
                    execution_timeout=execution_timeout,
                )
            except WeeklyRunError as error:
                kept = out_root / f"{week}.failed-{dt.datetime.now():%Y%m%dT%H%M%S}"
                if kept.exists():
                    kept = kept.with_name(f"{kept.name}-{uuid.uuid4().hex[:6]}")
                _files.make_private(staging)
                os.replace(staging, kept)
                raise WeeklyRunError(
                    f"{error} (executed notebook kept at {kept / name})"
                ) from error
            notebook_to_html(executed, executed.with_suffix(".html"))
            elapsed = time.perf_counter() - started
            result.seconds[name] = elapsed
            log(f"[{index}/{len(notebooks)}] {name}: done in {elapsed:.1f} s")
        frame = worklist()
        users = context.users() if context.users else None
        documents, result.skipped = owner_documents(
            frame, week=week, users=users, instance_url=context.instance_url
        )
        teams, skipped_teams = team_documents(
            frame, users, week=week, instance_url=context.instance_url
        )
        result.skipped += skipped_teams
        for skipped in result.skipped:
            log(f"warning: owner {skipped.name} ({skipped.owner_id}): {skipped.reason}")
        _warn_if_no_one_to_email(frame, documents, log)
        outgoing = write_worklists(staging, week, documents, sender=sender, reply_to=reply_to)
        outgoing += write_teams(staging, teams, sender=sender, reply_to=reply_to)
        write_index(
            staging,
            week=week,
            out_root=out_root,
            source=str(parameters["source"]),
            as_of=str(parameters["as_of"]),
            headlines=_headlines(frame, context, parameters),
            reports=[Path(n).with_suffix(".html").name for n in notebooks],
            worklists=[(d.name, d.stem) for d in documents],
            teams=[(t.name, t.stem) for t in teams],
            timezone=str(parameters["timezone"]),
        )
        _write_skipped(staging / SKIPPED_NAME, result.skipped)
        # The delivery ledger belongs to the week, not to one run: carry it over.
        ledger = final / "messages" / LEDGER_NAME
        if ledger.exists():
            shutil.copy2(ledger, staging / "messages" / LEDGER_NAME)
        log(f"week {week}: {len(documents)} owner worklists in {final}")
        log.write_to(staging / LOG_NAME)
        _files.make_private(staging)
    except BaseException:
        if staging.exists():
            shutil.rmtree(staging)
        raise
    _files.replace_folder(staging, final)
    log.path = final / LOG_NAME
    result.warnings = list(log.warnings)
    result.notebooks = sorted(final.glob("*.ipynb"))
    result.html_reports = sorted(p for p in final.glob("*.html") if p.name != "index.html")
    result.index = final / "index.html"
    result.worklists = sorted((final / "worklists").glob("*"))
    written = sorted((final / "messages").glob("*.eml"))
    result.messages = [p for p in written if not p.name.startswith("team_")]
    result.team_messages = [p for p in written if p.name.startswith("team_")]
    return result, outgoing


def _warn_if_no_one_to_email(
    frame: pl.DataFrame, documents: list[OwnerDocument], log: Callable[[str], None]
) -> None:
    if frame.height and not any(document.email for document in documents):
        log(
            f"warning: none of the {len(documents)} owners of the {frame.height} worklist rows "
            "has an email address (is the source's users table missing or empty?): worklists "
            "written, no email"
        )


def _write_skipped(path: Path, skipped: list[SkippedOwner]) -> None:
    """The week's list of owners not emailed, one a line; the file says so when there is none."""
    lines = [f"{s.name}\t{s.owner_id or '-'}\t{s.reason}" for s in skipped]
    header = "owners not emailed this week (name, owner Id, reason)\n"
    _files.write_text(path, header + "".join(line + "\n" for line in lines or ["(none)"]))


def _has_extract(name: str, source: str, extract: str | None, log: Callable[[str], None]) -> bool:
    """False (and a progress line) for the sync-health notebook when there is no extract."""
    if name != "sync_health.ipynb":
        return True
    from ierkit import sync_health

    try:
        sync_health.default_extract(source, extract)
    except IerkitError:
        log(f"{name}: skipped, no tracking extract for source {source!r} (pass --extract)")
        return False
    return True


@dataclass(frozen=True)
class OrgContext:
    """What the week's emails and index need from the org beside the worklist.

    Attributes:
        users: Returns the users table (``id``, ``name``, ``email``, ``manager_id``,
            ``time_zone``); None: no time zones, no team roll-ups.
        instance_url: The org's My Domain URL for record links.
        previous: Returns the worklist of the window before (headline changes); None: none.
    """

    users: Callable[[], pl.DataFrame] | None = None
    instance_url: str | None = None
    previous: Callable[[], pl.DataFrame] | None = None


def _org_context(org: Org, as_of: dt.date, window_days: int) -> OrgContext:
    def users() -> pl.DataFrame:
        return org.table("users").collect()

    def previous() -> pl.DataFrame:
        from ierkit import clock, reports

        before = clock.end_of_day(as_of) - dt.timedelta(days=window_days)
        return reports.engagement_worklist(org, as_of=before, days=window_days).collect()

    return OrgContext(users if org.has_table("users") else None, org.instance_url, previous)


def _headlines(
    frame: pl.DataFrame, context: OrgContext, parameters: dict[str, object]
) -> present.Headlines | None:
    """The engagement headline for the index, when the worklist has the columns it counts."""
    if not {"recipient_id", "followed_up", "owner_name"} <= set(frame.columns):
        return None
    return present.headlines.engagement(
        frame,
        context.previous() if context.previous else None,
        day=dt.date.fromisoformat(str(parameters["as_of"])),
        window_days=int(str(parameters["window_days"])),
    )


def _default_worklist(source: str, as_of: dt.date, window_days: int) -> Callable[[], pl.DataFrame]:
    def build() -> pl.DataFrame:
        from ierkit import reports
        from ierkit.orgs import open_org

        return reports.owner_worklist(open_org(source), as_of=as_of, window_days=window_days)

    return build
