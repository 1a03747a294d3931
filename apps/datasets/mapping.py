"""Dataset definitions and record mapping: pure Python, no I/O.

A definition names stored fields; each has a ``type``, optional ``required``, an optional
``source`` (the name scrapers send, when it differs) and optional ``references``
("parent_dataset.field"). Mapping a record renames, coerces and checks it and reports
every problem per field, so ``over_18`` vs ``over18`` can never be dropped silently: an
incoming name that is not a known source is an error, with a hint when it is the stored
name of a field that is received under another name.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

TYPES = ("string", "integer", "float", "boolean", "datetime", "json")
KEY_TYPES = ("string", "integer", "boolean", "datetime")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
SOURCE_RE = re.compile(r"[^\s]{1,100}")
DATASET_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
_INT_RE = re.compile(r"[+-]?\d+")
_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off"}


class CoercionError(ValueError):
    pass


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool
    source: str
    references: tuple[str, str] | None  # (parent dataset, parent field)


@dataclass(frozen=True)
class Mapping:
    fields: tuple[FieldSpec, ...]
    key_fields: tuple[str, ...]
    by_source: dict[str, FieldSpec]
    # stored name -> the source it is received as, for fields renamed by ``source``
    renamed: dict[str, str]
    # For the fast path (see _map_fast): every accepted source name, and per field
    # (source, stored name, required, the Python type stored as is, type name).
    sources: frozenset[str] = frozenset()
    plan: tuple[tuple[str, str, bool, type | None, str], ...] = ()

    @property
    def references(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.references)


def parse_definition(
    key_fields: Any, fields: Any
) -> tuple[dict[str, Any], list[str], list[dict[str, str]]]:
    """Validates and normalises a definition: (fields, key_fields, errors)."""
    errors: list[dict[str, str]] = []
    normal: dict[str, Any] = {}
    if not isinstance(fields, dict) or not fields:
        errors.append({"path": "fields", "reason": "an object with at least one field"})
        fields = {}
    sources: dict[str, str] = {}
    for name, spec in fields.items():
        path = f"fields.{name}"
        if not NAME_RE.fullmatch(str(name)):
            errors.append({"path": path, "reason": "field names are identifiers ([A-Za-z_]\\w*)"})
            continue
        if not isinstance(spec, dict):
            errors.append({"path": path, "reason": 'an object like {"type": "string"}'})
            continue
        unknown = set(spec) - {"type", "required", "source", "references"}
        if unknown:
            errors.append({"path": path, "reason": f"unknown keys: {', '.join(sorted(unknown))}"})
        ftype = spec.get("type")
        if ftype not in TYPES:
            errors.append({"path": f"{path}.type", "reason": f"one of {', '.join(TYPES)}"})
        required = spec.get("required", False)
        if not isinstance(required, bool):
            errors.append({"path": f"{path}.required", "reason": "true or false"})
        source = spec.get("source") or name
        if not isinstance(source, str) or not SOURCE_RE.fullmatch(source):
            errors.append({"path": f"{path}.source", "reason": "a non-empty name"})
            source = name
        if source in sources:
            errors.append(
                {
                    "path": f"{path}.source",
                    "reason": f"{source!r} is also the source of {sources[source]!r}",
                }
            )
        sources[source] = name
        references = spec.get("references")
        if references is not None:
            parts = references.split(".") if isinstance(references, str) else []
            if (
                len(parts) != 2
                or not DATASET_NAME_RE.fullmatch(parts[0])
                or not NAME_RE.fullmatch(parts[1])
            ):
                errors.append(
                    {"path": f"{path}.references", "reason": 'like "parent_dataset.field"'}
                )
            elif ftype not in KEY_TYPES:
                errors.append(
                    {
                        "path": f"{path}.references",
                        "reason": f"only {', '.join(KEY_TYPES)} fields can reference a parent",
                    }
                )
        entry: dict[str, Any] = {"type": ftype, "required": bool(required)}
        if source != name:
            entry["source"] = source
        if references:
            entry["references"] = references
        normal[name] = entry
    keys: list[str] = []
    if not isinstance(key_fields, list) or not key_fields:
        errors.append({"path": "key_fields", "reason": "a non-empty list of field names"})
    else:
        for index, key in enumerate(key_fields):
            if key not in normal:
                errors.append({"path": f"key_fields.{index}", "reason": f"{key!r} is not a field"})
            elif normal[key]["type"] not in KEY_TYPES:
                errors.append(
                    {
                        "path": f"key_fields.{index}",
                        "reason": f"key fields are {', '.join(KEY_TYPES)}",
                    }
                )
            elif key in keys:
                errors.append({"path": f"key_fields.{index}", "reason": "listed twice"})
            else:
                keys.append(key)
                normal[key]["required"] = True  # a key is always required
    return normal, keys, errors


def build_mapping(fields: dict[str, Any], key_fields: list[str]) -> Mapping:
    specs = []
    for name, spec in fields.items():
        refs = spec.get("references")
        parent = tuple(refs.split(".", 1)) if refs else None
        specs.append(
            FieldSpec(
                name=name,
                type=spec["type"],
                required=bool(spec.get("required")) or name in key_fields,
                source=spec.get("source") or name,
                references=parent,  # type: ignore[arg-type]
            )
        )
    return Mapping(
        fields=tuple(specs),
        key_fields=tuple(key_fields),
        by_source={s.source: s for s in specs},
        renamed={s.name: s.source for s in specs if s.source != s.name},
        sources=frozenset(s.source for s in specs),
        plan=tuple((s.source, s.name, s.required, _EXACT.get(s.type), s.type) for s in specs),
    )


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value  # NUL characters are caught once per record, in map_and_encode
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CoercionError(f"expected a string, got {_describe(value)}")
    return str(value)


def _integer(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise CoercionError(f"expected an integer, got {_describe(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value.strip())
    raise CoercionError(f"expected an integer, got {_describe(value)}")


def _float(value: Any) -> float:
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool):
        raise CoercionError(f"expected a number, got {_describe(value)}")
    result: float | None = None
    try:
        if isinstance(value, int | float):
            result = float(value)
        elif isinstance(value, str):
            result = float(value.strip())
    except (ValueError, OverflowError):  # OverflowError: an int beyond a double's range
        result = None
    if result is None or not math.isfinite(result):
        raise CoercionError(f"expected a finite number, got {_describe(value)}")
    return result


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise CoercionError(f"expected a boolean (true/false), got {_describe(value)}")


def _datetime(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise CoercionError(f"expected a datetime, got {_describe(value)}")
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC).isoformat()
        except (OverflowError, OSError, ValueError) as exc:
            raise CoercionError(f"epoch seconds out of range: {_describe(value)}") from exc
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise CoercionError(f"expected an ISO 8601 datetime, got {_describe(value)}") from exc
        if parsed.tzinfo is None:
            raise CoercionError(f"datetime {_describe(value)} needs a time zone (e.g. Z)")
        return parsed.astimezone(dt.UTC).isoformat()
    raise CoercionError(f"expected a datetime, got {_describe(value)}")


def _json(value: Any) -> Any:
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


# Values of these Python types are stored unchanged by their field type's coercion.
_EXACT: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool}
_MISSING = object()


def _map_fast(mapping: Mapping, raw: Any) -> dict[str, Any] | None:
    """The common case in one pass: a dict with known fields only, each value already of
    its field's type (or null where allowed, or a zoned ISO datetime). Returns exactly
    what ``_map`` would, or None when the record needs ``_map`` (coercions, errors)."""
    if type(raw) is not dict or not raw.keys() <= mapping.sources:
        return None
    data: dict[str, Any] = {}
    get = raw.get
    for source, name, required, exact, ftype in mapping.plan:
        value = get(source, _MISSING)
        if value is None or value is _MISSING:
            if required:
                return None
            if value is None:
                data[name] = None
        elif type(value) is exact:
            if exact is float and not math.isfinite(value):  # type: ignore[arg-type]
                return None
            data[name] = value
        elif ftype == "json":
            data[name] = value
        elif ftype == "datetime" and type(value) is str:
            try:
                parsed = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                return None
            if parsed.tzinfo is None:
                return None
            data[name] = parsed.astimezone(dt.UTC).isoformat()
        else:
            return None
    return data


COERCE = {
    "string": _string,
    "integer": _integer,
    "float": _float,
    "boolean": _boolean,
    "datetime": _datetime,
    "json": _json,
}


def map_record(mapping: Mapping, raw: Any) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """(stored data, []) or (None, [{"path": source name, "reason": ...}, ...])."""
    data, _, errors = map_and_encode(mapping, raw)
    return data, errors


NUL_REASON = "contains a NUL character (\\u0000), which Postgres cannot store"


def map_and_encode(
    mapping: Mapping, raw: Any
) -> tuple[dict[str, Any] | None, bytes, list[dict[str, str]]]:
    """Maps a record and encodes it as JSON: (data, JSON bytes, errors). NUL characters
    are found with one search of the encoded bytes rather than one per string."""
    data = _map_fast(mapping, raw)
    if data is None:
        data, errors = _map(mapping, raw)
        if data is None:
            return None, b"", errors
    encoded = orjson.dumps(data)
    if b"\\u0000" in encoded:
        by_name = {spec.name: spec.source for spec in mapping.fields}
        errors = [
            {"path": by_name[name], "reason": NUL_REASON}
            for name, value in data.items()
            if _has_nul(value)
        ]
        if errors:  # else it was an escaped backslash followed by "u0000": fine
            return None, b"", errors
    return data, encoded, []


def _map(mapping: Mapping, raw: Any) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    if not isinstance(raw, dict):
        return None, [{"path": "", "reason": f"a record is an object, got {_describe(raw)}"}]
    errors: list[dict[str, str]] = []
    data: dict[str, Any] = {}
    by_source = mapping.by_source
    for name in raw:
        if name not in by_source:
            if name in mapping.renamed:
                reason = (
                    f"unknown field; {name!r} is stored from {mapping.renamed[name]!r}, "
                    f"send it as {mapping.renamed[name]!r}"
                )
            else:
                reason = "unknown field (not in the dataset definition)"
            errors.append({"path": name, "reason": reason})
    for spec in mapping.fields:
        if spec.source not in raw:
            if spec.required:
                errors.append({"path": spec.source, "reason": "required"})
            continue
        value = raw[spec.source]
        if value is None:
            if spec.required:
                errors.append({"path": spec.source, "reason": "required, got null"})
            else:
                data[spec.name] = None
            continue
        try:
            data[spec.name] = COERCE[spec.type](value)
        except CoercionError as exc:
            errors.append({"path": spec.source, "reason": str(exc)})
    if errors:
        return None, errors
    return data, []


def describe_errors(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['path']}: {e['reason']}" if e["path"] else e["reason"] for e in errors)
