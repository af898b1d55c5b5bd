"""Email delivery with a ledger per week: resumable, each message sent once, bounded in time.

Each message the server accepts is appended to the week's ``messages/ledger.jsonl`` (recipient,
Message-ID, time; flushed to disk) before the next one goes. When delivery stops part-way, the
error says who has their email and who does not, and running the week again sends only the
messages the ledger does not list (``resend=True`` sends them all). The one message in flight
when the process is killed (accepted by the server, not yet in the ledger) can go twice; every
other message goes once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import ipaddress
import json
import math
import os
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from ierkit.weekly._documents import Outgoing
from ierkit.weekly._errors import DeliveryError, WeeklyRunError

#: Environment variables that configure SMTP delivery. The password is read, never logged.
SMTP_ENV = {
    "host": "IERKIT_SMTP_HOST",
    "port": "IERKIT_SMTP_PORT",
    "user": "IERKIT_SMTP_USER",
    "password": "IERKIT_SMTP_PASSWORD",
    "sender": "IERKIT_SMTP_FROM",
    "reply_to": "IERKIT_SMTP_REPLY_TO",
    "security": "IERKIT_SMTP_SECURITY",
    "timeout": "IERKIT_SMTP_TIMEOUT",
}

#: Seconds any one SMTP step (connect, TLS handshake, a command) may take before delivery stops.
DEFAULT_SMTP_TIMEOUT = 60.0

#: The week's delivery ledger, inside its ``messages/`` folder.
LEDGER_NAME = "ledger.jsonl"


def _is_loopback(host: str) -> bool:
    """True for a name or address of this machine's loopback interface (no DNS lookup)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP delivery settings, read from the environment (see ``SMTP_ENV``).

    Checked when made: a login over ``security="none"`` is refused unless the host is loopback
    (the password would cross the network in clear), and the sender is one address.
    """

    host: str
    port: int
    sender: str
    user: str | None
    password: str | None = field(repr=False)
    security: str
    timeout: float = DEFAULT_SMTP_TIMEOUT

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "ssl", "none"):
            raise WeeklyRunError(
                f"{SMTP_ENV['security']} must be starttls, ssl or none, not {self.security!r}"
            )
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise WeeklyRunError(
                f"{SMTP_ENV['timeout']} must be a number of seconds above 0, not {self.timeout!r}"
            )
        if self.user and self.security == "none" and not _is_loopback(self.host):
            raise WeeklyRunError(
                f"{SMTP_ENV['security']}=none with {SMTP_ENV['user']} set would send the password "
                f"in clear to {self.host}: use starttls or ssl (a login without encryption is "
                "accepted only to a loopback host such as 127.0.0.1)"
            )
        if (
            any(ch in self.sender for ch in "\r\n")
            or len(email.utils.getaddresses([self.sender])) != 1
            or "@" not in email.utils.parseaddr(self.sender)[1]
        ):
            raise WeeklyRunError(
                f"{SMTP_ENV['sender']} must be one address (name@example.com or "
                f"'RevOps <name@example.com>'), not {self.sender[:80]!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read the settings; ``WeeklyRunError`` names any missing variable (never a value)."""
        env = os.environ if environ is None else environ
        missing = [SMTP_ENV[k] for k in ("host", "sender") if not env.get(SMTP_ENV[k])]
        if missing:
            raise WeeklyRunError(
                "email delivery needs the environment variable(s) " + ", ".join(missing)
            )
        security = env.get(SMTP_ENV["security"], "starttls").lower()
        default_port = {"starttls": 587, "ssl": 465}.get(security, 25)
        port_text = env.get(SMTP_ENV["port"], str(default_port))
        if not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise WeeklyRunError(f"{SMTP_ENV['port']} must be a port number, not {port_text!r}")
        timeout_text = env.get(SMTP_ENV["timeout"], str(DEFAULT_SMTP_TIMEOUT))
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise WeeklyRunError(
                f"{SMTP_ENV['timeout']} must be a number of seconds, not {timeout_text!r}"
            ) from None
        user = env.get(SMTP_ENV["user"]) or None
        password = env.get(SMTP_ENV["password"]) or None
        if user and not password:
            raise WeeklyRunError(f"{SMTP_ENV['user']} is set but {SMTP_ENV['password']} is not")
        return cls(
            env[SMTP_ENV["host"]],
            int(port_text),
            env[SMTP_ENV["sender"]],
            user,
            password,
            security,
            timeout,
        )


#: The sender of messages written for review when no ``IERKIT_SMTP_FROM`` is set.
DEFAULT_SENDER = "ierkit@localhost"


def _one_address(value: str, variable: str) -> str:
    if (
        any(ch in value for ch in "\r\n")
        or len(email.utils.getaddresses([value])) != 1
        or "@" not in email.utils.parseaddr(value)[1]
    ):
        raise WeeklyRunError(
            f"{variable} must be one address (name@example.com or "
            f"'RevOps <name@example.com>'), not {value[:80]!r}"
        )
    return value


def sender_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """``From`` and ``Reply-To`` of the week's messages (``IERKIT_SMTP_FROM``, ``_REPLY_TO``).

    Read also when nothing is sent, so the ``.eml`` files to review carry the real sender.
    """
    env = os.environ if environ is None else environ
    sender = env.get(SMTP_ENV["sender"]) or DEFAULT_SENDER
    reply_to = env.get(SMTP_ENV["reply_to"]) or None
    if sender != DEFAULT_SENDER:
        _one_address(sender, SMTP_ENV["sender"])
    if reply_to:
        _one_address(reply_to, SMTP_ENV["reply_to"])
    return sender, reply_to


def read_ledger(path: Path) -> dict[str, dict[str, str]]:
    """The messages a week's ledger lists as sent, by key; a line cut short by a kill is skipped."""
    if not path.exists():
        return {}
    sent: dict[str, dict[str, str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            sent[entry["key"]] = entry
    return sent


def _append(path: Path, entry: dict[str, str]) -> None:
    """Append one line to the ledger (mode 0600) and flush it to disk."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        torn = end > 0 and os.pread(fd, 1, end - 1) != b"\n"
        os.write(fd, (("\n" if torn else "") + json.dumps(entry) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    """An SMTP connection, encrypted as configured and logged in; every step has the timeout."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, context=context, timeout=settings.timeout
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.user:
            client.login(settings.user, settings.password or "")
    except BaseException:
        client.close()
        raise
    return client


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery did: recipients sent now, sent by an earlier run (skipped)."""

    sent: list[str]
    sent_before: list[str]


def deliver(
    outgoing: Sequence[Outgoing],
    settings: SmtpSettings,
    *,
    ledger: Path | None,
    resend: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> DeliveryReport:
    """Send the messages the ledger does not list yet, recording each as it is accepted.

    Args:
        outgoing: The week's messages, in order.
        settings: Where and how to send.
        ledger: The week's ledger file; None sends everything and records nothing.
        resend: Send every message, even those the ledger lists (recorded again).
        progress: Called with a line for each message refused by the server.

    Returns:
        Who was sent now and who had been sent before.

    Raises:
        DeliveryError: The server stopped accepting messages (or refused some recipients); the
            message names who was sent, who was not, the ledger, and that a rerun sends only
            the rest.
    """
    done = {} if resend or ledger is None else read_ledger(ledger)
    todo = [item for item in outgoing if item.key not in done]
    before = [item.recipient for item in outgoing if item.key in done]
    sent: list[str] = []
    refused: list[str] = []
    if not todo:
        return DeliveryReport(sent, before)
    where = f"{settings.host}:{settings.port}"
    position, current = 0, todo[0]
    try:
        client = _connect(settings)
        try:
            for position, current in enumerate(todo):
                try:
                    client.send_message(current.message, to_addrs=[current.recipient])
                except smtplib.SMTPRecipientsRefused as error:
                    # This address only: the others still go.
                    reason = "; ".join(
                        f"{code} {text.decode(errors='replace')}"
                        for code, text in error.recipients.values()
                    )
                    refused.append(current.recipient)
                    progress(f"warning: {where} refused {current.recipient}: {reason}")
                    continue
                sent.append(current.recipient)
                if ledger is not None:
                    later = [item.recipient for item in todo[position + 1 :]]
                    _record(ledger, current, sent, before, refused + later)
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()  # the messages are accepted; a failed goodbye changes nothing
            client.close()
    except (OSError, smtplib.SMTPException) as error:
        # smtplib's error text never holds the password; keep it that way.
        not_sent = refused + [item.recipient for item in todo[position:]]
        cause = f"{type(error).__name__}: {error}"
        if isinstance(error, TimeoutError) or "timed out" in str(error):
            # Plain SMTP reports a silent server as a closed connection: say what happened.
            cause = (
                f"the server did not answer within {settings.timeout:g} s "
                f"({SMTP_ENV['timeout']}; {cause})"
            )
        raise DeliveryError(
            f"sending email through {where} stopped at {current.recipient} "
            f"({len(before) + position + 1} of {len(outgoing)}): {cause}. "
            + _who(sent, before, not_sent, ledger),
            sent=before + sent,
            not_sent=not_sent,
        ) from error
    if refused:
        raise DeliveryError(
            f"{where} refused {len(refused)} recipient(s). " + _who(sent, before, refused, ledger),
            sent=before + sent,
            not_sent=refused,
        )
    return DeliveryReport(sent, before)


def _record(
    ledger: Path, item: Outgoing, sent: list[str], before: list[str], not_sent: list[str]
) -> None:
    """Append a sent message to the ledger; a ledger that cannot be written stops delivery."""
    entry = {
        "key": item.key,
        "recipient": item.recipient,
        "message_id": str(item.message["Message-ID"]),
        "sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        _append(ledger, entry)
    except OSError as error:
        raise DeliveryError(
            f"{item.recipient} was sent but the ledger {ledger} cannot be written "
            f"({error.strerror or error}); delivery stopped so that no message goes twice. "
            + _who(sent, before, not_sent, None),
            sent=before + sent,
            not_sent=not_sent,
        ) from error


def _who(sent: list[str], before: list[str], not_sent: list[str], ledger: Path | None) -> str:
    parts = [
        f"Sent now ({len(sent)}): {', '.join(sent) or 'none'}",
        f"sent by an earlier run ({len(before)}): {', '.join(before) or 'none'}",
        f"NOT sent ({len(not_sent)}): {', '.join(not_sent)}",
    ]
    rerun = (
        f"Ledger {ledger}; run the week again to send only the {len(not_sent)} not sent"
        if ledger is not None
        else "Nothing was recorded; a rerun sends every message"
    )
    return "; ".join(parts) + f". {rerun}."


def send_messages(messages: Sequence[EmailMessage], settings: SmtpSettings) -> list[str]:
    """Send messages over one SMTP connection, with no ledger; returns the recipients in order.

    Each message goes to the one address in its ``To`` header.
    """
    outgoing = [Outgoing(str(index), str(m["To"]), m) for index, m in enumerate(messages)]
    return deliver(outgoing, settings, ledger=None).sent
