from __future__ import annotations

import pytest

from apps.datasets.mapping import build_mapping, map_record, parse_definition

from .conftest import POSTS_FIELDS


def mapping():
    fields, keys, errors = parse_definition(["id"], POSTS_FIELDS)
    assert errors == []
    return build_mapping(fields, keys)


def test_source_renames_an_incoming_field_to_its_stored_name():
    data, errors = map_record(mapping(), {"id": "a", "over_18": True})
    assert errors == []
    assert data == {"id": "a", "over18": True}


def test_sending_the_stored_name_instead_of_the_source_is_an_error_with_a_hint():
    data, errors = map_record(mapping(), {"id": "a", "over18": True})
    assert data is None
    assert errors == [
        {
            "path": "over18",
            "reason": "unknown field; 'over18' is stored from 'over_18', send it as 'over_18'",
        }
    ]


def test_unknown_fields_are_reported_not_dropped():
    data, errors = map_record(mapping(), {"id": "a", "upvotes": 3})
    assert data is None
    assert errors[0]["path"] == "upvotes"


@pytest.mark.parametrize(
    ("ftype", "raw", "stored"),
    [
        ("integer", "42", 42),
        ("integer", 42.0, 42),
        ("integer", " -7 ", -7),
        ("float", "1.5", 1.5),
        ("float", 3, 3.0),
        ("boolean", "yes", True),
        ("boolean", "0", False),
        ("boolean", 1, True),
        ("string", 12, "12"),
        ("datetime", "2026-09-21T14:13:20Z", "2026-09-21T14:13:20+00:00"),
        ("datetime", "2026-09-21T16:13:20+02:00", "2026-09-21T14:13:20+00:00"),
        ("datetime", 1_790_000_000, "2026-09-21T14:13:20+00:00"),
        ("json", {"a": [1, 2]}, {"a": [1, 2]}),
    ],
)
def test_values_are_coerced_to_their_field_type(ftype, raw, stored):
    fields, keys, _ = parse_definition(["id"], {"id": {"type": "string"}, "v": {"type": ftype}})
    data, errors = map_record(build_mapping(fields, keys), {"id": "k", "v": raw})
    assert errors == []
    assert data is not None and data["v"] == stored


@pytest.mark.parametrize(
    ("ftype", "raw", "reason"),
    [
        ("integer", "abc", "expected an integer, got 'abc'"),
        ("integer", 1.5, "expected an integer, got 1.5"),
        ("integer", True, "expected an integer, got True"),
        ("float", "NaN", "expected a finite number, got 'NaN'"),
        ("boolean", "maybe", "expected a boolean (true/false), got 'maybe'"),
        ("string", ["x"], "expected a string, got ['x']"),
        ("string", "a\x00b", "contains a NUL character"),
        ("datetime", "2026-09-21 14:13", "needs a time zone"),
        ("datetime", "yesterday", "expected an ISO 8601 datetime, got 'yesterday'"),
    ],
)
def test_a_value_that_cannot_be_coerced_gets_a_clear_per_field_error(ftype, raw, reason):
    fields, keys, _ = parse_definition(["id"], {"id": {"type": "string"}, "v": {"type": ftype}})
    data, errors = map_record(build_mapping(fields, keys), {"id": "k", "v": raw})
    assert data is None
    assert errors[0]["path"] == "v"
    assert reason in errors[0]["reason"]


def test_every_problem_of_a_record_is_reported_at_once():
    data, errors = map_record(mapping(), {"score": "x", "over_18": "perhaps"})
    assert data is None
    assert {e["path"] for e in errors} == {"id", "score", "over_18"}


def test_required_fields_and_nulls():
    m = mapping()
    assert map_record(m, {"id": None})[1] == [{"path": "id", "reason": "required, got null"}]
    data, errors = map_record(m, {"id": "a", "score": None})
    assert errors == [] and data == {"id": "a", "score": None}


def test_a_definition_with_problems_lists_each_of_them():
    _, _, errors = parse_definition(
        ["nope", "blob"],
        {
            "id": {"type": "text"},
            "a": {"type": "string", "source": "x"},
            "b": {"type": "string", "source": "x"},
            "blob": {"type": "json"},
            "c": {"type": "string", "references": "no-dot"},
            "d": {"type": "json", "references": "parents.name"},
        },
    )
    paths = {e["path"] for e in errors}
    assert paths == {
        "fields.id.type",
        "fields.b.source",
        "fields.c.references",
        "fields.d.references",
        "key_fields.0",
        "key_fields.1",
    }


def test_key_fields_are_always_required():
    fields, keys, errors = parse_definition(["id"], {"id": {"type": "string"}})
    assert errors == [] and keys == ["id"] and fields["id"]["required"] is True


def test_a_literal_backslash_u0000_is_not_mistaken_for_a_nul_character():
    data, errors = map_record(mapping(), {"id": "C:\\u0000dir"})
    assert errors == [] and data == {"id": "C:\\u0000dir"}


def test_nul_characters_anywhere_in_a_json_value_are_found():
    fields, keys, _ = parse_definition(["id"], {"id": {"type": "string"}, "j": {"type": "json"}})
    data, errors = map_record(build_mapping(fields, keys), {"id": "k", "j": {"a": ["x\x00"]}})
    assert data is None and errors[0]["path"] == "j" and "NUL" in errors[0]["reason"]


def test_the_fast_path_accepts_only_what_the_full_mapping_accepts_and_stores_the_same():
    from apps.datasets.mapping import _map, _map_fast

    fields, keys, _ = parse_definition(
        ["id"],
        {
            "id": {"type": "string"},
            "n": {"type": "integer"},
            "x": {"type": "float"},
            "b": {"type": "boolean", "source": "b_in"},
            "t": {"type": "datetime"},
            "j": {"type": "json"},
            "r": {"type": "string", "required": True},
        },
    )
    m = build_mapping(fields, keys)
    values = {
        "id": ["a", 7, None, True, ["a"]],
        "n": [1, 2.0, "3", True, 1.5, None, "x"],
        "x": [1.5, 2, "2.5", float("inf"), 10**400, True, None],
        "b_in": [True, 1, "yes", 2, None],
        "t": ["2026-09-21T14:13:20Z", " 2026-09-21T16:13:20+02:00", "2026-09-21T14:13", 5, None],
        "j": [{"a": [1]}, None, "s"],
        "r": ["ok", None],
    }
    base = {"id": "a", "n": 1, "x": 1.5, "b_in": True, "t": "2026-09-21T14:13:20Z", "r": "ok"}
    records: list[object] = [base, {**base, "b": True}, {**base, "extra": 1}, ["not", "a", "dict"]]
    for name, options in values.items():
        for value in options:
            records.append({**base, name: value})
        records.append({k: v for k, v in base.items() if k != name})
    fast_hits = 0
    for record in records:
        full, errors = _map(m, record)
        fast = _map_fast(m, record)
        if fast is not None:
            fast_hits += 1
            assert errors == [] and fast == full and list(fast) == list(full), record
    assert fast_hits >= 10  # the common shapes do take the fast path
