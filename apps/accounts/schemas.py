from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema


class ApiKeyCreateIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scope: Literal["scraper", "admin"] = "scraper"
    service: str = Field(default="", max_length=100)
    expires_days: int | None = Field(default=None, ge=1, le=3650)


class ApiKeyOut(Schema):
    id: int
    name: str
    prefix: str
    scope: str
    service: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The raw key. Shown only in this response.")


class ApiKeyListOut(Schema):
    items: list[ApiKeyOut]
    count: int
