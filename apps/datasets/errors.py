"""The datasets app's error codes (API.md: Datasets)."""

from __future__ import annotations

from coreadmin.errors import ApiError, Conflict
from coreadmin.errors import BatchIdConflict as BatchIdConflict  # shared with logs, spans


class RetryNotAllowed(Conflict):
    code = "retry_not_allowed"


class DatabaseUnavailable(ApiError):
    status = 503
    code = "database_unavailable"


class DefinitionConflict(Conflict):
    code = "definition_conflict"
