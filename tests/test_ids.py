import polars as pl
import pytest

from ierkit import ids


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        ("003xx000004TmiQ", "003xx000004TmiQAAS"),
        ("00300000000abcd", "00300000000abcdAAA"),  # no uppercase letters: AAA
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),
        ("ABCDEABCDEABCDE", "ABCDEABCDEABCDE555"),  # every letter uppercase: bits 31 = '5'
    ],
)
def test_to_18_known_ids(id15: str, id18: str) -> None:
    assert ids.to_18(id15) == id18
    assert ids.to_18(id18) == id18
    assert ids.is_valid_id(id15) and ids.is_valid_id(id18)


def test_to_18_expr_matches_scalar_and_nulls_junk() -> None:
    values = ["003xx000004TmiQ", "00300000000abcd", "003xx000004TmiQAAS", "a@b.com", "", None]
    result = pl.DataFrame({"k": values}).select(ids.to_18_expr("k")).to_series().to_list()
    assert result == ["003xx000004TmiQAAS", "00300000000abcdAAA", "003xx000004TmiQAAS"] + [None] * 3


@pytest.mark.parametrize(
    "bad", ["003xx000004TmiQAAA", "003xx000004Tmi", "003xx000004TmiQ!", "", None, 12345]
)
def test_invalid_ids(bad: object) -> None:
    assert not ids.is_valid_id(bad)  # type: ignore[arg-type]
    if isinstance(bad, str):
        with pytest.raises(ValueError, match="not a 15- or 18-character"):
            ids.to_18(bad)


@pytest.mark.parametrize(
    ("record_id", "expected"),
    [
        ("003xx000004TmiQAAS", "Contact"),
        ("00Qxx000004TmiQ", "Lead"),
        ("005xx000004TmiQ", "User"),
        ("701xx000004TmiQ", "Campaign"),
        ("00vxx000004TmiQ", "CampaignMember"),
        ("00Txx000004TmiQ", "Task"),
        ("a0Rxx000004TmiQ", None),  # custom object: prefix varies per org
        ("not an id", None),
    ],
)
def test_object_type(record_id: str, expected: str | None) -> None:
    assert ids.object_type(record_id) == expected
    frame = pl.DataFrame({"k": [record_id]})
    assert frame.select(ids.object_type_expr("k")).item() == expected


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("003xx000004TmiQAAS", ids.KEY_CONTACT_OR_LEAD_ID),
        ("00Qxx000004TmiQEAS", ids.KEY_CONTACT_OR_LEAD_ID),
        ("003xx000004TmiQ", ids.KEY_ID15),
        ("00Qxx000004TmiQ", ids.KEY_ID15),
        ("jane.doe@example.com", ids.KEY_EMAIL),
        ("005xx000004TmiQAAS", ids.KEY_OTHER),  # a User Id is no Contact or Lead
        ("003xx000004TmiQAAA", ids.KEY_OTHER),  # wrong suffix
        ("CUST-000123", ids.KEY_OTHER),
        ("", ids.KEY_BLANK),
        ("  ", ids.KEY_BLANK),
        (None, ids.KEY_BLANK),
    ],
)
def test_classify_subscriber_key(key: str | None, kind: str) -> None:
    assert ids.classify_subscriber_key(key) == kind
    frame = pl.DataFrame({"k": [key]}, schema={"k": pl.String})
    assert frame.select(ids.classify_subscriber_key_expr("k")).item() == kind
