"""Salesforce metadata ierkit needs in an org, shipped as source-format files in the package.

``write_project(folder)`` writes an sfdx project (``sfdx-project.json`` and
``force-app/main/default/...``) that ``sf project deploy start`` deploys. The components are
listed in ``COMPONENTS``; each is a folder of files under ``force-app/main/default`` inside this
package, so more (the write-back fields of a later issue) are added by shipping their files and
naming them there.

Components today:

- ``big-objects``: the big objects a cleanup archives into (``--archive bigobject``), one for
  IERs and one for link details, with every canonical field and one index each, and the
  permission set that lets a user insert and read them (see ``ierkit.metadata._bigobjects``).
- ``writeback-fields``: the six engagement summary fields ``ierkit writeback`` writes, on
  Contact and on Lead, and the permission set that lets a user edit them
  (see ``ierkit.metadata._writeback``).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from ierkit import _files
from ierkit.errors import IerkitError
from ierkit.metadata._bigobjects import (
    API_VERSION,
    BIG_OBJECTS,
    MAX_INDEX_FIELDS,
    MAX_INDEX_TEXT_LENGTH,
    NO_PARENT,
    PERMISSION_SET,
    BigField,
    BigObject,
    big_object,
    field_name,
)
from ierkit.metadata._render import render_big_objects
from ierkit.metadata._writeback import (
    WRITEBACK_PERMISSION_SET,
    WritebackField,
    render_writeback,
    writeback_fields,
)

__all__ = [
    "API_VERSION",
    "BIG_OBJECTS",
    "COMPONENTS",
    "MAX_INDEX_FIELDS",
    "MAX_INDEX_TEXT_LENGTH",
    "NO_PARENT",
    "PERMISSION_SET",
    "WRITEBACK_PERMISSION_SET",
    "BigField",
    "BigObject",
    "MetadataError",
    "WritebackField",
    "big_object",
    "field_name",
    "packaged_files",
    "render_big_objects",
    "render_writeback",
    "write_project",
    "writeback_fields",
]

#: Each component's paths (files or folders) under ``force-app/main/default``.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "big-objects": (
        *(f"objects/{b.api_name}" for b in BIG_OBJECTS.values()),
        f"permissionsets/{PERMISSION_SET}.permissionset-meta.xml",
    ),
    "writeback-fields": (
        "objects/Contact/fields",
        "objects/Lead/fields",
        f"permissionsets/{WRITEBACK_PERMISSION_SET}.permissionset-meta.xml",
    ),
}

_SOURCE = "force-app/main/default"


class MetadataError(IerkitError):
    """The metadata cannot be written where asked; the message says why."""


def packaged_files(components: list[str] | None = None) -> dict[str, bytes]:
    """The shipped files of ``components`` (all when None), by path under the source folder."""
    names = list(COMPONENTS) if components is None else components
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise MetadataError(
            f"unknown metadata component {', '.join(unknown)}: known are {', '.join(COMPONENTS)}"
        )
    root = resources.files("ierkit.metadata").joinpath(_SOURCE)
    found: dict[str, bytes] = {}
    for name in names:
        for relative in COMPONENTS[name]:
            _collect(root.joinpath(relative), relative, found)
    return found


def _collect(node: resources.abc.Traversable, relative: str, found: dict[str, bytes]) -> None:
    if node.is_file():
        found[relative] = node.read_bytes()
        return
    if not node.is_dir():
        raise MetadataError(f"the installed package lacks {_SOURCE}/{relative}: reinstall ierkit")
    for child in node.iterdir():
        _collect(child, f"{relative}/{child.name}", found)


def write_project(
    out: str | os.PathLike[str], *, components: list[str] | None = None
) -> list[Path]:
    """Write an sfdx project holding ``components`` (all when None) into folder ``out``.

    ``out`` may exist; files ierkit ships are replaced, other files are left alone (a project
    of your own can receive them).

    Returns:
        The files written, sorted.

    Raises:
        MetadataError: ``out`` is a file, or a component is unknown.
    """
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise MetadataError(f"{folder} is a file: --out names a folder for the sfdx project")
    files = packaged_files(components)
    written = []
    project = folder / "sfdx-project.json"
    if not project.exists():
        descriptor = {
            "packageDirectories": [{"path": "force-app", "default": True}],
            "name": "ierkit-metadata",
            "namespace": "",
            "sourceApiVersion": API_VERSION,
        }
        folder.mkdir(parents=True, exist_ok=True)
        _files.write_text(project, json.dumps(descriptor, indent=2) + "\n")
        written.append(project)
    for relative, data in files.items():
        target = folder / _SOURCE / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _files.write_bytes(target, data)
        written.append(target)
    return sorted(written)
