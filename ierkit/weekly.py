"""The unattended weekly run: report notebooks, offline HTML, and one worklist per rep.

``run_weekly`` executes the suite's report notebooks with papermill into
``outputs/<ISO week>/``: each executed notebook, an HTML version without code cells (charts are
embedded as images, so it opens offline), and the engagement worklist split per owner as CSV and
HTML, with one email message per owner (``.eml`` files to review; sent over SMTP with
``email=True``).

The week's folder is built in a staging folder beside it and swapped in when complete, so a reader
never sees a half-written week. A failing notebook stops the run with ``WeeklyRunError`` naming
the notebook and the cell, and its executed copy is kept in a ``<week>.failed-<time>`` folder.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib.resources
import os
import re
import shutil
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import polars as pl

from ierkit import _files
from ierkit.errors import IerkitError

#: The report notebooks of the weekly run, in the order a RevOps lead reads them.
WEEKLY_NOTEBOOKS: tuple[str, ...] = (
    "engagement_report.ipynb",
    "sync_health.ipynb",
    "tracking_decision.ipynb",
    "storage_forecast.ipynb",
)

#: Environment variables that configure SMTP delivery. The password is read, never logged.
SMTP_ENV = {
    "host": "IERKIT_SMTP_HOST",
    "port": "IERKIT_SMTP_PORT",
    "user": "IERKIT_SMTP_USER",
    "password": "IERKIT_SMTP_PASSWORD",
    "sender": "IERKIT_SMTP_FROM",
    "security": "IERKIT_SMTP_SECURITY",
}


class WeeklyRunError(IerkitError):
    """The weekly run failed; the message names the notebook or step and what to look at."""


def notebooks_dir() -> Path:
    """The folder of the suite's notebooks.

    An installed wheel ships them as package data (``ierkit/notebooks``, see pyproject.toml's
    hatch ``force-include``); an editable install or a checkout has them in ``notebooks/``
    beside the package.
    """
    packaged = importlib.resources.files("ierkit") / "notebooks"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "notebooks"


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
    emailed: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: dict[str, object],
    *,
    kernel_name: str | None = None,
    execution_timeout: int = 900,
) -> None:
    """Run one notebook with papermill; raise ``WeeklyRunError`` naming the failed cell.

    The executed notebook is written to ``output`` whether or not a cell fails.
    """
    import papermill

    # Pass only the parameters the notebook declares: papermill warns about the others.
    declared = papermill.inspect_notebook(str(notebook))
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={k: v for k, v in parameters.items() if k in declared},
            kernel_name=kernel_name,
            execution_timeout=execution_timeout,
            progress_bar=False,
            cwd=str(notebook.parent),
        )
    except papermill.PapermillExecutionError as error:
        raise WeeklyRunError(
            f"{notebook.name}: cell In [{error.exec_count}] failed with {error.ename}: "
            f"{error.evalue.strip()[:300]}"
        ) from error


def notebook_to_html(notebook: Path, target: Path) -> None:
    """Write ``notebook`` as HTML without its code cells."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True)
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target.write_text(body, encoding="utf-8")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "unknown"


def _frame_html(frame: pl.DataFrame) -> str:
    header = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in frame.rows()
    )
    return f"<table border='1' cellspacing='0' cellpadding='4'><tr>{header}</tr>{rows}</table>"


def flat_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """List columns (the links a recipient clicked) joined with "; ", so CSV can hold them."""
    return frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join("; ")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.List)
    )


def owner_documents(
    worklist: pl.DataFrame, *, week: str
) -> list[tuple[str, str | None, str, pl.DataFrame, str]]:
    """Split a worklist by owner.

    Args:
        worklist: The engagement worklist, collected, with ``owner_id``, ``owner_name`` and
            ``owner_email`` columns.
        week: The ISO week label, for titles.

    Returns:
        One tuple per owner, sorted by owner name: (owner name, owner email, file stem, the
        owner's rows without the owner columns, the HTML page).
    """
    documents = []
    owners = (
        worklist.select("owner_id", "owner_name", "owner_email")
        .unique()
        .sort("owner_name", "owner_id", nulls_last=True)
    )
    for owner_id, owner_name, owner_email in owners.rows():
        name = owner_name or owner_id or "Unassigned"
        rows = flat_columns(
            worklist.filter(pl.col("owner_id").eq_missing(owner_id)).drop(
                "owner_id", "owner_name", "owner_email"
            )
        )
        title = f"Your engagement worklist, week {week}: {len(rows)} recipients to follow up"
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>"
            f"<h2>{html.escape(title)}</h2><p>Hello {html.escape(name)}, these contacts and "
            "leads clicked a link in the period. Times are UTC.</p>"
            f"{_frame_html(rows)}</body></html>"
        )
        documents.append((name, owner_email, f"{_slug(name)}-{owner_id}", rows, page))
    return documents


def build_message(
    *, sender: str, recipient: str, subject: str, html_body: str, csv_name: str, csv_bytes: bytes
) -> EmailMessage:
    """An email with an HTML body and the worklist CSV attached."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content(
        "Your engagement worklist is attached as CSV; open the HTML part to read it."
    )
    message.add_alternative(html_body, subtype="html")
    message.add_attachment(csv_bytes, maintype="text", subtype="csv", filename=csv_name)
    return message


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP delivery settings, read from the environment (see ``SMTP_ENV``)."""

    host: str
    port: int
    sender: str
    user: str | None
    password: str | None = field(repr=False)
    security: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SmtpSettings:
        """Read the settings; ``WeeklyRunError`` names any missing variable (never a value)."""
        env = os.environ if environ is None else environ
        missing = [SMTP_ENV[k] for k in ("host", "sender") if not env.get(SMTP_ENV[k])]
        if missing:
            raise WeeklyRunError(
                "email delivery needs the environment variable(s) " + ", ".join(missing)
            )
        security = env.get(SMTP_ENV["security"], "starttls").lower()
        if security not in ("starttls", "ssl", "none"):
            raise WeeklyRunError(
                f"{SMTP_ENV['security']} must be starttls, ssl or none, not {security!r}"
            )
        default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
        port_text = env.get(SMTP_ENV["port"], str(default_port))
        if not port_text.isdigit():
            raise WeeklyRunError(f"{SMTP_ENV['port']} must be a port number, not {port_text!r}")
        user = env.get(SMTP_ENV["user"]) or None
        password = env.get(SMTP_ENV["password"]) or None
        if user and not password:
            raise WeeklyRunError(f"{SMTP_ENV['user']} is set but {SMTP_ENV['password']} is not")
        return cls(
            env[SMTP_ENV["host"]], int(port_text), env[SMTP_ENV["sender"]], user, password, security
        )


def send_messages(messages: Sequence[EmailMessage], settings: SmtpSettings) -> list[str]:
    """Send messages over one SMTP connection; returns the recipients in order."""
    context = ssl.create_default_context()
    try:
        if settings.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=60)
        with client:
            if settings.security == "starttls":
                client.starttls(context=context)
            if settings.user:
                client.login(settings.user, settings.password or "")
            sent = []
            for message in messages:
                client.send_message(message)
                sent.append(str(message["To"]))
            return sent
    except (OSError, smtplib.SMTPException) as error:
        # The error text from smtplib never contains the password; keep it that way.
        raise WeeklyRunError(
            f"sending email through {settings.host}:{settings.port} failed: "
            f"{type(error).__name__}: {error}"
        ) from error


def run_weekly(
    *,
    source: str = "demo",
    as_of: dt.date,
    out_root: Path = Path("outputs"),
    notebooks: Sequence[str] = WEEKLY_NOTEBOOKS,
    notebook_folder: Path | None = None,
    worklist: Callable[[], pl.DataFrame] | None = None,
    window_days: int = 7,
    extract: str | None = None,
    email: bool = False,
    smtp: SmtpSettings | None = None,
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
        window_days: The worklist's look-back window.
        extract: The Marketing Cloud tracking extract the sync-health notebook matches against;
            the demo's own when None. Without one, a source other than the demo skips that
            notebook (said in the progress lines).
        email: Send each owner their worklist over SMTP (settings from the environment).
        smtp: SMTP settings; read from the environment when None and ``email`` is true.
        kernel_name: Jupyter kernel to run the notebooks with (the notebook's own when None).
        execution_timeout: Seconds a single cell may run before the run fails.
        progress: Called with one line per step.

    Returns:
        The files written.

    Raises:
        WeeklyRunError: A notebook failed (named, with its cell; the executed notebook is
            kept), or email delivery failed (the week's folder is in place by then).
    """
    if email and smtp is None:
        smtp = SmtpSettings.from_env()
    if worklist is None:
        from ierkit.orgs import open_org

        # Fail on a wrong source now, not in the first notebook's fourth cell.
        open_org(source)
    week = iso_week_label(as_of)
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / week
    staging = out_root / f".{week}.staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    result = WeeklyResult(folder=final)
    parameters = {
        "source": str(source),
        "as_of": as_of.isoformat(),
        "window_days": window_days,
        "extract": extract or "",
    }
    source_dir = notebook_folder or notebooks_dir()
    notebooks = [name for name in notebooks if _has_extract(name, source, extract, progress)]
    try:
        for index, name in enumerate(notebooks, start=1):
            started = time.perf_counter()
            progress(f"[{index}/{len(notebooks)}] {name}: running")
            executed = staging / name
            try:
                execute_notebook(
                    source_dir / name,
                    executed,
                    parameters,
                    kernel_name=kernel_name,
                    execution_timeout=execution_timeout,
                )
            except WeeklyRunError as error:
                kept = out_root / f"{week}.failed-{dt.datetime.now():%Y%m%dT%H%M%S}"
                os.replace(staging, kept)
                raise WeeklyRunError(
                    f"{error} (executed notebook kept at {kept / name})"
                ) from error
            report = executed.with_suffix(".html")
            notebook_to_html(executed, report)
            elapsed = time.perf_counter() - started
            result.seconds[name] = elapsed
            progress(f"[{index}/{len(notebooks)}] {name}: done in {elapsed:.1f} s")
        messages = _write_worklists(
            staging, week, worklist or _default_worklist(source, as_of, window_days), smtp
        )
    except BaseException:
        if staging.exists():
            shutil.rmtree(staging)
        raise
    _files.replace_folder(staging, final)
    result.notebooks = sorted(final.glob("*.ipynb"))
    result.html_reports = sorted(final.glob("*.html"))
    result.worklists = sorted((final / "worklists").glob("*"))
    result.messages = sorted((final / "messages").glob("*.eml"))
    progress(f"week {week}: {len(result.worklists) // 2} owner worklists in {final}")
    if email:
        assert smtp is not None
        result.emailed = send_messages(messages, smtp)
        progress(f"emailed {len(result.emailed)} owners through {smtp.host}")
    return result


def _has_extract(
    name: str, source: str, extract: str | None, progress: Callable[[str], None]
) -> bool:
    """False (and a progress line) for the sync-health notebook when there is no extract."""
    if name != "sync_health.ipynb":
        return True
    from ierkit import sync_health

    try:
        sync_health.default_extract(source, extract)
    except IerkitError:
        progress(f"{name}: skipped, no tracking extract for source {source!r} (pass --extract)")
        return False
    return True


def _default_worklist(source: str, as_of: dt.date, window_days: int) -> Callable[[], pl.DataFrame]:
    def build() -> pl.DataFrame:
        from ierkit import reports
        from ierkit.orgs import open_org

        return reports.owner_worklist(open_org(source), as_of=as_of, window_days=window_days)

    return build


def _write_worklists(
    folder: Path,
    week: str,
    worklist: Callable[[], pl.DataFrame],
    smtp: SmtpSettings | None,
) -> list[EmailMessage]:
    frame = worklist()
    lists = folder / "worklists"
    outbox = folder / "messages"
    lists.mkdir()
    outbox.mkdir()
    sender = smtp.sender if smtp else "ierkit@localhost"
    messages = []
    for _name, address, stem, rows, page in owner_documents(frame, week=week):
        csv_path = lists / f"{stem}.csv"
        rows.write_csv(csv_path)
        (lists / f"{stem}.html").write_text(page, encoding="utf-8")
        if not address:
            continue
        message = build_message(
            sender=sender,
            recipient=address,
            subject=f"Engagement worklist {week}: {len(rows)} to follow up",
            html_body=page,
            csv_name=f"worklist-{week}.csv",
            csv_bytes=csv_path.read_bytes(),
        )
        (outbox / f"{stem}.eml").write_bytes(bytes(message))
        messages.append(message)
    return messages
