"""A non-editable install works: the wheel ships the notebooks and ``ierkit weekly`` runs them.

The wheel is built from this checkout and installed into a fresh virtual environment whose
dependencies come from the test environment (its site-packages through a ``.pth`` file, its
``share/jupyter`` through ``JUPYTER_PATH``), so nothing is downloaded for it. Every command runs
without ``PYTHONPATH`` and outside the checkout, so ``ierkit`` comes from the fresh
environment, never from the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from ierkit import demo, weekly

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def _run(command: list[str | Path], env: dict[str, str], timeout: int) -> str:
    # Run away from the checkout: the current folder is on a script's sys.path.
    done = subprocess.run(
        [str(part) for part in command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=env["IERKIT_CACHE_DIR"],
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_runs_the_weekly_suite_from_a_fresh_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["IERKIT_CACHE_DIR"] = str(tmp_path / "cache")
    # Dependencies' data files (nbconvert's templates, the kernel spec) stay in the test
    # environment too: a real install would copy them into the fresh one's share/jupyter.
    env["JUPYTER_PATH"] = str(Path(sysconfig.get_paths()["data"]) / "share" / "jupyter")
    (tmp_path / "cache").mkdir()

    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, REPO], env, 300)
    (wheel,) = wheels.glob("ierkit-*.whl")

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env, 60
        ).strip()
    )
    # The test environment's packages, found after the fresh environment's own.
    (site / "zz_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            wheel,
        ],
        env,
        300,
    )
    where = _run(
        [python, "-c", "import ierkit.weekly as w; print(w.__file__, w.notebooks_dir())"], env, 60
    )
    module, notebooks = (Path(part) for part in where.split())
    assert module.is_relative_to(site / "ierkit"), module
    assert notebooks == site / "ierkit" / "notebooks"
    assert {name for name in weekly.WEEKLY_NOTEBOOKS} <= {p.name for p in notebooks.iterdir()}

    ierkit = fresh / "bin" / "ierkit"
    org, out = tmp_path / "org", tmp_path / "out"
    _run([ierkit, "demo", "--out", org, "--scale", "0.05"], env, 300)
    _run([ierkit, "weekly", "--source", org, "--out", out, "--cell-timeout", "300"], env, 600)

    week = out / weekly.iso_week_label(demo.DEMO_AS_OF)
    for name in weekly.WEEKLY_NOTEBOOKS:
        assert (week / name).is_file(), name
        assert (week / name).with_suffix(".html").is_file(), name
    assert list((week / "worklists").glob("*.csv"))
