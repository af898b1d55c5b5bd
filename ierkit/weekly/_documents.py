"""One worklist per owner (CSV and HTML) and one email message each, from owner records that are
checked one by one: a bad record is skipped with its reason, never the whole week.
"""

from __future__ import annotations

import email.errors
import email.utils
import hashlib
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import polars as pl

from ierkit import _csv, _files, present
from ierkit.weekly import _email

#: RFC 5321 allows 256 octets for a path with its angle brackets: 254 for the address itself.
MAX_ADDRESS_LENGTH = 254
#: Characters of an owner's name and of their Id kept in a file name: with the week folder and
#: an extension it stays far below the 255-byte limit of common filesystems.
MAX_NAME_IN_FILE = 60
MAX_ID_IN_FILE = 40
#: Shown for worklist rows whose owner has no name and no Id.
UNASSIGNED = "Unassigned"


@dataclass(frozen=True)
class OwnerDocument:
    """One owner's worklist, ready to write and (with an address) to email.

    Attributes:
        owner_id: The owner's User Id as the source has it (None for rows without an owner).
        name: The name shown in the page ("Unassigned" when there is none).
        email: The validated address, or None when the owner has none (files, no message).
        stem: The file name stem, safe on any filesystem and unique within the week.
        rows: The owner's rows without the owner columns, list columns joined with "; "
            (the CSV).
        page: The HTML page (also the email's HTML body).
        text: The email's plain-text part: the same people as aligned text.
        subject: The email's subject: the count to follow up and the top account.
    """

    owner_id: str | None
    name: str
    email: str | None
    stem: str
    rows: pl.DataFrame
    page: str
    text: str = ""
    subject: str = ""


@dataclass(frozen=True)
class SkippedOwner:
    """An owner whose worklist was not emailed, and why (listed in the week's ``skipped.txt``)."""

    owner_id: str | None
    name: str
    reason: str


class AddressError(ValueError):
    """An owner's email address is not exactly one plain address; the message says why."""


def check_address(value: str) -> str:
    """The address if ``value`` is exactly one plain address (``name@domain``), else raise.

    Salesforce's User.Email holds a bare address, so anything else (a second recipient after a
    comma, a display name, a line break that would start a new header) is refused rather than
    interpreted: ``alex@x, spy@evil`` must never become two recipients.

    Raises:
        AddressError: Saying what is wrong with the value (which is not repeated in full).
    """
    text = value.strip()
    if not text:
        raise AddressError("the email address is empty")
    if any(ch in text for ch in "\r\n\0"):
        raise AddressError("the email address contains a line break or NUL character")
    if not text.isascii():
        # Sending to such an address needs the server's SMTPUTF8 extension, which most lack.
        raise AddressError(f"'{_shorten(text)}' has characters other than ASCII")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise AddressError(f"the email address is {len(text)} characters (at most 254)")
    parsed = email.utils.getaddresses([text])
    if len(parsed) != 1 or not parsed[0][1]:
        raise AddressError(f"'{_shorten(text)}' is not exactly one email address")
    display, spec = parsed[0]
    if display or spec != text:
        raise AddressError(f"'{_shorten(text)}' is not a plain address like name@example.com")
    try:
        address = Address(addr_spec=spec)
    except (ValueError, IndexError, email.errors.HeaderParseError) as error:
        raise AddressError(f"'{_shorten(text)}' is not a valid email address: {error}") from None
    if not address.username or "." not in address.domain:
        raise AddressError(f"'{_shorten(text)}' has no user or no domain like example.com")
    return address.addr_spec


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _slug(text: str, *, limit: int, keep_case: bool = False) -> str:
    """Letters and digits only, runs of anything else as one ``-``, at most ``limit`` long."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")
    slug = (slug if keep_case else slug.lower())[:limit].strip("-")
    return slug or "unknown"


def file_stem(name: str, owner_id: str | None) -> str:
    """A file name stem for an owner: ``<name slug>-<Id>`` (``ann-able-005A``).

    A Salesforce Id is letters and digits and is kept as it is; anything else in an Id (``/``,
    ``..``) is dropped with a short hash of the raw Id added, so that two odd Ids never share a
    file. Very long names are cut.
    """
    raw_id = owner_id or ""
    id_part = re.sub(r"[^A-Za-z0-9]+", "", raw_id)[:MAX_ID_IN_FILE]
    if id_part != raw_id:
        digest = hashlib.sha256(raw_id.encode()).hexdigest()[:8]
        id_part = f"{id_part}{'_' if id_part else ''}{digest}"
    return f"{_slug(name, limit=MAX_NAME_IN_FILE)}-{id_part}"


def flat_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """List columns (the links a recipient clicked) joined with "; ", so CSV can hold them."""
    return frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join("; ")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.List)
    )


def owner_documents(
    worklist: pl.DataFrame,
    *,
    week: str,
    users: pl.DataFrame | None = None,
    instance_url: str | None = None,
) -> tuple[list[OwnerDocument], list[SkippedOwner]]:
    """Split a worklist by owner, checking each owner's record on its own.

    Args:
        worklist: The engagement worklist, collected, with ``owner_id``, ``owner_name`` and
            ``owner_email`` columns.
        week: The ISO week label, for titles.
        users: The users table (``id``, ``time_zone``): each owner's times are shown in their
            own zone; UTC when None or not set (or not a zone Python knows).
        instance_url: The org's My Domain URL for record links.

    Returns:
        The documents, sorted by owner name then Id; and the owners whose address was refused
        (their worklist files are still written, with no message).
    """
    documents: list[OwnerDocument] = []
    skipped: list[SkippedOwner] = []
    owners = (
        worklist.select("owner_id", "owner_name", "owner_email")
        .unique()
        .sort("owner_name", "owner_id", "owner_email", nulls_last=True)
    )
    zones = user_zones(users)
    stems: set[str] = set()
    seen_ids: set[str | None] = set()
    for owner_id, owner_name, owner_email in owners.rows():
        if owner_id in seen_ids:
            continue  # one owner with two names or addresses in the source: the first one wins
        seen_ids.add(owner_id)
        name = " ".join(str(owner_name or owner_id or UNASSIGNED).split()) or UNASSIGNED
        stem = file_stem(name, owner_id)
        while stem in stems:  # two odd Ids can still meet after slugging: number them
            stem = f"{stem}-{len(stems)}"
        stems.add(stem)
        address = None
        if owner_email is not None and str(owner_email).strip():
            try:
                address = check_address(str(owner_email))
            except AddressError as error:
                skipped.append(SkippedOwner(owner_id, name, f"{error}; no email written"))
        own = _email.rep_order(worklist.filter(pl.col("owner_id").eq_missing(owner_id)))
        rows = flat_columns(own.drop("owner_id", "owner_name", "owner_email"))
        body = _email.rep_email(
            own,
            name=name,
            week=week,
            timezone=zones.get(owner_id, "UTC"),
            instance_url=instance_url,
        )
        documents.append(
            OwnerDocument(owner_id, name, address, stem, rows, body.html, body.text, body.subject)
        )
    return documents, skipped


def user_zones(users: pl.DataFrame | None) -> dict[str | None, str]:
    """Each user's time zone by Id, where it is set and known (others read UTC)."""
    if users is None or "time_zone" not in users.columns:
        return {}
    zones: dict[str | None, str] = {}
    for user_id, zone_name in users.select("id", "time_zone").rows():
        try:
            present.zone(str(zone_name))
        except present.PresentError:
            continue  # a zone Python does not know: UTC, named as such in the email
        zones[user_id] = str(zone_name)
    return zones


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    html_body: str,
    csv_name: str | None = None,
    csv_bytes: bytes | None = None,
    text_body: str | None = None,
    reply_to: str | None = None,
) -> EmailMessage:
    """An email: multipart/alternative (plain text, then HTML), the worklist CSV attached.

    ``recipient`` and ``sender`` must be plain addresses (``check_address``); the Message-ID is
    set here so the delivery ledger can record it.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Message-ID"] = email.utils.make_msgid(
        domain=email.utils.parseaddr(sender)[1].rpartition("@")[2] or None
    )
    message.set_content(text_body or "Your engagement worklist is attached as CSV.")
    message.add_alternative(html_body, subtype="html")
    if csv_bytes is not None and csv_name:
        message.add_attachment(csv_bytes, maintype="text", subtype="csv", filename=csv_name)
    return message


@dataclass(frozen=True)
class Outgoing:
    """A message written to the week's ``messages/`` folder, waiting to be sent.

    Attributes:
        key: What the delivery ledger knows this message by: the owner's file stem and address
            (stable across reruns of the week).
        recipient: The address.
        message: The message.
    """

    key: str
    recipient: str
    message: EmailMessage


def write_worklists(
    folder: Path,
    week: str,
    documents: list[OwnerDocument],
    *,
    sender: str,
    reply_to: str | None = None,
) -> list[Outgoing]:
    """Write each owner's CSV and HTML into ``folder/worklists`` and their message (``.eml``)
    into ``folder/messages``; return the messages to send, in owner order.
    """
    lists = folder / "worklists"
    outbox = folder / "messages"
    lists.mkdir(mode=0o700, exist_ok=True)
    outbox.mkdir(mode=0o700, exist_ok=True)
    outgoing = []
    for document in documents:
        csv_bytes = _csv.csv_for_people(document.rows)
        _files.write_bytes(lists / f"{document.stem}.csv", csv_bytes)
        _files.write_text(lists / f"{document.stem}.html", document.page)
        if document.email is None:
            continue
        message = build_message(
            sender=sender,
            recipient=document.email,
            subject=document.subject,
            html_body=document.page,
            text_body=document.text,
            csv_name=f"worklist-{week}.csv",
            csv_bytes=csv_bytes,
            reply_to=reply_to,
        )
        _files.write_bytes(outbox / f"{document.stem}.eml", bytes(message))
        outgoing.append(Outgoing(f"{document.stem} {document.email}", document.email, message))
    return outgoing


@dataclass(frozen=True)
class TeamDocument:
    """A manager's team roll-up, ready to write and (with an address) to email.

    Attributes:
        manager_id: The manager's User Id.
        name: The manager's name.
        email: The validated address, or None (files, no message).
        stem: The file name stem (``team_<name>-<Id>``: a rep's stem never has ``_``).
        team: Per rep: ``owner_name``, ``owner_id``, ``to_follow_up``, ``followed_up``.
        page: The HTML page (also the email's HTML body).
        text: The plain-text part.
        subject: The subject.
    """

    manager_id: str
    name: str
    email: str | None
    stem: str
    team: pl.DataFrame
    page: str
    text: str
    subject: str


def team_documents(
    worklist: pl.DataFrame,
    users: pl.DataFrame | None,
    *,
    week: str,
    instance_url: str | None = None,
) -> tuple[list[TeamDocument], list[SkippedOwner]]:
    """One roll-up per manager (``User.ManagerId``) of the reps who report to them.

    Returns:
        The documents by manager name, and managers whose address was refused.
    """
    if users is None or "manager_id" not in users.columns or "owner_id" not in worklist.columns:
        return [], []
    rollup = _email.team_rollup(worklist, users)
    documents: list[TeamDocument] = []
    skipped: list[SkippedOwner] = []
    managers = (
        users.join(rollup.select("manager_id").unique(), left_on="id", right_on="manager_id")
        .select("id", "name", "email")
        .sort("name", "id", nulls_last=True)
    )
    for manager_id, manager_name, manager_email in managers.rows():
        name = " ".join(str(manager_name or manager_id).split())
        address = None
        if manager_email is not None and str(manager_email).strip():
            try:
                address = check_address(str(manager_email))
            except AddressError as error:
                skipped.append(SkippedOwner(manager_id, name, f"{error}; no team email written"))
        team = rollup.filter(pl.col("manager_id") == manager_id).drop("manager_id")
        body = _email.manager_email(team, name=name, week=week, instance_url=instance_url)
        documents.append(
            TeamDocument(
                manager_id,
                name,
                address,
                f"team_{file_stem(name, manager_id)}",
                team,
                body.html,
                body.text,
                body.subject,
            )
        )
    return documents, skipped


def write_teams(
    folder: Path,
    documents: list[TeamDocument],
    *,
    sender: str,
    reply_to: str | None = None,
) -> list[Outgoing]:
    """Write each manager's roll-up into ``folder/teams`` and message into ``folder/messages``."""
    if not documents:
        return []
    teams = folder / "teams"
    outbox = folder / "messages"
    teams.mkdir(mode=0o700, exist_ok=True)
    outbox.mkdir(mode=0o700, exist_ok=True)
    outgoing = []
    for document in documents:
        _files.write_text(teams / f"{document.stem}.html", document.page)
        if document.email is None:
            continue
        message = build_message(
            sender=sender,
            recipient=document.email,
            subject=document.subject,
            html_body=document.page,
            text_body=document.text,
            reply_to=reply_to,
        )
        _files.write_bytes(outbox / f"{document.stem}.eml", bytes(message))
        outgoing.append(Outgoing(f"{document.stem} {document.email}", document.email, message))
    return outgoing
