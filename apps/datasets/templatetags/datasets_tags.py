from __future__ import annotations

from typing import Any

import orjson
from django import template

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """Compact JSON (not Python's repr) for records shown in lists; autoescaped."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
