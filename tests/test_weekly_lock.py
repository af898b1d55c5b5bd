"""Weekly runs as real processes: one writer per week, and a kill never leaves a broken week.

The demo org is generated at scale 0.05 with ``ierkit demo``; the runs execute only the
sync-health notebook (``--notebook``), the fastest of the four.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ierkit import weekly
from ierkit.orgs import default_as_of

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "sync_health.ipynb"
#: Lines the weekly run's log must never hold (from the kernel, see weekly._notebooks).
NOISE = ("KeyboardInterrupt", "without encryption", "Traceback")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    org = tmp_path_factory.mktemp("org") / "demo"
    subprocess.run(
        [sys.executable, "-m", "ierkit.cli", "demo", "--out", str(org), "--scale", "0.05"],
        check=True,
        capture_output=True,
        env=_env(),
        timeout=300,
    )
    return org


def _weekly(org: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "ierkit.cli", "weekly", "--source", str(org)),
            *("--out", str(out), "--notebook", NOTEBOOK, *extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,  # its own process group: a kill reaches its kernel too
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return process.returncode, stdout + stderr


def _wait_for(condition: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _assert_complete_week(week: Path) -> None:
    names = {p.name for p in week.iterdir()}
    assert {NOTEBOOK, "sync_health.html", "worklists", "messages"} <= names, names
    assert {weekly.LOG_NAME, weekly.SKIPPED_NAME} <= names
    assert list((week / "worklists").glob("*.csv"))
    assert list((week / "messages").glob("*.eml"))
    assert "done in" in (week / weekly.LOG_NAME).read_text()


def test_concurrent_runs_of_a_week_end_in_one_complete_week_or_a_refusal(
    demo_org: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    label = weekly.iso_week_label(default_as_of(demo_org))
    lock = out / f".{label}.lock"

    first = _weekly(demo_org, out, "--lock-wait", "0")
    _wait_for(lambda: lock.exists() and '"pid"' in lock.read_text(), "the first lock")
    refused = _weekly(demo_org, out, "--lock-wait", "0")
    patient = _weekly(demo_org, out, "--lock-wait", "300")

    code, output = _finish(refused)
    assert code == 2
    (line,) = output.strip().splitlines()
    assert line.startswith(
        f"ierkit weekly: error: the week {label} in {out} is in use by another run ("
    )
    assert f"pid {first.pid} on host " in line and str(lock) in line
    assert "Run again when it has finished." in line

    for run in (first, patient):
        code, output = _finish(run)
        assert code == 0, output
        assert not [n for n in NOISE if n in output], output
    # The patient run (the refused one's rerun, in effect) waited for the first, then wrote
    # the whole week again.
    _assert_complete_week(out / label)
    assert sorted(p.name for p in out.iterdir()) == [label]  # no staging, old copy or lock left


KILLED_AT_SWAP = """
import datetime as dt
import os, signal, sys
import polars as pl
from ierkit import weekly

real_replace = os.replace

def replace(source, target):
    # The second rename of the swap: the new week is about to take the old one's place.
    if os.path.basename(source).startswith(".2026-W47.staging-"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(source, target)

os.replace = replace
weekly.run_weekly(
    as_of=dt.date(2026, 11, 20),
    out_root=sys.argv[1],
    notebooks=[],
    worklist=lambda: pl.DataFrame(
        {
            "owner_id": ["005B"],
            "owner_name": ["Bo"],
            "owner_email": ["bo@example.com"],
            "recipient_name": ["Zed"],
        }
    ),
    progress=lambda _: None,
)
"""


def test_a_kill_during_the_swap_is_repaired_by_the_next_start(tmp_path: Path) -> None:
    import datetime as dt

    import polars as pl

    out = tmp_path / "out"

    def run(owner: str) -> weekly.WeeklyResult:
        return weekly.run_weekly(
            as_of=dt.date(2026, 11, 20),
            out_root=out,
            notebooks=[],
            worklist=lambda: pl.DataFrame(
                {
                    "owner_id": [owner],
                    "owner_name": [owner],
                    "owner_email": [None],
                    "recipient_name": ["Zed"],
                },
                schema_overrides={"owner_email": pl.String},
            ),
            progress=lambda _: None,
        )

    run("005A")
    week = out / "2026-W47"
    (week / "previous.txt").write_text("the complete previous week")

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_SWAP, str(out)], env=_env(), timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    # What the kill left: no week folder, the previous week hidden, the new one in staging.
    assert not week.exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".2026-W47.old-")]
    assert [p.name for p in out.iterdir() if p.name.startswith(".2026-W47.staging-")]

    # The next start puts the previous week back before anything else ...
    repaired = tmp_path / "repaired"
    shutil.copytree(out, repaired, symlinks=True)
    lines: list[str] = []
    weekly.recover_week(repaired, "2026-W47", lines.append)
    assert (repaired / "2026-W47" / "previous.txt").read_text() == "the complete previous week"
    # The killed run's lock file is left (unlocked: the kernel released it with the process);
    # the next run to hold the lock removes it.
    assert sorted(p.name for p in repaired.iterdir()) == [".2026-W47.lock", "2026-W47"]
    assert lines == [
        "week 2026-W47: put back the previous week's folder (a run was killed while swapping)",
        "week 2026-W47: removed 1 folder(s) left by a killed run",
    ]

    # ... and a full rerun ends with the new week and nothing else.
    result = run("005C")
    assert sorted(p.name for p in out.iterdir()) == ["2026-W47"]
    assert not (week / "previous.txt").exists()
    assert [p.name for p in result.worklists] == ["005c-005C.csv", "005c-005C.html"]
    log = (week / weekly.LOG_NAME).read_text()
    assert "put back the previous week's folder" in log
    assert "removed 1 folder(s) left by a killed run" in log


def test_a_run_killed_mid_notebook_leaves_only_debris_the_next_run_removes(
    demo_org: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    label = weekly.iso_week_label(default_as_of(demo_org))
    victim = _weekly(demo_org, out, "--lock-wait", "0")
    _wait_for(
        lambda: any((p / NOTEBOOK).exists() for p in out.glob(f".{label}.staging-*")),
        "the notebook to start",
    )
    os.killpg(victim.pid, signal.SIGKILL)  # the run and its kernel
    victim.wait(timeout=30)
    assert not (out / label).exists()  # no half week was published
    code, output = _finish(_weekly(demo_org, out, "--lock-wait", "0"))
    assert code == 0, output
    assert "removed 1 folder(s) left by a killed run" in output
    assert sorted(p.name for p in out.iterdir()) == [label]
    _assert_complete_week(out / label)
