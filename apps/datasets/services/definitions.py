"""Dataset definitions: create or replace, validated; the parsed mapping, cached."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import transaction

from apps.accounts.services import audit_record
from apps.datasets.errors import DefinitionConflict
from apps.datasets.mapping import DATASET_NAME_RE, Mapping, build_mapping, parse_definition
from apps.datasets.models import Dataset, Record
from coreadmin.clock import clock
from coreadmin.errors import ValidationFailed

RESERVED_NAMES = {"retries"}  # /datasets/retries/ is the retry queue page

# The serialised definition -> its Mapping; definitions change rarely.
_mappings: dict[bytes, Mapping] = {}


def dataset_mapping(dataset: Dataset) -> Mapping:
    cache_key = orjson.dumps([dataset.key_fields, dataset.fields], option=orjson.OPT_SORT_KEYS)
    mapping = _mappings.get(cache_key)
    if mapping is None:
        if len(_mappings) > 1000:
            _mappings.clear()
        mapping = build_mapping(dataset.fields, dataset.key_fields)
        _mappings[cache_key] = mapping
    return mapping


def _check_references(fields: dict[str, Any]) -> list[dict[str, str]]:
    """A reference to a defined parent must name its single key field, of the same type.
    A parent not defined yet is allowed: its records fail as missing_reference until it is."""
    errors = []
    wanted = {
        name: spec["references"].split(".", 1)
        for name, spec in fields.items()
        if spec.get("references")
    }
    parents = {d.name: d for d in Dataset.objects.filter(name__in=[p for p, _ in wanted.values()])}
    for name, (parent_name, parent_field) in wanted.items():
        parent = parents.get(parent_name)
        if parent is None:
            continue
        if parent.key_fields != [parent_field]:
            errors.append(
                {
                    "path": f"fields.{name}.references",
                    "reason": f"{parent_field!r} must be the single key field of {parent_name!r} "
                    f"(its key is {parent.key_fields})",
                }
            )
        elif parent.fields[parent_field]["type"] != fields[name]["type"]:
            errors.append(
                {
                    "path": f"fields.{name}.references",
                    "reason": f"{parent_name}.{parent_field} is a "
                    f"{parent.fields[parent_field]['type']}, this field a {fields[name]['type']}",
                }
            )
    return errors


@transaction.atomic
def dataset_put(*, name: str, key_fields: Any, fields: Any, actor: str) -> tuple[Dataset, bool]:
    """Creates or replaces a definition: (dataset, created). Changing the key fields of a
    dataset that has records is refused (409): existing keys would no longer match."""
    if not DATASET_NAME_RE.fullmatch(name) or name in RESERVED_NAMES:
        raise ValidationFailed(
            "The dataset name is not valid.",
            [
                {
                    "path": "name",
                    "reason": "lowercase letters, digits, _ and -, up to 100; not 'retries'",
                }
            ],
        )
    normal, keys, errors = parse_definition(key_fields, fields)
    if not errors:
        errors = _check_references(normal)
    if errors:
        raise ValidationFailed("The dataset definition is not valid; see details.fields.", errors)
    now = clock.now()
    dataset = Dataset.objects.select_for_update().filter(name=name).first()
    created = dataset is None
    if dataset is None:
        dataset = Dataset.objects.create(
            name=name, key_fields=keys, fields=normal, created_at=now, updated_at=now
        )
    else:
        if dataset.key_fields != keys and Record.objects.filter(dataset=dataset).exists():
            raise DefinitionConflict(
                f"Dataset {name!r} has records keyed by {dataset.key_fields}; "
                "its key fields cannot change.",
                details={"key_fields": dataset.key_fields},
            )
        dataset.key_fields = keys
        dataset.fields = normal
        dataset.updated_at = now
        dataset.save(update_fields=["key_fields", "fields", "updated_at"])
    audit_record(
        actor=actor,
        action="dataset.create" if created else "dataset.update",
        target=name,
        details={"key_fields": keys, "fields": normal},
    )
    return dataset, created


@transaction.atomic
def dataset_delete(*, dataset_id: int, actor: str) -> bool:
    """Deletes a dataset with its records, counts, batch ids and retry items (audited).
    Takes the dataset row FOR UPDATE first: batches being written into it hold it FOR KEY
    SHARE, so the delete waits for them (their records are deleted too) and batches
    arriving meanwhile wait for it and then find no dataset (404, nothing written)."""
    dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if dataset is None:
        return False
    name = dataset.name
    dataset.delete()
    audit_record(actor=actor, action="dataset.delete", target=name, details={})
    return True
