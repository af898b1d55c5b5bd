"""The write-back's custom fields on Contact and Lead and their permission set, from the schema.

The six engagement summary columns of ``ierkit.schema`` (``engagement_*`` on ``contacts`` and
``leads``) are the one source of truth: their API names, and their types mapped here to
Salesforce field types. ``render_writeback`` renders the source-format files that ship in
``force-app/main/default`` (a test renders them again and compares).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from ierkit import schema
from ierkit.metadata._render import element, field_permission, object_permission, xml_head

#: The permission set that lets the integration user write the summary (and create Tasks).
WRITEBACK_PERMISSION_SET: Final = "Ierkit_Writeback"

#: The objects the summary is written onto.
WRITEBACK_TABLES: Final = (schema.CONTACTS, schema.LEADS)


@dataclass(frozen=True)
class WritebackField:
    """One custom field: its API name, label, Salesforce type and size."""

    api_name: str
    label: str
    kind: str
    description: str
    precision: int = 0
    scale: int = 0
    length: int = 0


def _kind(dtype: pl.DataType) -> tuple[str, int, int, int]:
    """Salesforce type, precision, scale and length for a summary column's polars type."""
    if dtype == schema.UTC_DATETIME:
        return "DateTime", 0, 0, 0
    if dtype == schema.COUNT():  # Number(6,0), as the package's click counts
        return "Number", 6, 0, 0
    if dtype == pl.Float64():  # Number(8,2): a score to two decimals, up to 999,999.99
        return "Number", 8, 2, 0
    if dtype == pl.String():  # Text(255), the longest plain text field
        return "Text", 0, 0, 255
    raise ValueError(f"no Salesforce field type for {dtype}")


def writeback_fields() -> list[WritebackField]:
    """The six fields, in schema order (the same on Contact and Lead)."""
    fields = []
    for column in schema.CONTACTS.columns:
        if not column.name.startswith("engagement_"):
            continue
        kind, precision, scale, length = _kind(column.dtype)
        label = column.sf_field.removeprefix("Ierkit_").removesuffix("__c").replace("_", " ")
        fields.append(
            WritebackField(
                column.sf_field,
                label,
                kind,
                column.description,
                precision,
                scale,
                length,
            )
        )
    return fields


def _field_xml(field: WritebackField) -> str:
    body = element("fullName", field.api_name) + element("description", field.description)
    body += element("externalId", False) + element("label", field.label)
    if field.kind == "Text":
        body += element("length", field.length)
    if field.kind == "Number":
        body += element("precision", field.precision)
    body += element("required", False)
    if field.kind == "Number":
        body += element("scale", field.scale)
    body += element("trackHistory", False) + element("type", field.kind)
    if field.kind == "Text":
        body += element("unique", False)
    return f"{xml_head('CustomField')}{body}</CustomField>\n"


def _permission_set_xml() -> str:
    body = element(
        "description",
        "Write ierkit's engagement summary onto Contacts and Leads (ierkit writeback), and "
        "create its optional Tasks. Give it to the integration user that runs the write-back.",
    )
    for table in WRITEBACK_TABLES:
        for field in writeback_fields():
            body += field_permission(f"{table.sobject}.{field.api_name}")
    body += element("hasActivationRequired", False) + element("label", "ierkit write-back")
    for sobject, create, edit in (
        ("Contact", False, True),
        ("Lead", False, True),
        ("Task", True, False),
    ):
        body += object_permission(sobject, create=create, edit=edit)
    return f"{xml_head('PermissionSet')}{body}</PermissionSet>\n"


def render_writeback() -> dict[str, str]:
    """The fields on Contact and Lead and the permission set, by path under the source folder."""
    files: dict[str, str] = {}
    for table in WRITEBACK_TABLES:
        for field in writeback_fields():
            path = f"objects/{table.sobject}/fields/{field.api_name}.field-meta.xml"
            files[path] = _field_xml(field)
    files[f"permissionsets/{WRITEBACK_PERMISSION_SET}.permissionset-meta.xml"] = (
        _permission_set_xml()
    )
    return files
