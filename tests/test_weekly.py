import datetime as dt
import email
import email.policy
import re
import socket
from pathlib import Path

import nbformat
import polars as pl
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from ierkit import weekly
from tests.demo_week import DemoWeek

AS_OF = dt.date(2026, 11, 20)  # ISO week 2026-W47


def _notebook(folder: Path, name: str, body: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('source = "demo"\nas_of = "2000-01-01"\nwindow_days = 7')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), params]
    nb.cells += [nbformat.v4.new_code_cell(code) for code in body]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, folder / name)


def _worklist() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "owner_id": ["005A", "005A", "005B", "005C"],
            "owner_name": ["Ann Able", "Ann Able", "Bo Best", "Cy Nomail"],
            "owner_email": ["ann@example.com", "ann@example.com", "bo@example.com", None],
            "recipient": ["Zed One", "Zed Two", "Yan Three", "Xi Four"],
            "clicked_at": ["2026-11-19", "2026-11-18", "2026-11-17", "2026-11-16"],
        }
    )


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder, "one.ipynb", ["print('report for', source, as_of, window_days)"])
    _notebook(folder, "two.ipynb", ["x = 1", "y = 2", "raise ValueError('planted failure')"])
    return folder


def test_iso_week_label() -> None:
    assert weekly.iso_week_label(AS_OF) == "2026-W47"
    assert weekly.iso_week_label(dt.date(2027, 1, 1)) == "2026-W53"


def test_weekly_run_writes_notebooks_html_and_one_worklist_per_owner(
    suite: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    result = weekly.run_weekly(
        as_of=AS_OF,
        out_root=tmp_path / "out",
        notebooks=["one.ipynb"],
        notebook_folder=suite,
        worklist=_worklist,
        progress=lines.append,
    )
    week = tmp_path / "out" / "2026-W47"
    assert result.folder == week
    executed = nbformat.read(week / "one.ipynb", as_version=4)
    printed = executed.cells[-1].outputs[0]["text"]
    assert printed.strip() == "report for demo 2026-11-20 7"
    html = (week / "one.html").read_text()
    assert "report for demo 2026-11-20 7" in html
    assert "print(" not in html  # code cells are left out
    names = sorted(p.name for p in (week / "worklists").iterdir())
    assert names == [
        "ann-able-005A.csv",
        "ann-able-005A.html",
        "bo-best-005B.csv",
        "bo-best-005B.html",
        "cy-nomail-005C.csv",
        "cy-nomail-005C.html",
    ]
    ann = pl.read_csv(week / "worklists" / "ann-able-005A.csv")
    assert ann["recipient"].to_list() == ["Zed One", "Zed Two"]
    # An owner without an email address gets files but no message.
    assert sorted(p.name for p in (week / "messages").iterdir()) == [
        "ann-able-005A.eml",
        "bo-best-005B.eml",
    ]
    assert any("one.ipynb: done" in line for line in lines)
    assert not any(p.name.startswith(".") for p in (tmp_path / "out").iterdir())


def test_rerun_replaces_the_week_and_a_failure_keeps_the_previous_one(
    suite: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    weekly.run_weekly(
        as_of=AS_OF,
        out_root=out,
        notebooks=["one.ipynb"],
        notebook_folder=suite,
        worklist=_worklist,
        progress=lambda _: None,
    )
    (out / "2026-W47" / "stale.txt").write_text("from an older run")
    weekly.run_weekly(
        as_of=AS_OF,
        out_root=out,
        notebooks=["one.ipynb"],
        notebook_folder=suite,
        worklist=_worklist,
        progress=lambda _: None,
    )
    assert not (out / "2026-W47" / "stale.txt").exists()
    before = sorted(p.name for p in (out / "2026-W47").rglob("*"))

    with pytest.raises(weekly.WeeklyRunError) as caught:
        weekly.run_weekly(
            as_of=AS_OF,
            out_root=out,
            notebooks=["one.ipynb", "two.ipynb"],
            notebook_folder=suite,
            worklist=_worklist,
            progress=lambda _: None,
        )
    message = str(caught.value)
    assert "two.ipynb: cell In [5] failed with ValueError: planted failure" in message
    kept = [p for p in out.iterdir() if p.name.startswith("2026-W47.failed-")]
    assert len(kept) == 1 and (kept[0] / "two.ipynb").exists()
    assert str(kept[0] / "two.ipynb") in message
    # The previous complete week is untouched.
    assert sorted(p.name for p in (out / "2026-W47").rglob("*")) == before


class _Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[email.message.EmailMessage] = []

    def handle_message(self, message) -> None:  # type: ignore[no-untyped-def]
        self.received.append(
            email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        )


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    inbox = _Inbox()
    with socket.socket() as probe:  # a free loopback port for the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_email_delivers_each_owner_only_their_worklist(
    suite: Path, tmp_path: Path, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    controller, inbox = smtp_server
    port = controller.port
    env = {
        "IERKIT_SMTP_HOST": "127.0.0.1",
        "IERKIT_SMTP_PORT": str(port),
        "IERKIT_SMTP_FROM": "revops@example.com",
        "IERKIT_SMTP_SECURITY": "none",
    }
    result = weekly.run_weekly(
        as_of=AS_OF,
        out_root=tmp_path / "out",
        notebooks=["one.ipynb"],
        notebook_folder=suite,
        worklist=_worklist,
        email=True,
        smtp=weekly.SmtpSettings.from_env(env),
        progress=lambda _: None,
    )
    assert result.emailed == ["ann@example.com", "bo@example.com"]
    by_recipient = {m["To"]: m for m in inbox.received}
    assert set(by_recipient) == {"ann@example.com", "bo@example.com"}
    ann = by_recipient["ann@example.com"]
    assert ann["From"] == "revops@example.com"
    assert "2 to follow up" in ann["Subject"]
    html_body = ann.get_body(("html",)).get_content()
    assert "Zed One" in html_body and "Yan Three" not in html_body
    (attachment,) = list(ann.iter_attachments())
    assert attachment.get_filename() == "worklist-2026-W47.csv"
    csv_text = attachment.get_content()
    csv_text = csv_text.decode() if isinstance(csv_text, bytes) else csv_text
    assert "Zed Two" in csv_text and "Yan Three" not in csv_text and "Xi Four" not in csv_text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "IERKIT_SMTP_HOST, IERKIT_SMTP_FROM"),
        (
            {"IERKIT_SMTP_HOST": "h", "IERKIT_SMTP_FROM": "f", "IERKIT_SMTP_USER": "u"},
            "IERKIT_SMTP_USER is set but IERKIT_SMTP_PASSWORD is not",
        ),
        (
            {"IERKIT_SMTP_HOST": "h", "IERKIT_SMTP_FROM": "f", "IERKIT_SMTP_PORT": "x"},
            "IERKIT_SMTP_PORT must be a port number",
        ),
    ],
)
def test_smtp_settings_name_what_is_missing(env: dict[str, str], expected: str) -> None:
    with pytest.raises(weekly.WeeklyRunError, match=expected):
        weekly.SmtpSettings.from_env(env)


def test_smtp_password_never_in_repr_or_errors() -> None:
    secret = "Sup3r-Secret-Pa55word-7731"
    settings = weekly.SmtpSettings.from_env(
        {
            "IERKIT_SMTP_HOST": "127.0.0.1",
            "IERKIT_SMTP_PORT": "9",
            "IERKIT_SMTP_FROM": "f@x.org",
            "IERKIT_SMTP_USER": "u",
            "IERKIT_SMTP_PASSWORD": secret,
            "IERKIT_SMTP_SECURITY": "none",
        }
    )
    assert secret not in repr(settings)
    with pytest.raises(weekly.WeeklyRunError) as caught:
        weekly.send_messages(
            [
                weekly.build_message(
                    sender="f@x.org",
                    recipient="a@x.org",
                    subject="s",
                    html_body="<p>x</p>",
                    csv_name="w.csv",
                    csv_bytes=b"a\n",
                )
            ],
            settings,
        )
    assert "127.0.0.1:9" in str(caught.value) and secret not in str(caught.value)


def test_weekly_run_on_the_demo_org_produces_every_file(
    demo_week: DemoWeek, demo_path: Path
) -> None:
    from ierkit import demo, reports
    from ierkit.orgs import LocalOrg

    # The shared run (tests/conftest.py) started in an empty working folder with a relative
    # source and output, as typed on the command line.
    result = demo_week.result
    # The kernels' own log lines reach the run's stderr: nothing alarming in them.
    for noise in ("KeyboardInterrupt caught in kernel", "TCP without encryption", "Traceback"):
        assert noise not in demo_week.output
    week = demo_week.workdir / "outputs" / weekly.iso_week_label(demo.DEMO_AS_OF)
    assert result.folder == week
    # Every table a page offers for download is in the week's folder.
    linked = [
        (page.name, href)
        for page in week.glob("*.html")
        for href in re.findall(r'href="([^":]+\.csv)"', page.read_text())
    ]
    assert {href for _, href in linked} >= {"worklist.csv", "link_interest.csv"}
    assert [link for link in linked if not (week / link[1]).is_file()] == []
    # Nothing left in the working folder or beside the notebooks (kernel sockets, tables).
    assert demo_week.workdir_after == ["outputs"]
    assert demo_week.packaged_after == demo_week.packaged_before
    for name in weekly.WEEKLY_NOTEBOOKS:
        executed = nbformat.read(week / name, as_version=4)
        errors = [
            o
            for c in executed.cells
            if c.cell_type == "code"
            for o in c.outputs
            if o.output_type == "error"
        ]
        assert errors == [], name
        page = (week / name).with_suffix(".html").read_text()
        assert "<img" in page or name == "sync_health.ipynb"  # charts are embedded images
        assert "import polars" not in page  # no code cells
        # Opens offline and loads nothing from anywhere: no CDN script, style or module.
        for loader in ('src="http', "src='http", 'href="http', 'import("http', "url(http"):
            assert [
                line for line in page.splitlines() if loader in line and "<a " not in line
            ] == [], (name, loader)
        assert "cdnjs" not in page and "unpkg.com" not in page, name
    expected = reports.owner_worklist(LocalOrg(demo_path), as_of=demo.DEMO_AS_OF, window_days=7)
    per_owner = expected.group_by("owner_id").len()
    csvs = sorted((week / "worklists").glob("*.csv"))
    assert len(csvs) == per_owner.height > 1
    for path in csvs:
        owner_id = path.stem.rsplit("-", 1)[1]
        rows = pl.read_csv(path)
        want = expected.filter(pl.col("owner_id") == owner_id)
        # A rep's file holds exactly that rep's recipients.
        assert sorted(rows["ier_id"].to_list()) == sorted(want["ier_id"].to_list())
    with_email = expected.filter(pl.col("owner_email").is_not_null())["owner_id"].n_unique()
    assert len(result.messages) == with_email


def test_without_an_extract_sync_health_is_skipped_and_said(
    tmp_path: Path, small_demo_path: Path
) -> None:
    import shutil

    shutil.copytree(small_demo_path, tmp_path / "org", ignore=shutil.ignore_patterns("*.zip"))
    lines: list[str] = []
    folder = tmp_path / "nb"
    folder.mkdir()
    for name in ("sync_health.ipynb", "one.ipynb"):
        _notebook(folder, name, ["print('ran', source)"])
    result = weekly.run_weekly(
        source=str(tmp_path / "org"),
        as_of=AS_OF,
        out_root=tmp_path / "out",
        notebooks=["sync_health.ipynb", "one.ipynb"],
        notebook_folder=folder,
        worklist=_worklist,
        progress=lines.append,
    )
    assert [p.name for p in result.notebooks] == ["one.ipynb"]
    assert any("sync_health.ipynb: skipped, no tracking extract" in line for line in lines)


def test_a_source_without_users_runs_with_a_clear_warning(
    tmp_path: Path, small_demo_path: Path
) -> None:
    import shutil

    org = tmp_path / "org"
    shutil.copytree(small_demo_path, org, ignore=shutil.ignore_patterns("users.parquet"))
    lines: list[str] = []
    result = weekly.run_weekly(
        source=str(org), as_of=AS_OF, out_root=tmp_path / "out", notebooks=[], progress=lines.append
    )
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == result.warnings
    assert warnings[0] == (
        f"warning: source {str(org)!r} has no users table: worklist rows have no owner "
        "and no one can be emailed"
    )
    assert "has an email address (is the source's users table missing or empty?)" in warnings[1]
    assert result.messages == [] and result.worklists
    log = (result.folder / weekly.LOG_NAME).read_text()
    assert all(warning in log for warning in warnings)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--resend"], "--resend needs --email"),
        (["--lock-wait", "nan"], "--lock-wait must be 0 or more seconds, not nan"),
        (["--lock-wait", "-1"], "--lock-wait must be 0 or more seconds"),
        (["--notebook", "mine.ipynb"], "--notebook mine.ipynb: not a report notebook; choose"),
    ],
)
def test_weekly_command_refuses_options_it_cannot_use(
    args: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ierkit import cli

    with pytest.raises(SystemExit) as stopped:
        cli.main(["weekly", "--source", "demo", "--out", str(tmp_path), *args])
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
