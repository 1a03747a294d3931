"""Telling a database outage from an error about the data sent.

A lost connection, a server shutting down or starting up, or too many connections fail
the whole request (503 with Retry-After, nothing was acknowledged); anything else the
database says (a constraint, a bad value) is about the rows and is handled where they
are written.
"""

from __future__ import annotations

from django.db import connection

# SQLSTATE classes: 08 connection exception, 57P operator intervention (shutdown,
# crash recovery), 53 insufficient resources (too many connections, disk full).
OUTAGE_SQLSTATES = ("08", "57P", "53")


def infrastructure_failure(exc: BaseException) -> bool:
    """True when ``exc`` means the database is unreachable, not that the data is wrong."""
    cause = exc.__cause__ or exc
    state = getattr(cause, "sqlstate", None)
    if state is None or state.startswith(OUTAGE_SQLSTATES):
        return True
    raw = connection.connection
    return raw is None or bool(getattr(raw, "closed", False))
