"""The datasets app's error codes (API.md: Datasets)."""

from __future__ import annotations

from coreadmin.errors import BatchIdConflict as BatchIdConflict  # shared with logs, spans
from coreadmin.errors import Conflict
from coreadmin.errors import DatabaseUnavailable as DatabaseUnavailable  # shared by the API


class RetryNotAllowed(Conflict):
    code = "retry_not_allowed"


class DefinitionConflict(Conflict):
    code = "definition_conflict"
