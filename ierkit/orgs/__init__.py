"""Orgs: one interface over the places ierkit reads tables from.

A *source* names an org the same way everywhere (CLI ``--source``, notebook parameter
``source``):

- ``"demo"``: the built-in demo org, generated on first use into the cache folder and reused;
- a folder path: a local org (a folder of Parquet tables, e.g. a snapshot);
- ``"salesforce"``: a Salesforce org, with credentials from the environment;
- ``"<source>+archive:<archive>"``: that org with the IERs and link details of an ierkit
  cleanup archive (folder or fsspec URL) read back in (``ierkit.orgs.archived.ArchivedOrg``);
  ``"salesforce+archive:bigobject"`` reads the org's own big object archive with its live
  records (``ierkit cleanup --archive bigobject``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ierkit import clock
from ierkit.orgs.base import Org, OrgError, StorageLimits
from ierkit.orgs.local import LocalOrg

__all__ = [
    "LocalOrg",
    "Org",
    "OrgError",
    "StorageLimits",
    "default_as_of",
    "open_org",
    "source_instant",
]


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


def source_instant(source: str | os.PathLike[str], *, org: Org | None = None) -> dt.datetime:
    """The instant a source describes when no date is given (see ``ierkit.clock``).

    Args:
        source: A source name (``demo``, a folder, ``salesforce``, ``<source>+archive:<path>``).
        org: The source's org when it is open already; asked instead of the name.

    Returns:
        The demo's generation instant for ``demo``; a local folder's recorded or last-change
        instant (``LocalOrg.data_as_of``); now for a live org or a folder that does not exist.
    """
    if org is not None:
        return clock.to_utc(org.data_as_of())
    text = os.fspath(source).split("+archive:", 1)[0]
    if text == "demo":
        from ierkit import demo

        return demo.as_of_instant(demo.DEMO_AS_OF)
    path = Path(text).expanduser()
    if text != "salesforce" and path.is_dir():
        return LocalOrg(path).data_as_of()
    return clock.now()


def default_as_of(source: str | os.PathLike[str]) -> dt.date:
    """The report date when none is given: the day of the source's instant (``source_instant``).

    A frozen org (the demo, a snapshot) reports at its own date, where its data ends (today
    would show an empty week); a live org at today (UTC).
    """
    return clock.day_of(source_instant(source))
