"""A PROTOTYPE of the suggested ingest changes, applied by monkeypatching, to measure them end to end.

Not the product: nothing here changes the repository's code. `bench/ingest.py --whatif` serves
`bench.whatif_wsgi:application` (the product's WSGI application after `apply()`) instead of
`costportal.wsgi:application` and, in its own bench database only, runs SCHEMA_SQL, so that the
figures of bench/README.md's "what would move it" come from a measurement and not from arithmetic.

What `apply()` patches (numbers are those of bench/README.md, "What to change in the product"):

- (2) API key resolution is cached in the process for API_KEY_CACHE_SECONDS (default 10) by the key's
  SHA-256: no ORM query per request (a revoked key keeps working that long in a process that saw it).
- (3) `pricing_revision()` and `cost_center_codes()` run as raw SQL instead of through the ORM (the
  same queries, the same freshness: still looked up on every request).
- (1) Small batches in one round trip is in the product now (`apps.usage.services._insert_rows_values`),
  so it is no longer patched here.
- (5) CONN_HEALTH_CHECKS is off (no `SELECT 1` before each request's first query).

SCHEMA_SQL drops the usage table's foreign keys and its single-column foreign-key indexes (6 and 7).
The throttle (4) and the batch loop (8, 9) are not prototyped.
"""

import os
import threading
import time

from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from apps.tenancy import authentication
from apps.tenancy.services import hash_api_key
from apps.usage import services

API_KEY_CACHE_SECONDS = float(os.environ.get("API_KEY_CACHE_SECONDS", "10"))

_original_key_lookup = authentication.api_key_get_active
_keys: dict[str, tuple[float, object]] = {}
_keys_lock = threading.Lock()


def cached_api_key_get_active(*, raw_key: str):
    digest = hash_api_key(raw_key)
    now = time.monotonic()
    hit = _keys.get(digest)
    if hit is not None and hit[0] > now:
        api_key = hit[1]
        if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            return None
        return api_key
    api_key = _original_key_lookup(raw_key=raw_key)
    if api_key is not None:
        with _keys_lock:
            _keys[digest] = (now + API_KEY_CACHE_SECONDS, api_key)
    return api_key


def raw_pricing_revision() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT revision FROM pricing_pricingrevision WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else 0


def raw_cost_center_codes(*, organization) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, id FROM tenancy_costcenter WHERE organization_id = %s AND active", [organization.pk]
        )
        return dict(cursor.fetchall())


def apply():
    authentication.api_key_get_active = cached_api_key_get_active
    services.pricing_revision = raw_pricing_revision
    services.cost_center_codes = raw_cost_center_codes
    settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
    for alias in connections:
        connections[alias].settings_dict["CONN_HEALTH_CHECKS"] = False


SCHEMA_SQL = """
DO $$
DECLARE c record;
BEGIN
  FOR c IN SELECT conname FROM pg_constraint
           WHERE conrelid = 'usage_usagerecord'::regclass AND contype = 'f' LOOP
    EXECUTE format('ALTER TABLE usage_usagerecord DROP CONSTRAINT %I', c.conname);
  END LOOP;
  FOR c IN SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = 'usage_usagerecord'::regclass AND x.indnatts = 1 AND NOT x.indisprimary
             AND i.relname ~ '_id_[0-9a-f]+$' LOOP
    EXECUTE format('DROP INDEX %I', c.relname);
  END LOOP;
END $$;
"""
