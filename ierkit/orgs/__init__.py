"""Orgs: one interface over the places ierkit reads tables from.

A *source* names an org the same way everywhere (CLI ``--source``, notebook parameter
``source``):

- ``"demo"``: the built-in demo org, generated on first use into the cache folder and reused;
- a folder path: a local org (a folder of Parquet tables, e.g. a snapshot);
- ``"salesforce"``: a Salesforce org, with credentials from the environment;
- ``"<source>+archive:<archive>"``: that org with the IERs and link details of an ierkit
  cleanup archive (folder or fsspec URL) read back in (``ierkit.orgs.archived.ArchivedOrg``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from ierkit.orgs.base import Org, OrgError, StorageLimits
from ierkit.orgs.local import LocalOrg

__all__ = [
    "LocalOrg",
    "Org",
    "OrgError",
    "StorageLimits",
    "cache_dir",
    "default_as_of",
    "open_org",
]


def cache_dir() -> Path:
    """Where ierkit keeps generated data: ``$IERKIT_CACHE_DIR``, else ``~/.cache/ierkit``."""
    configured = os.environ.get("IERKIT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ierkit"


def open_org(source: str | os.PathLike[str]) -> Org:
    """The org a source names.

    Args:
        source: ``"demo"``, ``"salesforce"``, the path of a local org folder, or any of these
            followed by ``+archive:<archive folder or URL>``.

    Returns:
        An ``Org``.

    Raises:
        OrgError: When the source is a path that is not a folder.
    """
    text = os.fspath(source)
    if "+archive:" in text:
        # "<source>+archive:<archive>": the org with a cleanup archive's records read back in.
        from ierkit.orgs.archived import ArchivedOrg

        base, archive = text.split("+archive:", 1)
        return ArchivedOrg(open_org(base), archive)
    if text == "demo":
        from ierkit import demo

        return LocalOrg(demo.ensure_demo())
    if text == "salesforce":
        from ierkit.orgs.salesforce import SalesforceOrg

        return SalesforceOrg.from_env()
    path = Path(text).expanduser()
    if not path.is_dir():
        raise OrgError(
            f"source {text!r} is not 'demo', 'salesforce' or an existing folder of Parquet tables"
        )
    return LocalOrg(path)


def default_as_of(source: str | os.PathLike[str]) -> dt.date:
    """The report date when none is given.

    The demo's own date for ``demo`` and for a folder written by ``ierkit demo`` (its data ends
    there: today would show an empty week); today (UTC) for anything else.
    """
    text = os.fspath(source)
    if text == "demo":
        from ierkit import demo

        return demo.DEMO_AS_OF
    generated = Path(text).expanduser() / "demo.json"
    if text != "salesforce" and generated.is_file():
        return dt.date.fromisoformat(json.loads(generated.read_text())["as_of"][:10])
    return dt.datetime.now(dt.UTC).date()
