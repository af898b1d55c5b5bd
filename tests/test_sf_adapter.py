"""The private simple-salesforce names ierkit relies on still exist (ierkit/orgs/_sf_adapter.py).

An upgrade of simple-salesforce that renames or reshapes one of them fails here, loudly and by
name, instead of in a user's run; pyproject.toml bounds the version these checks were made on.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import tomllib
from pathlib import Path

import pytest
import simple_salesforce
from simple_salesforce import bulk2
from simple_salesforce.api import Salesforce

from ierkit.orgs import _sf_adapter
from tests.sfserver import RunningServer, serve
from tests.test_salesforce import connect, fake, jwt_env, small_org

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = importlib.metadata.version("simple-salesforce")


@pytest.mark.parametrize(("name", "params"), sorted(_sf_adapter.REQUIRED.items()))
def test_private_name_and_its_parameters_exist(name: str, params: tuple[str, ...]) -> None:
    owner_name, attribute = name.split(".")
    owner = {"_Bulk2Client": bulk2._Bulk2Client, "Salesforce": Salesforce}[owner_name]
    if not params:  # an instance attribute: set by the constructor, read by the re-login
        for method in (Salesforce.__init__, Salesforce._refresh_session):
            assert f"self.{attribute}" in inspect.getsource(method), (name, method.__name__)
        return
    function = getattr(owner, attribute, None)
    assert callable(function), f"simple-salesforce {INSTALLED} lost {name}"
    found = list(inspect.signature(function).parameters)[1 : 1 + len(params)]
    assert tuple(found) == params, f"{name} now takes {found}, ierkit passes {params}"


def test_adapter_client_is_the_private_class() -> None:
    assert _sf_adapter.Bulk2Client is bulk2._Bulk2Client
    assert {d.value for d in _sf_adapter.ColumnDelimiter} == {
        "COMMA",
        "TAB",
        "PIPE",
        "SEMICOLON",
        "CARET",
        "BACKQUOTE",
    }


def test_the_pinned_range_holds_the_installed_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = next(d for d in project["dependencies"] if d.startswith("simple-salesforce"))
    bounds = re.fullmatch(r"simple-salesforce>=([\d.]+),<([\d.]+)", spec)
    assert bounds, f"simple-salesforce needs a lower and an upper bound, not {spec!r}"
    low, high = bounds.groups()

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in text.split("."))

    assert version(low) <= version(INSTALLED) < version(high)


def test_a_logged_in_client_renews_nothing_by_itself(
    tmp_path: Path, rsa_key: tuple[Path, bytes]
) -> None:
    running: RunningServer
    with serve(fake(small_org(5), rsa_key), tmp_path) as running:
        org = connect(running, jwt_env(rsa_key))
        sf = org._client()
        assert sf._salesforce_login_partial is None
        running.org.expire_sessions()
        # simple-salesforce's own REST call would have logged in again without a word.
        with pytest.raises(simple_salesforce.exceptions.SalesforceExpiredSession):
            sf.restful("limits")
        assert len(running.org.logins) == 1
