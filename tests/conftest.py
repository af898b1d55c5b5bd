"""Shared fixtures: the demo org at default parameters (cached) and a small one per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
