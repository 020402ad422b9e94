"""Transaction-scoped advisory locks, so that work on one organization does not interleave."""

import zlib

from django.db import connection

# Month close, re-rating and FX re-conversion of one organization take this lock, so that a cost
# change is either before a close (and on its invoice) or after it (and an adjustment on the next).
BILLING = "billing"


def advisory_xact_lock(namespace: str, key: int) -> None:
    """Held until the surrounding transaction ends; a no-op off PostgreSQL (SQLite serializes writers)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [zlib.crc32(namespace.encode()) - 2**31, key])
