"""Shared fixtures: the demo org at default parameters (cached), a small one per session, and
one weekly run on the demo that the weekly tests read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ierkit import demo, weekly
from ierkit.orgs import LocalOrg
from tests.demo_week import DemoWeek, fd_output

#: Scale of the small per-session demo: big enough that every planted failure mode occurs.
SMALL_DEMO_SCALE = 0.1


@pytest.fixture(scope="session")
def demo_path() -> Path:
    """The cached default demo org (``demo.ensure_demo()``), as the notebooks use it."""
    return demo.ensure_demo()


@pytest.fixture(scope="session")
def demo_org(demo_path: Path) -> LocalOrg:
    """The default demo org as a ``LocalOrg``."""
    return LocalOrg(demo_path)


@pytest.fixture(scope="session")
def small_demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo org at scale 0.1 generated once per test session into a temporary folder."""
    out = tmp_path_factory.mktemp("small-demo") / "demo"
    return demo.generate(out, scale=SMALL_DEMO_SCALE).path


@pytest.fixture(scope="session")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A throwaway RSA key (private key file, public key PEM) for the JWT bearer flow in tests."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("key") / "server.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


@pytest.fixture(scope="session")
def demo_week(demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> DemoWeek:
    """The weekly suite run once on the default demo (the slowest step of the tests: one run)."""
    workdir = tmp_path_factory.mktemp("demo-week")
    (workdir / "outputs" / "2026-W46").mkdir(parents=True)  # an earlier week the index links
    sink = tmp_path_factory.mktemp("demo-week-output") / "output.txt"
    packaged_before = sorted(p.name for p in weekly.notebooks_dir().iterdir())
    with pytest.MonkeyPatch.context() as patch, fd_output(sink):
        # Relative paths, as typed on the command line: they mean the caller's folder, in the
        # notebooks too (they once wrote their CSV tables beside the packaged notebooks).
        patch.chdir(workdir)
        result = weekly.run_weekly(
            source=os.path.relpath(demo_path, workdir),
            as_of=demo.DEMO_AS_OF,
            out_root=Path("outputs"),
            progress=lambda _: None,
        )
    return DemoWeek(
        result=result,
        workdir=workdir,
        output=sink.read_text(),
        workdir_after=sorted(p.name for p in workdir.iterdir()),
        packaged_before=packaged_before,
        packaged_after=sorted(p.name for p in weekly.notebooks_dir().iterdir()),
    )
