"""Cleanup archives in object storage: a real S3 API (moto's server) on loopback, through s3fs.

The same run as on a local folder, with ``--archive s3://bucket/prefix``: archived, verified from
the bucket, deleted, and readable back as ``<source>+archive:s3://...``.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from ierkit import demo
from ierkit.archive import ArchiveError, ArchiveStore
from ierkit.cleanup import cleanup_criteria, run_cleanup
from ierkit.orgs import LocalOrg, open_org

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
s3fs = pytest.importorskip("s3fs", reason="s3fs is in the test extra")

IERS, LINKS = "individual_email_results", "individual_links"


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # Credentials and endpoint from the environment, as a user's would be; fake values here.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("ierkit-archive")
    try:
        yield "s3://ierkit-archive/cleanup"
    finally:
        server.stop()


def test_archive_in_s3_is_verified_then_deleted_and_read_back(
    bucket: str, small_demo_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A remote archive's ledger is kept in the cache folder: a fresh one per test, so a ledger
    # left by an earlier test run for the same URL and run id is never taken for this run's.
    monkeypatch.setenv("IERKIT_CACHE_DIR", str(tmp_path / "cache"))
    shutil.copytree(small_demo_path, tmp_path / "org")
    org = LocalOrg(tmp_path / "org")
    before = {t: org.table(t).collect() for t in (IERS, LINKS)}
    result = run_cleanup(
        org,
        archive=bucket,
        criteria=cleanup_criteria(120, as_of=demo.DEMO_AS_OF),
        run_id="s3run",
        execute=True,
    )
    assert result.verification is not None and result.verification["ok"].all()
    selected = result.plan.records
    assert selected[IERS] > 1000
    files = s3fs.S3FileSystem().find("ierkit-archive/cleanup")
    assert "ierkit-archive/cleanup/runs/s3run/manifest.json" in files
    assert any(f.startswith(f"ierkit-archive/cleanup/{IERS}/year=2026/month=") for f in files)
    for table in (IERS, LINKS):
        archived = ArchiveStore(bucket).scan(table, run_id="s3run").collect()
        kept = org.table(table).collect()
        assert archived.height == selected[table]
        assert kept.height + archived.height == before[table].height
        # Field for field, the union of what is kept and what is archived is the original table.
        assert pl.concat([kept, archived]).sort("id").equals(before[table].sort("id"))
    # Reports can read live and archived records together.
    union = open_org(f"{tmp_path / 'org'}+archive:{bucket}")
    assert union.table(IERS).select(pl.len()).collect().item() == before[IERS].height


def test_an_fsspec_filesystem_polars_cannot_write_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="not 'memory'"):
        ArchiveStore("memory://ierkit-archive")
