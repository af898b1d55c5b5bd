"""Salesforce metadata (source format) rendered from the definitions in ``_bigobjects``.

The rendered files ship inside the package (``ierkit/metadata/force-app``); a test renders them
again and compares, so the shipped files never drift from the definitions ierkit reads and
writes through.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from ierkit.metadata._bigobjects import BIG_OBJECTS, PERMISSION_SET, BigField, BigObject

_NS = "http://soap.sforce.com/2006/04/metadata"
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def element(tag: str, value: object, indent: int = 1) -> str:
    """One XML element on its own line (booleans as ``true``/``false``, text escaped)."""
    text = str(value).lower() if isinstance(value, bool) else escape(str(value))
    return f"{'    ' * indent}<{tag}>{text}</{tag}>\n"


def xml_head(root: str) -> str:
    """The XML declaration and the opening tag of a metadata file's root element."""
    return f'{_HEAD}<{root} xmlns="{_NS}">\n'


def field_permission(field: str) -> str:
    """A permission set's ``fieldPermissions`` block: ``Object.Field`` readable and editable."""
    return (
        "    <fieldPermissions>\n"
        + element("editable", True, 2)
        + element("field", field, 2)
        + element("readable", True, 2)
        + "    </fieldPermissions>\n"
    )


def object_permission(sobject: str, *, create: bool, edit: bool) -> str:
    """A permission set's ``objectPermissions`` block: read, plus create and edit as given."""
    return (
        "    <objectPermissions>\n"
        + element("allowCreate", create, 2)
        + element("allowDelete", False, 2)
        + element("allowEdit", edit, 2)
        + element("allowRead", True, 2)
        + element("modifyAllRecords", False, 2)
        + element("object", sobject, 2)
        + element("viewAllRecords", False, 2)
        + "    </objectPermissions>\n"
    )


_element = element


def _object_xml(big: BigObject) -> str:
    return (
        f'{_HEAD}<CustomObject xmlns="{_NS}">\n'
        + _element("deploymentStatus", "Deployed")
        + _element("description", big.description)
        + _element("label", big.label)
        + _element("pluralLabel", big.plural_label)
        + "</CustomObject>\n"
    )


def _field_xml(field: BigField) -> str:
    body = _element("fullName", field.api_name)
    if field.description:
        body += _element("description", field.description[:1000])
    body += _element("label", field.label)
    if field.kind in ("Text", "LongTextArea"):
        body += _element("length", field.length)
    if field.kind == "Number":
        body += _element("precision", field.precision) + _element("scale", 0)
    body += _element("required", field.required)
    body += _element("type", field.kind)
    if field.kind == "LongTextArea":
        body += _element("visibleLines", 3)
    return f'{_HEAD}<CustomField xmlns="{_NS}">\n{body}</CustomField>\n'


def _index_xml(big: BigObject) -> str:
    fields = "".join(
        "    <fields>\n"
        + _element("name", name, 2)
        + _element("sortDirection", "DESC" if big.field(name).kind == "DateTime" else "ASC", 2)
        + "    </fields>\n"
        for name in big.index
    )
    return (
        f'{_HEAD}<Index xmlns="{_NS}">\n'
        + _element("fullName", big.index_name)
        + fields
        + _element("label", f"{big.label} Index")
        + "</Index>\n"
    )


def _permission_set_xml() -> str:
    body = _element(
        "description",
        "Read and archive into ierkit's big objects (IER and link detail archives). Give it to "
        "the integration user that runs ierkit cleanup, and to people who read the archive.",
    )
    for big in BIG_OBJECTS.values():
        # Required fields are always readable and writable: permission sets may not list them.
        for field in sorted((f for f in big.fields if not f.required), key=lambda f: f.api_name):
            body += field_permission(f"{big.api_name}.{field.api_name}")
    body += _element("label", "ierkit archive")
    for big in BIG_OBJECTS.values():
        body += object_permission(big.api_name, create=True, edit=False)
    return f'{_HEAD}<PermissionSet xmlns="{_NS}">\n{body}</PermissionSet>\n'


def render_big_objects() -> dict[str, str]:
    """The big objects and their permission set, by path under ``force-app/main/default``."""
    files: dict[str, str] = {}
    for big in BIG_OBJECTS.values():
        folder = f"objects/{big.api_name}"
        files[f"{folder}/{big.api_name}.object-meta.xml"] = _object_xml(big)
        for field in big.fields:
            files[f"{folder}/fields/{field.api_name}.field-meta.xml"] = _field_xml(field)
        files[f"{folder}/indexes/{big.index_name}.index-meta.xml"] = _index_xml(big)
    files[f"permissionsets/{PERMISSION_SET}.permissionset-meta.xml"] = _permission_set_xml()
    return files
