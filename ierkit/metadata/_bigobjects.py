"""The big objects a cleanup archives into: one per archived table, every canonical field.

Big objects (Salesforce's Big Objects guide) hold Text, Number, DateTime and Long Text Area
fields, one index of up to five required fields whose Text fields total at most 100 characters,
and are queried only through that index: equality (or one IN) on its leading fields, a range
only on the last field a query uses. Inserting a record whose index values exist overwrites it.

The index of the IER archive is (recipient, date sent, IER Id): what people ask of an archive of
sent email is a person's history ("what did we send Jane, and when?": a subject access request,
a complaint), answered by one query with a date range. The IER Id last makes the index unique, so
no two IERs ever overwrite each other. A send's recipients need a read of the whole archive
instead; a send's totals stay on its Email Send record, which a cleanup never deletes.
Link details are indexed by (parent IER Id, link detail Id): a person's clicks follow from their
IERs. Orphaned link details (no parent) carry ``NO_PARENT`` as their parent.

This module is the one place that spells the big objects' API names.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ierkit import schema

#: Big objects allow one index of at most five fields (Big Objects guide, "Define and Deploy").
MAX_INDEX_FIELDS = 5
#: The index's Text fields may total at most 100 characters (same page).
MAX_INDEX_TEXT_LENGTH = 100
#: An 18-character Salesforce Id.
ID_LENGTH = 18
#: Text fields that are not Ids: the longest Text field Salesforce allows is 255.
TEXT_LENGTH = 255
#: Long Text Area for values that may exceed 255 characters (URLs).
LONG_TEXT_LENGTH = 32_768
#: The metadata API version the files are written for.
API_VERSION = "62.0"
#: The index value of a record that has no recipient (an IER whose Contact and Lead were
#: deleted) or no parent (an orphaned link detail): index fields are required.
NO_PARENT = "none"

# Canonical columns that hold an 18-character Salesforce Id.
_ID_COLUMNS = {
    "id",
    "contact_id",
    "lead_id",
    "email_send_id",
    "triggered_send_id",
    "individual_email_result_id",
}
# Canonical string columns that may exceed 255 characters.
_LONG_TEXT = {("individual_links", "link_url")}


@dataclass(frozen=True)
class BigField:
    """One field of a big object.

    Attributes:
        api_name: The field's API name (``Date_Sent__c``).
        label: Its label in Setup.
        kind: ``Text``, ``Number``, ``DateTime`` or ``LongTextArea``.
        column: The canonical column it stores; None for the fields ierkit derives (index keys,
            run id).
        length: Characters, for Text and LongTextArea.
        precision: Digits, for Number (scale is always 0).
        required: Index fields are required.
        description: Shown in Setup.
    """

    api_name: str
    label: str
    kind: str
    column: str | None
    length: int | None = None
    precision: int | None = None
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class BigObject:
    """A big object that archives one canonical table.

    Attributes:
        table: The canonical table (``individual_email_results``).
        api_name: ``Ierkit_IER_Archive__b``.
        label, plural_label: Labels in Setup.
        fields: Every field, canonical columns first.
        index: The index's field API names, in index order.
        index_name: The index's full name.
        key_sources: For each derived index field, the canonical columns whose first non-null
            value it holds (``NO_PARENT`` when all are null).
    """

    table: str
    api_name: str
    label: str
    plural_label: str
    fields: tuple[BigField, ...]
    index: tuple[str, ...]
    index_name: str
    key_sources: tuple[tuple[str, tuple[str, ...]], ...]
    description: str = ""

    def field(self, api_name: str) -> BigField:
        """The field called ``api_name``."""
        for candidate in self.fields:
            if candidate.api_name == api_name:
                return candidate
        raise KeyError(f"{self.api_name} has no field {api_name!r}")

    def field_for(self, column: str) -> BigField:
        """The field that stores canonical ``column``."""
        for candidate in self.fields:
            if candidate.column == column:
                return candidate
        raise KeyError(f"{self.api_name} stores no column {column!r}")

    @property
    def index_text_length(self) -> int:
        """Characters of the index's Text fields together (at most 100)."""
        return sum(
            self.field(name).length or 0 for name in self.index if self.field(name).kind == "Text"
        )


def field_name(column: str) -> str:
    """The big object field of a canonical column: ``date_sent`` -> ``Date_Sent__c``."""
    if column == "id":
        return "Record_Id__c"  # "Id" is the standard field's name
    return "_".join(part.capitalize() for part in column.split("_")) + "__c"


def _column_field(table: str, column: schema.Column, *, required: bool) -> BigField:
    name, label = field_name(column.name), column.name.replace("_", " ").capitalize()
    if column.name == "id":
        label = "Record Id"
    about = column.description or f"{table}.{column.name}"
    dtype = column.dtype
    if dtype == pl.String and (table, column.name) in _LONG_TEXT:
        return BigField(
            name, label, "LongTextArea", column.name, length=LONG_TEXT_LENGTH, description=about
        )
    if dtype == pl.String:
        is_id = column.name in _ID_COLUMNS
        length = ID_LENGTH if is_id else TEXT_LENGTH
        return BigField(
            name, label, "Text", column.name, length=length, required=required, description=about
        )
    if dtype == pl.Boolean:
        return BigField(
            name,
            label,
            "Number",
            column.name,
            precision=1,
            description=f"{about} (1 true, 0 false)",
        )
    if dtype.is_integer():
        precision = 18 if dtype == pl.Int64 else 9
        return BigField(name, label, "Number", column.name, precision=precision, description=about)
    if isinstance(dtype, pl.Datetime):
        return BigField(name, label, "DateTime", column.name, required=required, description=about)
    raise TypeError(
        f"{table}.{column.name}: no big object field type for {dtype}"
    )  # pragma: no cover


def _big_object(
    table: str,
    api_name: str,
    label: str,
    keys: tuple[tuple[str, str, tuple[str, ...]], ...],
    index: tuple[str, ...],
    description: str,
) -> BigObject:
    spec = schema.table(table)
    indexed = {f for f in index}
    fields = [_column_field(table, c, required=field_name(c.name) in indexed) for c in spec.columns]
    fields += [
        BigField(
            name,
            name.removesuffix("__c").replace("_", " "),
            "Text",
            None,
            length=ID_LENGTH,
            required=True,
            description=about,
        )
        for name, about, _ in keys
    ]
    fields.append(
        BigField(
            "Run_Id__c",
            "Run Id",
            "Text",
            None,
            length=100,
            description="the ierkit cleanup run that archived the record",
        )
    )
    return BigObject(
        table=table,
        api_name=api_name,
        label=label,
        plural_label=label + "s",
        fields=tuple(fields),
        index=index,
        index_name=api_name.removesuffix("__b").replace("_", "") + "Index",
        key_sources=tuple((name, sources) for name, _, sources in keys),
        description=description,
    )


IER_ARCHIVE = _big_object(
    "individual_email_results",
    "Ierkit_IER_Archive__b",
    "IER Archive",
    (
        (
            "Recipient_Id__c",
            f"the Contact, else the Lead, the IER went to ({NO_PARENT!r} when neither)",
            ("contact_id", "lead_id"),
        ),
    ),
    ("Recipient_Id__c", "Date_Sent__c", "Record_Id__c"),
    "Individual Email Results archived by ierkit cleanup; index: a person's history by date.",
)

LINK_ARCHIVE = _big_object(
    "individual_links",
    "Ierkit_Link_Archive__b",
    "Link Detail Archive",
    (
        (
            "Parent_Id__c",
            f"the IER the link detail belongs to ({NO_PARENT!r} when orphaned)",
            ("individual_email_result_id",),
        ),
    ),
    ("Parent_Id__c", "Record_Id__c"),
    "Individual Link Level Details archived by ierkit cleanup; index: an IER's links.",
)

#: The big object of each archived table.
BIG_OBJECTS: dict[str, BigObject] = {b.table: b for b in (IER_ARCHIVE, LINK_ARCHIVE)}
#: The permission set that grants read and create on the big objects.
PERMISSION_SET = "Ierkit_Archive"


def big_object(table: str) -> BigObject:
    """The big object that archives canonical ``table``."""
    try:
        return BIG_OBJECTS[table]
    except KeyError:
        raise KeyError(f"no big object archives table {table!r}") from None
