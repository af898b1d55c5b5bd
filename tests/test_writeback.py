"""The write-back (ierkit/writeback/): summary, plan, run, resume, Tasks; its CLI, check,
metadata and the cleanup's --require-writeback."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest

from ierkit import cli, ids, metadata, prereq, schema, signal
from ierkit.cleanup import CleanupError, cleanup_criteria, run_cleanup
from ierkit.orgs import LocalOrg
from ierkit.writeback import (
    SUMMARY_COLUMNS,
    WritebackError,
    plan_writeback,
    run_writeback,
    summarise,
)
from tests.writeback_org import ROW_LOCK, VALIDATION, FlakyOrg

UTC = dt.UTC
AS_OF = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def t(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def sfid(prefix: str, n: int) -> str:
    return ids.to_18(f"{prefix}{n:012d}")


A, B, C, E = (sfid("003", i) for i in (1, 2, 3, 4))  # E has no IERs
D = sfid("00Q", 1)
OWNER = sfid("005", 1)


def canonical(name: str, columns: dict[str, list[object]]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    spec = schema.table(name)
    full = {c.name: columns.get(c.name, [None] * n) for c in spec.columns}
    return schema.validate(name, pl.DataFrame(full, schema=spec.polars_schema))


def small_tables() -> dict[str, pl.DataFrame]:
    """Four people whose summary is known (see test_writeback_summary_has_the_known_answers)."""
    ier = [
        # id, person, send, email name, sent, opened, unique, total, tracking as of
        (1, A, 1, "November Newsletter", t(11, 1, 10), t(11, 1, 10, 30), 1, 2, None),
        (2, A, 2, "June Newsletter", t(6, 1, 10), t(6, 1, 12), 1, 1, None),
        # Opened 5 s and its only link clicked 6 s after sending: a scanner.
        (3, B, 3, "Webinar Invite", t(11, 10, 10), t(11, 10, 10, 0, 5), 1, 1, None),
        # Opened 30 s after sending with no click: a possible machine open (Apple MPP).
        (4, C, 4, "Product Update", t(11, 15, 9), t(11, 15, 9, 0, 30), 0, 0, None),
        (5, C, 5, "Case Study", t(11, 18, 9), t(11, 18, 15), 0, 0, None),
        # Clicked, no link details: the click is dated by tracking_as_of.
        (6, D, 6, "Trial Nurture", t(11, 19, 8), t(11, 19, 9), 1, 3, t(11, 19, 9, 30)),
        # Sent after the summary's instant: left out.
        (7, A, 7, "December Newsletter", t(11, 21, 8), t(11, 21, 9), 1, 1, None),
    ]
    iers = canonical(
        "individual_email_results",
        {
            "id": [sfid("a0R", r[0]) for r in ier],
            "name": [r[3] for r in ier],
            "contact_id": [r[1] if r[1].startswith("003") else None for r in ier],
            "lead_id": [r[1] if r[1].startswith("00Q") else None for r in ier],
            "email_send_id": [sfid("a0S", r[2]) for r in ier],
            "date_sent": [r[4] for r in ier],
            "date_opened": [r[5] for r in ier],
            "opened": [True] * len(ier),
            "unique_clicks": [r[6] for r in ier],
            "total_clicks": [r[7] for r in ier],
            "tracking_as_of": [r[8] for r in ier],
            "created_date": [r[4] for r in ier],
            "system_modstamp": [r[4] for r in ier],
        },
    )
    link = [
        (1, 1, "Pricing", t(11, 1, 11), 2),
        (2, 2, "Blog", t(6, 2, 9), 1),
        (3, 3, "Register", t(11, 10, 10, 0, 6), 1),
        (4, 7, "Pricing", t(11, 21, 9), 1),
    ]
    links = canonical(
        "individual_links",
        {
            "id": [sfid("a0L", r[0]) for r in link],
            "name": [r[2] for r in link],
            "individual_email_result_id": [sfid("a0R", r[1]) for r in link],
            "link_name": [r[2] for r in link],
            "link_url": [f"https://example.com/{r[2].lower()}" for r in link],
            "last_clicked": [r[3] for r in link],
            "total_clicks": [r[4] for r in link],
            "unique_link_id": [f"u{r[0]}" for r in link],
            "created_date": [r[3] for r in link],
            "system_modstamp": [r[3] for r in link],
        },
    )
    people = [A, B, C, E]
    contacts = canonical(
        "contacts",
        {
            "id": people,
            "first_name": ["Ada", "Ben", "Cleo", "Eve"],
            "last_name": ["Lovelace", "Scanner", "Opens", "Quiet"],
            "owner_id": [OWNER] * 4,
            "created_date": [t(1, 1)] * 4,
            "system_modstamp": [t(1, 1)] * 4,
        },
    )
    leads = canonical(
        "leads",
        {
            "id": [D],
            "first_name": ["Dan"],
            "last_name": ["Trial"],
            "owner_id": [OWNER],
            "created_date": [t(1, 1)],
            "system_modstamp": [t(1, 1)],
        },
    )
    return {
        "individual_email_results": iers,
        "individual_links": links,
        "contacts": contacts,
        "leads": leads,
        "tasks": schema.TASKS.empty(),
    }


def small_org(folder: Path) -> LocalOrg:
    org = LocalOrg(folder)
    for name, frame in small_tables().items():
        org.write_table(name, frame)
    return org


def held(org: LocalOrg) -> dict[str, dict[str, object]]:
    """The summary values each Contact and Lead holds, by Id."""
    frames = [org.table(t).select("id", *SUMMARY_COLUMNS) for t in ("contacts", "leads")]
    return {r.pop("id"): r for r in pl.concat(frames).collect().iter_rows(named=True)}


def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def expected_score(clicks: list[tuple[float, int, dt.datetime]], opens: list[dt.datetime]) -> float:
    """The score formula of ierkit.signal (weights and half-life are its defaults)."""
    p = signal.SignalParams()

    def decay(when: dt.datetime) -> float:
        return float(0.5 ** ((AS_OF - when).total_seconds() / 86_400 / p.half_life_days))

    total = sum(p.click_weight * w * min(n, 3) * decay(when) for w, n, when in clicks)
    return round(total + sum(p.open_weight * decay(when) for when in opens), 2)


# --- the summary ------------------------------------------------------------------------------


def test_writeback_summary_has_the_known_answers(tmp_path: Path) -> None:
    org = small_org(tmp_path / "org")
    got = {r.pop("recipient_id"): r for r in summarise(org, AS_OF).collect().iter_rows(named=True)}
    assert set(got) == {A, B, C, D}  # E has no IERs
    assert got[A] == {
        "engagement_last_open": t(11, 1, 10, 30),
        "engagement_last_human_click": t(11, 1, 11),
        # Two clicks on Pricing in the window; the June Blog click is older than 90 days.
        "engagement_human_clicks_90d": 2,
        "engagement_score": expected_score(
            [(3.0, 2, t(11, 1, 11)), (0.5, 1, t(6, 2, 9))], [t(11, 1, 10), t(6, 1, 10)]
        ),
        "engagement_last_link": "Pricing",
        "engagement_summary_as_of": AS_OF,
    }
    # B's open and click are a scanner's: nothing human to summarise.
    assert got[B] == {
        "engagement_last_open": None,
        "engagement_last_human_click": None,
        "engagement_human_clicks_90d": 0,
        "engagement_score": 0.0,
        "engagement_last_link": None,
        "engagement_summary_as_of": AS_OF,
    }
    # C's first open was a machine's; the second, six hours after sending, a person's.
    assert got[C]["engagement_last_open"] == t(11, 18, 15)
    assert got[C]["engagement_score"] == expected_score([], [t(11, 18, 9)])
    # D clicked three times; without link details the click is dated by tracking_as_of.
    assert got[D]["engagement_last_human_click"] == t(11, 19, 9, 30)
    assert got[D]["engagement_human_clicks_90d"] == 3
    assert got[D]["engagement_last_link"] is None
    # The score is the reports' score (one concept, one place).
    tables = small_tables()
    flags = signal.classify_iers(
        tables["individual_email_results"].lazy(), tables["individual_links"].lazy()
    )
    scores = signal.engagement_score(flags, tables["individual_links"].lazy(), as_of=AS_OF)
    for person, score in scores.select("recipient_id", "engagement_score").collect().iter_rows():
        assert got[person]["engagement_score"] == score


def test_writeback_summary_cuts_times_to_the_millisecond(tmp_path: Path) -> None:
    org = small_org(tmp_path / "org")
    instant = AS_OF + dt.timedelta(microseconds=123_456)
    row = summarise(org, instant).filter(pl.col("recipient_id") == A).collect().row(0, named=True)
    assert row["engagement_summary_as_of"] == AS_OF + dt.timedelta(microseconds=123_000)


# --- plan, dry run, execute -------------------------------------------------------------------


def test_writeback_dry_run_writes_nothing(tmp_path: Path) -> None:
    org = small_org(tmp_path / "org")
    before = tree_hash(org.path)
    result = run_writeback(org, as_of=AS_OF, tasks=True, ledger_dir=tmp_path / "runs")
    assert tree_hash(org.path) == before
    assert not (tmp_path / "runs").exists()
    assert result.plan is not None and result.plan.changed == {"contacts": 3, "leads": 1}
    assert result.plan.tasks is not None and result.plan.tasks.height == 2
    text = str(result)
    assert "Contacts: 3 to write, 0 unchanged (of 3 with IERs)" in text
    assert "Tasks: 2 to create" in text
    assert "Lead Dan Trial: last open none -> 2026-11-19 09:00 UTC" in text
    assert "Dry run: nothing was written" in text


def test_writeback_execute_writes_the_summary_then_a_second_run_writes_nothing(
    tmp_path: Path,
) -> None:
    org = small_org(tmp_path / "org")
    first = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    assert first.written == {"contacts": 3, "leads": 1}
    expected = {r.pop("recipient_id"): r for r in summarise(org, AS_OF).collect().to_dicts()}
    values = held(org)
    assert {k: values[k] for k in expected} == expected
    assert values[E] == dict.fromkeys(SUMMARY_COLUMNS)  # no IERs: left alone
    second = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    assert second.written == {"contacts": 0, "leads": 0}
    assert second.unchanged == {"contacts": 3, "leads": 1}
    assert plan_writeback(org, as_of=AS_OF).changed == {"contacts": 0, "leads": 0}
    # A later instant changes the summary (and the decaying score): written again.
    assert plan_writeback(org, as_of=AS_OF + dt.timedelta(days=1)).changed["contacts"] == 3


class _Caching(LocalOrg):
    """An org that keeps the tables it read until ``refresh``, as ``SalesforceOrg`` does."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.cached: dict[str, pl.DataFrame] = {}

    def table(self, name: str) -> pl.LazyFrame:
        if name not in self.cached:
            self.cached[name] = super().table(name).collect()
        return self.cached[name].lazy()

    def refresh(self) -> None:
        self.cached.clear()


def test_writeback_second_run_in_one_session_reads_the_org_again(tmp_path: Path) -> None:
    small_org(tmp_path / "org")
    org = _Caching(tmp_path / "org")
    first = run_writeback(org, as_of=AS_OF, execute=True, tasks=True, ledger_dir=tmp_path / "r")
    assert first.written == {"contacts": 3, "leads": 1, "tasks": 2}
    again = run_writeback(org, as_of=AS_OF, execute=True, tasks=True, ledger_dir=tmp_path / "r")
    assert again.written == {"contacts": 0, "leads": 0, "tasks": 0}
    assert run_writeback(org, as_of=AS_OF, tasks=True).plan.changed == {"contacts": 0, "leads": 0}


def test_writeback_cli_dry_run_then_execute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = small_org(tmp_path / "org")
    base = ["writeback", "--source", str(org.path), "--as-of", "2026-11-20T12:00"]
    assert cli.main(base) == 0
    out = capsys.readouterr().out
    assert "Contacts: 3 to write" in out and "Dry run" in out
    assert held(org)[A]["engagement_score"] is None
    runs = tmp_path / "runs"
    assert cli.main([*base, "--execute", "--run-id", "wb1", "--ledger-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "Contacts: 3 written, 0 already up to date, 0 failed" in out
    assert f"Ledger: {runs / 'wb1'}" in out
    assert (runs / "wb1" / "ledger.jsonl").is_file()
    assert held(org)[A]["engagement_last_link"] == "Pricing"
    # The same run id again reports the finished run.
    assert cli.main([*base, "--execute", "--run-id", "wb1", "--ledger-dir", str(runs)]) == 0
    assert "Contacts: 3 written" in capsys.readouterr().out


def test_writeback_cli_refuses_the_shared_demo_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["writeback", "--source", "demo", "--execute"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "copy it first" in err


def test_writeback_resumed_run_keeps_its_instant(tmp_path: Path) -> None:
    org = small_org(tmp_path / "org")
    run_writeback(org, as_of=AS_OF, execute=True, run_id="r", ledger_dir=tmp_path / "runs")
    with pytest.raises(WritebackError, match="resume it without --as-of"):
        run_writeback(
            org,
            as_of=AS_OF + dt.timedelta(days=1),
            execute=True,
            run_id="r",
            ledger_dir=tmp_path / "runs",
        )


# --- failures, retries, crashes ---------------------------------------------------------------


def test_writeback_partial_failures_are_retried_once_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_org(tmp_path / "org")
    FlakyOrg.set_faults(tmp_path / "org", always=[C], once=[A])
    org = FlakyOrg(tmp_path / "org")
    result = run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    # The row lock passed the second time; the validation rule failed twice and is listed.
    assert result.failures.rows() == [("contacts", C, VALIDATION)]
    assert sorted(org.attempts) == sorted([A, A, B, C, C, D])
    assert sorted(org.writes) == sorted([A, B, D])
    assert held(org)[C]["engagement_summary_as_of"] is None
    assert result.written == {"contacts": 2, "leads": 1}
    text = str(result)
    assert f"  {C} (contacts): {VALIDATION}" in text
    assert "Contacts: 2 written, 0 already up to date, 1 failed" in text
    failures = pl.read_csv(result.folder / "failures.csv") if result.folder else None
    assert failures is not None and failures.rows() == [("contacts", C, VALIDATION)]
    assert ROW_LOCK not in text


def test_writeback_cli_lists_failures_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    small_org(tmp_path / "org")
    FlakyOrg.set_faults(tmp_path / "org", always=[C])
    monkeypatch.setattr("ierkit.orgs.open_org", lambda source: FlakyOrg(source))
    runs = str(tmp_path / "runs")
    code = cli.main(
        ["writeback", "--source", str(tmp_path / "org"), "--execute", "--ledger-dir", runs]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "Failed after one retry (record Id: Salesforce's error):" in out
    assert f"  {C} (contacts): {VALIDATION}" in out


def _worker(org: Path, runs: Path, run_id: str, kind: str, crash: str | None, *extra: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("IERKIT_CRASH_AT", None)
    if crash:
        env["IERKIT_CRASH_AT"] = crash
    done = subprocess.run(
        [sys.executable, "-m", "tests.writeback_org", str(org), str(runs), run_id, kind, *extra],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


@pytest.mark.parametrize(
    ("kind", "crash"),
    [
        # The org has the chunk (a Bulk job), the ledger its reference: finish_write collects it.
        ("flaky", "writeback/write:contacts:2/submitted"),
        # The org carried the chunk out; the ledger never heard the results.
        ("flaky", "writeback/write:contacts:2/written"),
        # An atomic write (a local org, no reference): the diff shows what is already written.
        ("local", "writeback/write:contacts:2/written"),
        # Killed before the chunk reached the org.
        ("flaky", "writeback/write:leads:1/started"),
    ],
)
def test_writeback_sigkill_mid_write_resumes_and_writes_every_record_once(
    tmp_path: Path, kind: str, crash: str
) -> None:
    org_dir, runs = tmp_path / "org", tmp_path / "runs"
    org = small_org(org_dir)
    tables = small_tables()
    more = [sfid("003", 10 + i) for i in range(3)]  # more contacts: three chunks of two
    extra_iers = canonical(
        "individual_email_results",
        {
            "id": [sfid("a0R", 10 + i) for i in range(3)],
            "contact_id": more,
            "email_send_id": [sfid("a0S", 5)] * 3,
            "date_sent": [t(11, 18, 9)] * 3,
            "date_opened": [t(11, 18, 16)] * 3,
            "opened": [True] * 3,
            "created_date": [t(11, 18, 9)] * 3,
            "system_modstamp": [t(11, 18, 9)] * 3,
        },
    )
    org.write_table(
        "individual_email_results", pl.concat([tables["individual_email_results"], extra_iers])
    )
    people = tables["contacts"].head(1).with_columns(pl.lit(None, pl.String).alias("first_name"))
    org.write_table(
        "contacts",
        pl.concat([tables["contacts"], *(people.with_columns(id=pl.lit(p)) for p in more)]),
    )
    expected = summarise(org, org.data_as_of()).collect()
    assert _worker(org_dir, runs, "crash-run", kind, crash) == -9  # SIGKILLed
    assert _worker(org_dir, runs, "crash-run", kind, None) == 0
    values = held(LocalOrg(org_dir))
    for row in expected.to_dicts():
        assert values[row.pop("recipient_id")] == row
    if kind == "flaky":
        writes = FlakyOrg(org_dir).writes
        assert sorted(writes) == sorted(expected.get_column("recipient_id").to_list())
    # Nothing left to write.
    assert plan_writeback(LocalOrg(org_dir), as_of=org.data_as_of()).changed == {
        "contacts": 0,
        "leads": 0,
    }


def test_writeback_tasks_one_per_person_and_day_never_duplicated(tmp_path: Path) -> None:
    org = small_org(tmp_path / "org")
    # A's Task for the Pricing click exists already (a rep logged it, or an earlier run).
    org.insert(
        "tasks",
        pl.DataFrame(
            {
                "who_id": [A],
                "subject": ["Clicked Pricing in November Newsletter"],
                "activity_date": [dt.date(2026, 11, 1)],
            }
        ),
    )
    result = run_writeback(org, as_of=AS_OF, execute=True, tasks=True, ledger_dir=tmp_path / "r")
    assert result.written["tasks"] == 1
    tasks = org.table("tasks").sort("who_id").collect()
    assert tasks.select("who_id", "subject", "activity_date", "owner_id", "status").rows() == [
        (A, "Clicked Pricing in November Newsletter", dt.date(2026, 11, 1), None, None),
        (D, "Clicked a link in Trial Nurture", dt.date(2026, 11, 19), OWNER, "Completed"),
    ]
    assert all(i.startswith("00T") and ids.is_valid_id(i) for i in tasks.get_column("id"))
    again = run_writeback(org, as_of=AS_OF, execute=True, tasks=True, ledger_dir=tmp_path / "r")
    assert again.written["tasks"] == 0
    assert org.table("tasks").collect().height == 2


def test_writeback_tasks_resume_after_a_kill_without_duplicates(tmp_path: Path) -> None:
    org_dir, runs = tmp_path / "org", tmp_path / "runs"
    small_org(org_dir)
    crash = "writeback/write:tasks:1/written"
    assert _worker(org_dir, runs, "t", "flaky", crash, "--tasks") == -9
    assert _worker(org_dir, runs, "t", "flaky", None, "--tasks") == 0
    tasks = LocalOrg(org_dir).table("tasks").collect()
    assert tasks.height == 2
    assert len(FlakyOrg(org_dir).writes) == 4 + 2  # four people, two Tasks, each once


# --- the local org's writes -------------------------------------------------------------------


def test_writeback_local_org_update_results_follow_salesforce(tmp_path: Path) -> None:
    org = small_org(tmp_path / "org")
    unknown = sfid("003", 99)
    result = org.update(
        "contacts",
        pl.DataFrame(
            {"id": [A, unknown, "not-an-id", A, B], "engagement_score": [1.5, 2.0, 3.0, 4.0, None]}
        ),
    )
    assert result.rows() == [
        (A, True, None),
        (unknown, False, "INVALID_CROSS_REFERENCE_KEY: invalid cross reference id"),
        ("not-an-id", False, "MALFORMED_ID: Id is not a Salesforce Id"),
        (A, False, "DUPLICATE_VALUE: the same Id twice in one request"),
        (B, True, None),
    ]
    assert org.table("contacts").select("id").collect().get_column("id").to_list() == [A, B, C, E]
    assert held(org)[A]["engagement_score"] == 1.5
    with pytest.raises(Exception, match="no column nonsense"):
        org.update("contacts", pl.DataFrame({"id": [A], "nonsense": [1]}))


# --- cleanup --require-writeback --------------------------------------------------------------


def test_writeback_required_by_cleanup_refuses_then_allows(tmp_path: Path) -> None:
    org = small_org(tmp_path / "org")
    criteria = cleanup_criteria(0, as_of=dt.date(2026, 11, 20))  # every IER sent by then
    archive = tmp_path / "archive"
    with pytest.raises(CleanupError, match=r"4 people \(6 of the selected IERs\)") as refused:
        run_cleanup(org, archive=archive, criteria=criteria, execute=True, require_writeback=True)
    assert A in str(refused.value) and "ierkit writeback --execute" in str(refused.value)
    assert org.table("individual_email_results").collect().height == 7
    run_writeback(org, as_of=AS_OF, execute=True, ledger_dir=tmp_path / "runs")
    result = run_cleanup(
        org, archive=archive, criteria=criteria, execute=True, require_writeback=True
    )
    assert result.failures is None or result.failures.height == 0
    assert org.table("individual_email_results").collect().height == 1  # the one sent later
    # The summary stays on the record after its IERs are gone.
    assert held(org)[A]["engagement_last_link"] == "Pricing"


def test_writeback_required_by_cleanup_cli_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = small_org(tmp_path / "org")
    args = ["cleanup", "--source", str(org.path), "--retention-days", "0", "--as-of"]
    args += ["2026-11-20", "--archive", str(tmp_path / "a"), "--require-writeback"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--require-writeback: 4 people" in err


# --- metadata and check -----------------------------------------------------------------------

NS = "{http://soap.sforce.com/2006/04/metadata}"


def test_writeback_metadata_fields_and_permission_set_follow_the_schema(tmp_path: Path) -> None:
    metadata.write_project(tmp_path / "project")
    source = tmp_path / "project" / "force-app" / "main" / "default"
    expected = {
        "Ierkit_Last_Email_Open__c": ("DateTime", None, None, None),
        "Ierkit_Last_Human_Click__c": ("DateTime", None, None, None),
        "Ierkit_Human_Clicks_90d__c": ("Number", "6", "0", None),
        "Ierkit_Engagement_Score__c": ("Number", "8", "2", None),
        "Ierkit_Last_Link_Clicked__c": ("Text", None, None, "255"),
        "Ierkit_Engagement_As_Of__c": ("DateTime", None, None, None),
    }
    for table in (schema.CONTACTS, schema.LEADS):
        names = {c.sf_field for c in table.columns if c.name.startswith("engagement_")}
        assert names == set(expected)
        found = {}
        for path in (source / "objects" / table.sobject / "fields").glob("*.field-meta.xml"):
            root = ET.parse(path).getroot()
            assert root.tag == f"{NS}CustomField"
            name = root.findtext(f"{NS}fullName")
            assert path.name == f"{name}.field-meta.xml"
            assert 0 < len(root.findtext(f"{NS}label") or "") <= 40
            found[name] = tuple(
                root.findtext(f"{NS}{tag}") for tag in ("type", "precision", "scale", "length")
            )
        assert found == expected
    permset = ET.parse(
        source / "permissionsets" / f"{metadata.WRITEBACK_PERMISSION_SET}.permissionset-meta.xml"
    ).getroot()
    editable = {
        p.findtext(f"{NS}field")
        for p in permset.findall(f"{NS}fieldPermissions")
        if p.findtext(f"{NS}editable") == "true"
    }
    assert editable == {f"{o}.{f}" for o in ("Contact", "Lead") for f in expected}
    shipped = metadata.packaged_files(["writeback-fields"])
    assert {k: v.decode() for k, v in shipped.items()} == metadata.render_writeback()


def test_writeback_metadata_command_names_both_permission_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["metadata", "--out", str(tmp_path / "md")]) == 0
    out = capsys.readouterr().out
    for permission_set in (metadata.PERMISSION_SET, metadata.WRITEBACK_PERMISSION_SET):
        assert f"sf org assign permset --name {permission_set} " in out
    fields = tmp_path / "md" / "force-app" / "main" / "default" / "objects" / "Lead" / "fields"
    assert (fields / "Ierkit_Engagement_Score__c.field-meta.xml").is_file()


class _Described(LocalOrg):
    """A local org that answers describe as told: fields missing, or not editable."""

    def __init__(self, path: Path, *, exists: bool | None, writable: bool | None) -> None:
        super().__init__(path)
        self.exists, self.writable = exists, writable

    def has_field(self, sobject: str, path: str) -> bool | None:
        return self.exists

    def field_writable(self, sobject: str, field_name: str) -> bool | None:
        return self.writable


@pytest.mark.parametrize(
    ("exists", "writable", "status", "detail"),
    [
        (True, True, "pass", "all 6 exist and can be written"),
        (False, None, "fail", "missing: Ierkit_Last_Email_Open__c"),
        (True, False, "fail", "this user cannot edit: Ierkit_Last_Email_Open__c"),
        (True, None, "cannot tell", "the fields exist; whether this user can edit them"),
        (None, None, "cannot tell", "needs describe calls"),
    ],
)
def test_writeback_check_says_whether_the_fields_exist_and_are_writable(
    tmp_path: Path, exists: bool | None, writable: bool | None, status: str, detail: str
) -> None:
    small_org(tmp_path / "org")
    org = _Described(tmp_path / "org", exists=exists, writable=writable)
    result = prereq.check_prerequisites(org, as_of=AS_OF)
    for sobject in ("Contact", "Lead"):
        row = result.filter(pl.col("check") == f"write-back fields on {sobject}").row(0, named=True)
        assert row["status"] == status
        assert row["detail"].startswith(detail)
        if status == "fail":
            assert "`ierkit metadata --out DIR` then `sf project deploy start`" in row["fix"]
