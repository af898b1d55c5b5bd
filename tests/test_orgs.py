import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from ierkit import schema
from ierkit.orgs import LocalOrg, OrgError, open_org


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
