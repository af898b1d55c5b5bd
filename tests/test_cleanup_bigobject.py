"""Cleanup into Salesforce big objects, against the Salesforce-like server over HTTPS.

The server deploys the big objects from the metadata files ierkit ships, refuses queries that
break the index rules and inserts by overwriting on the index, as Salesforce does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from ierkit import demo, metadata, schema
from ierkit.cleanup import (
    CRASH_ENV,
    archive_and_verify,
    cleanup_criteria,
    restore_bigobject,
    run_cleanup,
    select_iers,
    select_links,
)
from ierkit.orgs import LocalOrg
from ierkit.orgs._bigobject import BigObjectArchive
from ierkit.orgs.archived import ArchivedOrg
from tests.sfserver import RunningServer, deploy_big_objects, load_local_org, serve
from tests.test_salesforce import connect, fake, jwt_env

IERS, LINKS = "individual_email_results", "individual_links"
NS = "{http://soap.sforce.com/2006/04/metadata}"
WORKER = Path(__file__).with_name("bigobject_crash_worker.py")


@pytest.fixture
def served(
    small_demo_path: Path, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> Iterator[RunningServer]:
    org = fake(load_local_org(small_demo_path), rsa_key)
    deploy_big_objects(org)
    with serve(org, tmp_path) as running:
        yield running


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IERKIT_CACHE_DIR", str(tmp_path / "cache"))


def _criteria():  # type: ignore[no-untyped-def]
    return cleanup_criteria(150, as_of=demo.DEMO_AS_OF)


def _refused_queries(server: RunningServer) -> list[tuple[str, str, int]]:
    return [r for r in server.org.requests if r[2] == 400]


def _big_records(server: RunningServer, name: str) -> pl.DataFrame:
    return server.org.objects[name].records


def test_bigobject_metadata_parses_and_its_index_fits_the_limits(tmp_path: Path) -> None:
    written = metadata.write_project(tmp_path / "project")
    assert (tmp_path / "project" / "sfdx-project.json") in written
    objects = tmp_path / "project" / "force-app" / "main" / "default" / "objects"
    for big in metadata.BIG_OBJECTS.values():
        folder = objects / big.api_name
        ET.parse(folder / f"{big.api_name}.object-meta.xml")
        fields = {}
        for path in (folder / "fields").glob("*.field-meta.xml"):
            root = ET.parse(path).getroot()
            assert root.tag == f"{NS}CustomField"
            fields[root.findtext(f"{NS}fullName")] = root
        index = ET.parse(next((folder / "indexes").glob("*.index-meta.xml"))).getroot()
        names = [f.findtext(f"{NS}name") for f in index.findall(f"{NS}fields")]
        assert 1 <= len(names) <= metadata.MAX_INDEX_FIELDS
        assert all(n in fields and fields[n].findtext(f"{NS}required") == "true" for n in names)
        text = sum(
            int(fields[n].findtext(f"{NS}length") or 0)
            for n in names
            if fields[n].findtext(f"{NS}type") == "Text"
        )
        assert 0 < text <= metadata.MAX_INDEX_TEXT_LENGTH
        # Every canonical column has its field.
        for column in schema.table(big.table).column_names:
            assert metadata.field_name(column) in fields
    # The shipped files are exactly what the definitions render.
    shipped = metadata.packaged_files(["big-objects"])
    assert {k: v.decode() for k, v in shipped.items()} == metadata.render_big_objects()


def test_bigobject_archive_verify_delete_restore_round_trips_every_field(
    served: RunningServer, tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    reader = connect(served, jwt_env(rsa_key))
    iers = select_iers(reader, _criteria()).collect().sort("id")
    links = (
        select_links(reader, _criteria())
        .select(schema.table(LINKS).column_names)
        .collect()
        .sort("id")
    )
    assert iers.height > 1000 and links.height > 10
    org = connect(served, jwt_env(rsa_key))
    result = run_cleanup(org, archive="bigobject", criteria=_criteria(), run_id="bo1", execute=True)
    assert result.verification is not None and result.verification["ok"].all()
    assert result.failures is not None and result.failures.is_empty()
    assert served.org.count("Ierkit_IER_Archive__b") == iers.height
    assert served.org.count("Ierkit_Link_Archive__b") == links.height
    fresh = connect(served, jwt_env(rsa_key))
    left = set(fresh.table(IERS).select("id").collect()["id"])
    assert not left & set(iers["id"])
    assert not _refused_queries(served)

    local = LocalOrg(tmp_path / "restored")
    local.path.mkdir()
    counts = restore_bigobject(local, BigObjectArchive(fresh), run_id="bo1")
    assert counts.select("table", "restored").rows() == [(IERS, iers.height), (LINKS, links.height)]
    assert local.table(IERS).collect().sort("id").equals(iers)
    assert local.table(LINKS).collect().sort("id").equals(links)
    # Reports read archive plus live.
    both = ArchivedOrg(fresh, "bigobject")
    assert both.table(IERS).select(pl.len()).collect().item() == len(left) + iers.height
    assert not _refused_queries(served)


def test_bigobject_rerunning_an_archive_leaves_the_same_records(
    served: RunningServer, rsa_key: tuple[Path, bytes]
) -> None:
    org = connect(served, jwt_env(rsa_key))
    archive_and_verify(org, archive="bigobject", criteria=_criteria(), run_id="a1")
    first = _big_records(served, "Ierkit_IER_Archive__b").drop("Run_Id__c").sort("Record_Id__c")
    archive_and_verify(org, archive="bigobject", criteria=_criteria(), run_id="a2")
    second = _big_records(served, "Ierkit_IER_Archive__b").drop("Run_Id__c").sort("Record_Id__c")
    assert second.equals(first)
    assert _big_records(served, "Ierkit_IER_Archive__b")["Run_Id__c"].unique().to_list() == ["a2"]


@pytest.mark.parametrize(
    ("where", "ok"),
    [
        ("Recipient_Id__c = '003000000000001AAA'", True),
        ("Recipient_Id__c = '003000000000001AAA' AND Date_Sent__c >= 2026-01-01T00:00:00Z", True),
        ("Date_Sent__c >= 2026-01-01T00:00:00Z", False),
        ("Recipient_Id__c = '003000000000001AAA' AND Record_Id__c = 'x'", False),
        ("Recipient_Id__c >= '0' AND Date_Sent__c >= 2026-01-01T00:00:00Z", False),
        ("Recipient_Id__c != 'x'", False),
        ("Name__c = 'x'", False),
    ],
)
def test_bigobject_queries_that_break_the_index_rules_are_refused(
    served: RunningServer, rsa_key: tuple[Path, bytes], where: str, ok: bool
) -> None:
    org = connect(served, jwt_env(rsa_key))
    soql = f"SELECT Record_Id__c FROM Ierkit_IER_Archive__b WHERE {where}"
    if ok:
        org._client().query(soql)
    else:
        from simple_salesforce.exceptions import SalesforceMalformedRequest

        with pytest.raises(SalesforceMalformedRequest, match="MALFORMED_QUERY"):
            org._client().query(soql)


def _worker(server: RunningServer, tmp_path: Path, env_key: Path, crash_at: str | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    args = [sys.executable, str(WORKER), server.base_url, str(server.ca_path), str(env_key)]
    return subprocess.run(args, env=env, timeout=300, check=False).returncode


@pytest.mark.parametrize(
    "crash_at",
    [
        "insert:individual_email_results:0/started",
        "verify/finished",
        "delete:individual_links:0.0/started",
        "delete:individual_email_results:0.0/finished",
    ],
)
def test_bigobject_sigkill_then_resume_loses_nothing_and_deletes_nothing_unarchived(
    served: RunningServer, tmp_path: Path, rsa_key: tuple[Path, bytes], crash_at: str
) -> None:
    reader = connect(served, jwt_env(rsa_key))
    iers = set(select_iers(reader, _criteria()).select("id").collect()["id"])
    assert _worker(served, tmp_path, rsa_key[0], crash_at) == -signal.SIGKILL
    # Whatever is gone from the org is in the big object.
    live = set(served.org.objects["et4ae5__IndividualEmailResult__c"].records["Id"])
    archived = set(_big_records(served, "Ierkit_IER_Archive__b")["Record_Id__c"])
    assert iers - live <= archived
    assert _worker(served, tmp_path, rsa_key[0], None) == 0
    live = set(served.org.objects["et4ae5__IndividualEmailResult__c"].records["Id"])
    archived = set(_big_records(served, "Ierkit_IER_Archive__b")["Record_Id__c"])
    assert not iers & live and iers == archived
    assert not _refused_queries(served)
