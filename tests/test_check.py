"""Prerequisites check (ierkit/prereq.py) on a local org and on the Salesforce-like server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from ierkit import cli, prereq, schema
from ierkit.orgs import LocalOrg
from tests.sfserver import serve
from tests.test_salesforce import T0, canonical, connect, fake, jwt_env, sfid

AS_OF = T0 + dt.timedelta(days=5)


def org_tables(*, tracking_off: bool = False, orphan_send: bool = False) -> dict[str, pl.DataFrame]:
    """Two tracked sends with IERs; optionally a send with tracking off or one without IERs."""
    names = ["Newsletter - Oct", "Nurture - 1", "Webinar Follow-up - 1"]
    sends = canonical(
        "email_sends",
        {
            "id": [sfid("a0S", i) for i in range(3)],
            "email_name": names,
            "date_sent": [T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)],
            "individual_tracking_disabled": [False, False, tracking_off],
            "number_sent": [3, 2, 1],
            "created_date": [T0] * 3,
            "system_modstamp": [T0] * 3,
        },
    )
    send_of = [0, 0, 0, 1, 1] + ([] if orphan_send or tracking_off else [2])
    n = len(send_of)
    iers = canonical(
        "individual_email_results",
        {
            "id": [sfid("a0R", i) for i in range(n)],
            "contact_id": [sfid("003", i) for i in range(n)],
            "email_send_id": [sfid("a0S", s) for s in send_of],
            "date_sent": [T0 + dt.timedelta(days=s) for s in send_of],
            "tracking_as_of": [T0 + dt.timedelta(days=s, hours=1) for s in send_of],
            "created_date": [T0 + dt.timedelta(days=s, hours=1) for s in send_of],
            "system_modstamp": [T0] * n,
        },
    )
    contacts = canonical(
        "contacts",
        {
            "id": [sfid("003", i) for i in range(6)],
            "created_date": [T0] * 6,
            "system_modstamp": [T0] * 6,
        },
    )
    return {"email_sends": sends, "individual_email_results": iers, "contacts": contacts}


def local(tmp_path: Path, tables: dict[str, pl.DataFrame]) -> LocalOrg:
    org = LocalOrg(tmp_path / "org")
    for name, frame in tables.items():
        org.write_table(name, frame)
    return org


def status(result: pl.DataFrame) -> dict[str, str]:
    return dict(zip(result.get_column("check"), result.get_column("status"), strict=True))


def sent_events(keys: list[str | None]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {"event_type": ["Sent"] * len(keys) + ["Open"], "subscriber_key": [*keys, "x@y.com"]}
    )


def test_local_org_runs_data_checks_and_cannot_tell_describe_checks(tmp_path: Path) -> None:
    result = prereq.check_prerequisites(local(tmp_path, org_tables()), as_of=AS_OF)
    assert result.schema == prereq.CHECK_SCHEMA
    assert status(result) == {
        "Marketing Cloud Connect objects readable": "cannot tell",
        "IER fields readable": "cannot tell",
        "IER related list on Contact page layouts": "cannot tell",
        "IER related list on Lead page layouts": "cannot tell",
        "individual tracking on recent sends": "pass",
        "IERs arriving for recent sends": "pass",
        "Subscriber Keys are 18-character Contact or Lead Ids": "cannot tell",
        # A local org writes every canonical column, the summary's included.
        "write-back fields on Contact": "pass",
        "write-back fields on Lead": "pass",
    }
    assert (
        result.filter(pl.col("status") == "cannot tell").get_column("fix").str.len_chars().min() > 0
    )


@pytest.mark.parametrize(
    ("options", "check", "detail"),
    [
        (
            {"tracking_off": True},
            "individual tracking on recent sends",
            "1 of 3 recent sends had it off: Webinar Follow-up - 1",
        ),
        (
            {"orphan_send": True},
            "IERs arriving for recent sends",
            "1 of 3 tracked sends older than 2:00:00 have no IERs: Webinar Follow-up - 1",
        ),
    ],
)
def test_data_checks_fail_with_the_send_named(
    tmp_path: Path, options: dict[str, bool], check: str, detail: str
) -> None:
    result = prereq.check_prerequisites(local(tmp_path, org_tables(**options)), as_of=AS_OF)
    row = result.filter(pl.col("check") == check).row(0, named=True)
    assert (row["status"], row["detail"]) == ("fail", detail)
    assert row["fix"]


def test_send_inside_the_sync_grace_is_not_yet_missing(tmp_path: Path) -> None:
    as_of = T0 + dt.timedelta(days=2, hours=1)  # the third send went out an hour ago
    result = prereq.check_prerequisites(local(tmp_path, org_tables(orphan_send=True)), as_of=as_of)
    assert status(result)["IERs arriving for recent sends"] == "pass"


def test_default_as_of_of_a_local_org_is_its_last_activity(tmp_path: Path) -> None:
    # Judged from the wall clock (years later) every send would be too old to count; judged
    # from the last change in the org (an IER updated two days after the third send), the
    # third send is past the grace period and has no IERs.
    tables = org_tables(orphan_send=True)
    tables["individual_email_results"] = tables["individual_email_results"].with_columns(
        system_modstamp=pl.when(pl.col("id") == sfid("a0R", 0))
        .then(pl.lit(T0 + dt.timedelta(days=4)))
        .otherwise(pl.col("system_modstamp"))
    )
    result = prereq.check_prerequisites(local(tmp_path, tables))
    assert status(result)["IERs arriving for recent sends"] == "fail"
    tables["individual_email_results"] = org_tables(orphan_send=True)["individual_email_results"]
    result = prereq.check_prerequisites(local(tmp_path / "b", tables))
    assert status(result)["IERs arriving for recent sends"] == "pass"  # sent just now


def test_subscriber_keys(tmp_path: Path) -> None:
    org = local(tmp_path, org_tables())
    good = prereq.check_prerequisites(
        org, events=sent_events([sfid("003", 1), sfid("003", 2)]), as_of=AS_OF
    )
    key_check = "Subscriber Keys are 18-character Contact or Lead Ids"
    assert status(good)[key_check] == "pass"
    bad = prereq.check_prerequisites(
        org,
        events=sent_events([sfid("003", 1), "a@b.com", sfid("003", 2)[:15], sfid("003", 99)]),
        as_of=AS_OF,
    )
    row = bad.filter(pl.col("check") == key_check).row(0, named=True)
    assert row["status"] == "fail"
    assert row["detail"] == "3 of 4 sent rows are not: email: 1, id15: 1, unknown_id: 1"
    assert "18-character" in row["fix"]


def test_salesforce_org_runs_every_check(tmp_path: Path, rsa_key) -> None:
    tables = org_tables()
    tables["individual_links"] = canonical(
        "individual_links", {"id": [sfid("a0L", 1)], "system_modstamp": [T0]}
    )
    tables["triggered_sends"] = canonical(
        "triggered_sends", {"id": [sfid("a0T", 1)], "system_modstamp": [T0]}
    )
    with serve(fake(tables, rsa_key), tmp_path) as running:
        org = connect(running, jwt_env(rsa_key))
        result = prereq.check_prerequisites(org, events=sent_events([sfid("003", 1)]), as_of=AS_OF)
        assert set(result.get_column("status")) == {"pass"}, result.rows()
        running.org.remove_related_list("Lead")
        running.org.drop_field(schema.INDIVIDUAL_EMAIL_RESULTS.sobject, "et4ae5__JobId__c")
        running.org.drop_field(schema.INDIVIDUAL_EMAIL_RESULTS.sobject, "et4ae5__DateSent__c")
        running.org.objects.pop(schema.TRIGGERED_SENDS.sobject)
        org = connect(running, jwt_env(rsa_key))
        result = prereq.check_prerequisites(org, as_of=AS_OF)
    rows = {r["check"]: r for r in result.iter_rows(named=True)}
    assert rows["Marketing Cloud Connect objects readable"]["status"] == "fail"
    assert rows["Marketing Cloud Connect objects readable"]["detail"].endswith(
        schema.TRIGGERED_SENDS.sobject
    )
    fields = rows["IER fields readable"]
    assert (fields["status"], fields["detail"]) == ("fail", "cannot read: et4ae5__DateSent__c")
    assert rows["IER related list on Lead page layouts"]["status"] == "fail"
    assert "Page Layouts" in rows["IER related list on Lead page layouts"]["fix"]
    assert rows["IER related list on Contact page layouts"]["status"] == "pass"


def test_cli_check_prints_each_check_and_exits_1_on_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = local(tmp_path, org_tables(tracking_off=True))
    code = cli.main(["check", "--source", str(org.path), "--as-of", "2026-10-06"])
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] individual tracking on recent sends: 1 of 3 recent sends had it off" in out
    assert "    fix: Turn on 'Send Tracking Results to Sales Cloud' for this send." in out
    assert out.count("[CANNOT TELL]") == 5
