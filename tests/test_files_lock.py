"""``_files.exclusive_lock`` across real processes, and ``_files.make_private``."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ierkit import _files
from ierkit.errors import IerkitError

ROOT = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, time
from ierkit import _files
with _files.exclusive_lock(sys.argv[1], wait=0, what="the test thing"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(lock: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_holder_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / ".thing.lock"
    holder = _hold(lock, 30)
    try:
        started = time.monotonic()
        with (
            pytest.raises(_files.LockHeldError) as caught,
            _files.exclusive_lock(lock, wait=0.5, what="the test thing"),
        ):
            pytest.fail("the lock was taken twice")
        waited = time.monotonic() - started
        message = str(caught.value)
        assert message.startswith("the test thing is in use by another run (")
        assert f"pid {holder.pid} on host {socket.gethostname()}, started 20" in message
        assert str(lock) in message and "waited 0.5 s" in message
        assert 0.4 < waited < 5
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_process_gets_the_lock_when_the_holder_is_killed(tmp_path: Path) -> None:
    lock = tmp_path / ".thing.lock"
    holder = _hold(lock, 30)
    os.kill(holder.pid, signal.SIGKILL)  # no clean-up code runs: the OS releases the lock
    holder.wait()
    with _files.exclusive_lock(lock, wait=5, what="the test thing"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        assert lock.stat().st_mode & 0o777 == 0o600
    assert not lock.exists()  # the holder removes its lock file when done


def test_a_waiting_process_gets_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    lock = tmp_path / ".thing.lock"
    holder = _hold(lock, 1)
    started = time.monotonic()
    with _files.exclusive_lock(lock, wait=30, what="the test thing"):
        assert holder.wait(timeout=5) == 0
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert time.monotonic() - started < 15


def test_make_private_narrows_folders_and_files(tmp_path: Path) -> None:
    folder = tmp_path / "week"
    (folder / "worklists").mkdir(parents=True)
    (folder / "worklists" / "a.csv").write_text("x\n")
    (folder / "run.log").write_text("x\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("x\n")
    outside.chmod(0o644)
    (folder / "link").symlink_to(outside)
    _files.make_private(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "worklists").stat().st_mode & 0o777 == 0o700
    assert (folder / "worklists" / "a.csv").stat().st_mode & 0o777 == 0o600
    assert (folder / "run.log").stat().st_mode & 0o777 == 0o600
    assert outside.stat().st_mode & 0o777 == 0o644  # a link out of the folder is not followed


@pytest.mark.parametrize("wait", [float("nan"), -1.0])
def test_a_wait_that_is_not_a_duration_is_refused(tmp_path: Path, wait: float) -> None:
    with (
        pytest.raises(IerkitError, match="give a number of seconds, 0 or more"),
        _files.exclusive_lock(tmp_path / ".lock", wait=wait, what="x"),
    ):
        pytest.fail("locked with a nonsense wait")
