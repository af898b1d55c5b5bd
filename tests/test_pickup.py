"""Tests for ierkit.pickup against a real SFTP server (asyncssh, in this process, on 127.0.0.1).

The server's host key and the client's key are generated per test; the server serves a folder
of the test's own. One file can be made to arrive truncated (the server stops reading it half way),
as a dropped connection would leave it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import polars as pl
import pytest

from ierkit import aggregate, cli, pickup
from tests.test_extract import HEAD, KEY_A, KEY_B


@dataclass
class Server:
    """A running SFTP server: where it serves from and how to reach and trust it."""

    root: Path
    port: int
    host_key: asyncssh.SSHKey
    env: dict[str, str]
    truncate: set[str]

    def url(self, pattern: str = "Export/tracking_*.zip") -> str:
        return f"sftp://mc-user@127.0.0.1:{self.port}/{pattern}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "sftp-root"
    (root / "Export").mkdir(parents=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_file))
    truncate: set[str] = set()

    class Sftp(asyncssh.SFTPServer):  # type: ignore[misc]
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())

        def read(self, file_obj: Any, offset: int, size: int) -> bytes:
            name = os.path.basename(os.fsdecode(getattr(file_obj, "name", "")))
            data: bytes = super().read(file_obj, offset, size)
            if name in truncate:
                half = os.fstat(file_obj.fileno()).st_size // 2
                data = data[: max(0, half - offset)]
            return data

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        holder["server"] = await asyncssh.create_server(
            asyncssh.SSHServer,
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                client_key.export_public_key().decode()
            ),
            sftp_factory=Sftp,
            allow_scp=False,
        )
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=20)
    assert started.wait(20)
    port = holder["server"].sockets[0].getsockname()[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    env = {"IERKIT_SFTP_KEY_FILE": str(key_file), "IERKIT_SFTP_KNOWN_HOSTS": str(known_hosts)}
    try:
        yield Server(root, port, host_key, env, truncate)
    finally:

        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=20)


def put_extract(server: Server, name: str, rows: list[str], *, mtime: int) -> Path:
    """A one-send extract zip (Sent.csv with ``rows``) on the server, with a given mtime."""
    path = server.root / "Export" / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Sent.csv", f"{HEAD}\n" + "".join(f"{r}\n" for r in rows))
    os.utime(path, (mtime, mtime))
    return path


def sent_row(job: int, key: str, minute: int) -> str:
    return f"1,{job},{key},x@example.com,11,5,1/15/2026 10:{minute:02d}:00 AM,Sent,0,"


def run_aggregate(server: Server, out: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    return cli.main(["aggregate", server.url(), "--out", str(out)])


def iers(out: Path) -> list[tuple[int, str]]:
    frame = pl.read_parquet(out / f"{aggregate.IER_TABLE}.parquet")
    return sorted(zip(frame["job_id"].to_list(), frame["subscriber_key"].to_list(), strict=True))


def test_glob_download_ledger_rerun_and_next_file(
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_extract(server, "tracking_20261101.zip", [sent_row(100, KEY_A, 1)], mtime=1_000)
    put_extract(server, "tracking_20261102.zip", [sent_row(200, KEY_B, 2)], mtime=2_000)
    # Not matched by the glob: never downloaded.
    put_extract(server, "other_20261102.zip", [sent_row(999, KEY_A, 3)], mtime=2_000)
    out = tmp_path / "out"

    assert run_aggregate(server, out, monkeypatch) == 0
    assert iers(out) == [(100, KEY_A), (200, KEY_B)]
    printed = capsys.readouterr().out
    assert "2 matching, 2 new, 0 already applied" in printed
    state = pickup.store_state(out / "event_store", server.url())
    ledger = pickup.read_ledger(state)
    assert [(e["name"], e["mtime"]) for e in ledger] == [
        ("tracking_20261101.zip", 1_000),
        ("tracking_20261102.zip", 2_000),
    ]
    assert all(len(str(e["sha256"])) == 64 for e in ledger)
    assert list((state / "inbox").iterdir()) == []  # downloads removed once applied
    tables = {p: p.stat().st_mtime_ns for p in out.glob("*.parquet")}

    # A rerun finds nothing new and writes nothing.
    assert run_aggregate(server, out, monkeypatch) == 0
    assert "0 new, 2 already applied" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.parquet")} == tables
    assert len(pickup.read_ledger(state)) == 2

    # A new file is picked up by the next run, alone.
    put_extract(server, "tracking_20261103.zip", [sent_row(300, KEY_A, 4)], mtime=3_000)
    assert run_aggregate(server, out, monkeypatch) == 0
    assert "3 matching, 1 new, 2 already applied" in capsys.readouterr().out
    assert iers(out) == [(100, KEY_A), (200, KEY_B), (300, KEY_A)]
    assert [e["name"] for e in pickup.read_ledger(state)][-1] == "tracking_20261103.zip"


def test_same_bytes_under_a_new_mtime_are_not_applied_twice(server: Server, tmp_path: Path) -> None:
    path = put_extract(server, "tracking_1.zip", [sent_row(100, KEY_A, 1)], mtime=1_000)
    state = tmp_path / "state"
    with pickup.collect(server.url(), state, env=server.env) as batch:
        assert [p.remote.name for p in batch.picked] == ["tracking_1.zip"]
    os.utime(path, (5_000, 5_000))  # touched on the server, same bytes
    with pickup.collect(server.url(), state, env=server.env) as batch:
        assert batch.picked == [] and [p.remote.mtime for p in batch.duplicates] == [5_000]
    with pickup.collect(server.url(), state, env=server.env) as batch:
        assert batch.picked == [] and batch.duplicates == []


def test_failed_apply_records_nothing(server: Server, tmp_path: Path) -> None:
    put_extract(server, "tracking_1.zip", [sent_row(100, KEY_A, 1)], mtime=1_000)
    state = tmp_path / "state"
    with (
        pytest.raises(RuntimeError),
        pickup.collect(server.url(), state, env=server.env) as batch,
    ):
        assert len(batch.picked) == 1
        raise RuntimeError("aggregate failed")
    assert pickup.read_ledger(state) == []
    assert list((state / "inbox").iterdir()) == []
    with pickup.collect(server.url(), state, env=server.env) as batch:
        assert len(batch.picked) == 1  # applied on the next run instead


def test_truncated_download_is_never_applied(
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [sent_row(100, f"0035g00000AbCd{n:04d}", n % 60) for n in range(2_000)]
    put_extract(server, "tracking_big.zip", rows, mtime=1_000)
    server.truncate.add("tracking_big.zip")
    out = tmp_path / "out"
    assert run_aggregate(server, out, monkeypatch) == 2
    error = capsys.readouterr().err
    assert "tracking_big.zip arrived with" in error and "truncated); not applied" in error
    assert not (out / f"{aggregate.IER_TABLE}.parquet").exists()
    state = pickup.store_state(out / "event_store", server.url())
    assert pickup.read_ledger(state) == []
    assert list((state / "inbox").iterdir()) == []  # the partial file is gone
    # Once the server sends it whole, the next run applies it.
    server.truncate.clear()
    assert run_aggregate(server, out, monkeypatch) == 0
    assert len(iers(out)) == 2_000


def test_host_key_mismatch_is_refused(server: Server, tmp_path: Path) -> None:
    put_extract(server, "tracking_1.zip", [sent_row(100, KEY_A, 1)], mtime=1_000)
    other = asyncssh.generate_private_key("ssh-ed25519")
    known = tmp_path / "known_hosts_wrong"
    known.write_text(f"[127.0.0.1]:{server.port} {other.export_public_key().decode().strip()}\n")
    env = {**server.env, "IERKIT_SFTP_KNOWN_HOSTS": str(known)}
    with (
        pytest.raises(pickup.PickupError, match=r"host key SHA256:\S+ does not match"),
        pickup.collect(server.url(), tmp_path / "state", env=env),
    ):
        pass
    assert not (tmp_path / "state" / "ledger.jsonl").exists()


def test_unknown_host_is_refused(server: Server, tmp_path: Path) -> None:
    env = {**server.env, "IERKIT_SFTP_KNOWN_HOSTS": str(tmp_path / "empty_known_hosts")}
    with pytest.raises(pickup.PickupError, match=r"host not in .*ssh-keyscan"):
        pickup.fetch_latest(server.url(), state=tmp_path / "state", env=env)


def test_pinned_fingerprint(server: Server, tmp_path: Path) -> None:
    put_extract(server, "tracking_1.zip", [sent_row(100, KEY_A, 1)], mtime=1_000)
    right = server.host_key.get_fingerprint("sha256")
    env = {"IERKIT_SFTP_KEY_FILE": server.env["IERKIT_SFTP_KEY_FILE"]}
    pinned = {**env, "IERKIT_SFTP_HOST_KEY_SHA256": right}
    assert pickup.fetch_latest(server.url(), state=tmp_path / "s1", env=pinned).is_file()
    wrong = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with pytest.raises(pickup.PickupError, match="does not match the pinned"):
        pickup.fetch_latest(
            server.url(), state=tmp_path / "s2", env={**env, "IERKIT_SFTP_HOST_KEY_SHA256": wrong}
        )


def test_fetch_latest_downloads_the_newest_once(server: Server, tmp_path: Path) -> None:
    put_extract(server, "tracking_1.zip", [sent_row(100, KEY_A, 1)], mtime=1_000)
    put_extract(server, "tracking_2.zip", [sent_row(200, KEY_A, 1)], mtime=2_000)
    state = tmp_path / "state"
    first = pickup.fetch_latest(server.url(), state=state, env=server.env)
    assert first.name == "tracking_2.zip"
    assert oct(first.stat().st_mode & 0o777) == "0o600"
    assert oct((state / "latest").stat().st_mode & 0o777) == "0o700"
    stamp = first.stat().st_mtime_ns
    assert pickup.fetch_latest(server.url(), state=state, env=server.env) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not downloaded again
    put_extract(server, "tracking_3.zip", [sent_row(300, KEY_A, 1)], mtime=3_000)
    newest = pickup.fetch_latest(server.url(), state=state, env=server.env)
    assert newest.name == "tracking_3.zip"
    assert sorted(p.name for p in (state / "latest").iterdir()) == ["tracking_3.zip"]


def test_check_and_sync_health_read_an_sftp_extract(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ierkit import extract, sync_health

    put_extract(server, "tracking_1.zip", [sent_row(100, KEY_A, 1)], mtime=1_000)
    monkeypatch.setenv("IERKIT_CACHE_DIR", str(tmp_path / "cache"))
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    events = extract.read_extract(server.url()).collect()
    assert events.get_column("job_id").to_list() == [100]
    local = sync_health.default_extract("somewhere", server.url())
    assert Path(local).name == "tracking_1.zip" and str(tmp_path / "cache") in local


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sftp://127.0.0.1/Export/*.zip", "give the user"),
        ("sftp://u:secret@127.0.0.1/Export/*.zip", "password in the URL is not accepted"),
        ("sftp://u@127.0.0.1/Export/", "end the path with a file name or pattern"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(pickup.PickupError, match=message) as caught:
        pickup.SftpLocation.parse(url)
    assert "secret" not in str(caught.value)


def test_no_key_is_a_clear_error(server: Server, tmp_path: Path) -> None:
    env = {"IERKIT_SFTP_KNOWN_HOSTS": server.env["IERKIT_SFTP_KNOWN_HOSTS"]}
    with pytest.raises(pickup.PickupError, match="no key to log in with"):
        pickup.fetch_latest(server.url(), state=tmp_path / "s", env=env)
