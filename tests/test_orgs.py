import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from ierkit import orgs, schema
from ierkit.orgs import LocalOrg, OrgError, open_org
from ierkit.orgs.archived import ArchivedOrg


def _tasks(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"00T{i:015d}" for i in range(n)],
            "who_id": ["003000000000001AAA"] * n,
            "subject": ["Follow up"] * n,
            "created_date": [dt.datetime(2026, 1, 1)] * n,
        }
    ).with_columns(
        *[
            pl.lit(None, dtype=c.dtype).alias(c.name)
            for c in schema.TASKS.columns
            if c.name not in ("id", "who_id", "subject", "created_date")
        ]
    )


def test_write_then_read_round_trips_in_canonical_schema(tmp_path: Path) -> None:
    org = LocalOrg(tmp_path)
    org.write_table("tasks", _tasks(3))
    read = org.table("tasks")
    assert isinstance(read, pl.LazyFrame)
    assert read.collect_schema() == schema.TASKS.polars_schema
    assert read.collect().sort("id")["id"].to_list() == [f"00T{i:015d}" for i in range(3)]
    assert org.record_counts() == {"tasks": 3}
    assert org.has_table("tasks") and not org.has_table("leads")


def test_missing_table_names_the_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(OrgError, match=r"no table 'leads' \(expected the file leads.parquet\)"):
        LocalOrg(tmp_path).table("leads")


def test_invalid_frame_is_never_written(tmp_path: Path) -> None:
    org = LocalOrg(tmp_path)
    org.write_table("tasks", _tasks(2))
    before = (tmp_path / "tasks.parquet").read_bytes()
    with pytest.raises(schema.SchemaError):
        org.write_table("tasks", _tasks(2).drop("subject"))
    assert (tmp_path / "tasks.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.parquet"]


def test_delete_reports_each_id(tmp_path: Path) -> None:
    org = LocalOrg(tmp_path)
    org.write_table("tasks", _tasks(3))
    first, second, _ = (f"00T{i:015d}" for i in range(3))
    result = org.delete("tasks", [first, "00T999999999999AAA", first])
    assert result.rows() == [
        (first, True, None),
        ("00T999999999999AAA", False, "NOT_FOUND: no such record"),
        (first, False, "ENTITY_IS_DELETED: entity is deleted"),
    ]
    assert sorted(org.table("tasks").collect()["id"]) == [second, f"00T{2:015d}"]


def test_interrupted_write_leaves_the_old_table_whole(tmp_path: Path) -> None:
    """Kill a writer with SIGKILL mid-write: the table is the old one, readable, and complete."""
    org = LocalOrg(tmp_path)
    org.write_table("tasks", _tasks(5))
    before = (tmp_path / "tasks.parquet").read_bytes()
    started = tmp_path / "started"
    # The child writes a large table slowly enough to be killed while writing.
    script = textwrap.dedent(
        f"""
        import polars as pl
        from pathlib import Path
        from ierkit.orgs.local import LocalOrg
        import tests.test_orgs as t
        frame = pl.concat([t._tasks(200_000)] * 25).with_row_index("n").with_columns(
            id=pl.format("00T{{}}", pl.col("n").cast(pl.String).str.zfill(15))
        ).drop("n")
        Path({str(started)!r}).touch()
        while True:
            LocalOrg({str(tmp_path)!r}).write_table("tasks", frame)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = dt.datetime.now() + dt.timedelta(seconds=60)
        while not started.exists() and dt.datetime.now() < deadline:
            pass
        # Wait until a temporary file exists: the child is mid-write.
        while dt.datetime.now() < deadline and not any(
            p.name.startswith(".tasks.parquet.") for p in tmp_path.iterdir()
        ):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    count = LocalOrg(tmp_path).table("tasks").select(pl.len()).collect().item()
    # Either the old table or a complete new one: never a partial file.
    assert count in (5, 5_000_000)
    if count == 5:
        assert (tmp_path / "tasks.parquet").read_bytes() == before


def test_open_org_names_sources(tmp_path: Path) -> None:
    assert isinstance(open_org(tmp_path), LocalOrg)
    with pytest.raises(OrgError, match="is not 'demo', 'salesforce' or an existing folder"):
        open_org(tmp_path / "nowhere")


# --- the instant an org describes, and optional capabilities ------------------------------------


def test_a_snapshot_describes_the_instant_it_was_pulled(tmp_path: Path) -> None:
    org = LocalOrg(tmp_path)
    org.write_table("tasks", _tasks(1))
    (tmp_path / "_salesforce_snapshot.json").write_text(
        json.dumps({"pulled_at": "2026-11-23T08:15:00+00:00", "tables": {}})
    )
    pulled = dt.datetime(2026, 11, 23, 8, 15, tzinfo=dt.UTC)
    assert org.data_as_of() == pulled
    # Every door reads the same instant: the diagnosis's default and the reports' default day.
    assert orgs.source_instant(str(tmp_path)) == pulled
    assert orgs.default_as_of(str(tmp_path)) == dt.date(2026, 11, 23)
    assert orgs.source_instant(f"{tmp_path}+archive:{tmp_path / 'archive'}") == pulled


def test_a_demo_folder_describes_its_generation_instant(tmp_path: Path) -> None:
    (tmp_path / "demo.json").write_text(json.dumps({"as_of_instant": "2026-11-20T12:00:00+00:00"}))
    assert LocalOrg(tmp_path).data_as_of() == dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def test_an_unreadable_recorded_instant_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "demo.json").write_text(json.dumps({"as_of_instant": "yesterday"}))
    with pytest.raises(OrgError, match=r"demo.json: as_of_instant is not readable"):
        LocalOrg(tmp_path).data_as_of()


def test_a_folder_that_does_not_exist_describes_now() -> None:
    before = dt.datetime.now(dt.UTC)
    assert orgs.source_instant("/no/such/folder") >= before


class _Describing(LocalOrg):
    """A local org that answers describe calls, as a Salesforce org does."""

    can_describe = True

    def sobject_names(self) -> set[str] | None:
        return {"Contact"}

    def has_field(self, sobject: str, path: str) -> bool | None:
        return path == "Email"

    def describe_layouts(self, sobject: str) -> dict[str, object] | None:
        return {"layouts": [{"name": f"{sobject} Layout"}]}


def test_a_local_org_cannot_tell_what_describe_would_say(tmp_path: Path) -> None:
    org = LocalOrg(tmp_path)
    assert not org.can_describe
    assert org.sobject_names() is None
    assert org.has_field("Contact", "Email") is None
    assert org.describe_layouts("Contact") is None


def test_an_archived_org_forwards_the_live_orgs_capabilities(tmp_path: Path) -> None:
    archived = ArchivedOrg(_Describing(tmp_path / "org"), tmp_path / "archive")
    assert archived.can_describe
    assert archived.sobject_names() == {"Contact"}
    assert archived.has_field("Contact", "Email") is True
    assert archived.has_field("Contact", "Fax") is False
    assert archived.describe_layouts("Lead") == {"layouts": [{"name": "Lead Layout"}]}


def test_the_demo_knows_its_made_up_my_domain(demo_path: Path) -> None:
    from ierkit.orgs import LocalOrg

    assert LocalOrg(demo_path).instance_url == "https://ierkit-demo.my.salesforce.com"
    users = LocalOrg(demo_path).table("users").collect()
    assert users["time_zone"].null_count() == 0
    assert users.filter(pl.col("manager_id").is_not_null()).height >= 10


# --- one writer of a local org at a time ------------------------------------------------------

_HOLD_ORG_LOCK = """
import sys, time
from ierkit.orgs import LocalOrg
with LocalOrg(sys.argv[1]).lock():
    print("locked", flush=True)
    time.sleep(30)
"""


def test_a_second_writer_of_a_local_org_waits_then_names_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ierkit import _files
    from ierkit.orgs import local

    org = LocalOrg(tmp_path)
    org.write_table("tasks", _tasks(3))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_ORG_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(local, "LOCK_WAIT_SECONDS", 0.3)
        with pytest.raises(_files.LockHeldError, match=rf"pid {holder.pid} on host"):
            org.write_table("tasks", _tasks(1))
        with pytest.raises(_files.LockHeldError, match="the local org"):
            org.delete("tasks", [f"00T{0:015d}"])
        assert org.record_counts(["tasks"]) == {"tasks": 3}  # nothing changed meanwhile
    finally:
        holder.kill()
        holder.wait()
    org.delete("tasks", [f"00T{0:015d}"])  # the killed holder's lock is gone with it
    assert org.record_counts(["tasks"]) == {"tasks": 2}
