"""Shared fixtures: the demo org at default parameters (cached) and a small one per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ierkit import demo
from ierkit.orgs import LocalOrg

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
