"""POST /api/v1/usage: shapes, errors, idempotency, attribution and auth (PRODUCT.md section 4)."""

import gzip
import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.tenancy.models import ApiKey
from apps.tenancy.services import api_key_revoke
from apps.usage.models import PricingStatus, UsageRecord
from tests.conftest import client_with_key
from tests.factories import CostCenterFactory, OrganizationFactory, make_api_key, usage_payload

URL = "/api/v1/usage"
pytestmark = pytest.mark.usefixtures("priced_model")


def post(client, body, **extra):
    return client.post(URL, json.dumps(body), content_type="application/json", **extra)


def stored(org):
    return UsageRecord.objects.for_org(org)


class TestBatch:
    def test_valid_batch_is_stored_priced_and_answers_201(self, api, org):
        response = post(api, {"records": [usage_payload(f"r-{i}") for i in range(3)]})
        assert response.status_code == 201
        assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": 0, "errors": []}
        assert stored(org).count() == 3
        # 1000 input x 2.00 + 100 output x 8.00 per 1M = 0.0028
        assert {r.billing_cost for r in stored(org)} == {Decimal("0.0028")}

    def test_batch_with_invalid_records_stores_the_valid_ones_and_answers_207(self, api, org):
        records = [
            usage_payload("ok-1"),
            usage_payload("bad-1", input_tokens=-5),
            usage_payload("ok-2"),
            {"model": "test-model", "input_tokens": 1, "output_tokens": 1},
        ]
        response = post(api, {"records": records})
        assert response.status_code == 207
        body = response.json()
        assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 2)
        assert body["errors"] == [
            {"index": 1, "request_id": "bad-1", "errors": {"input_tokens": ["Must be a whole number >= 0."]}},
            {"index": 3, "request_id": None, "errors": {"request_id": ["This field is required."]}},
        ]
        assert set(stored(org).values_list("request_id", flat=True)) == {"ok-1", "ok-2"}

    def test_resent_batch_counts_every_record_as_duplicate(self, api, org):
        batch = {"records": [usage_payload(f"r-{i}") for i in range(4)]}
        assert post(api, batch).json()["accepted"] == 4
        again = post(api, batch)
        assert again.status_code == 201
        assert again.json() == {"accepted": 0, "duplicates": 4, "rejected": 0, "errors": []}
        assert stored(org).count() == 4

    def test_a_request_id_twice_in_one_batch_is_stored_once(self, api, org):
        response = post(api, {"records": [usage_payload("same"), usage_payload("same", input_tokens=5)]})
        assert response.json()["accepted"] == 1 and response.json()["duplicates"] == 1
        assert stored(org).get().input_tokens == 1000

    def test_more_than_5000_records_is_413_and_nothing_is_stored(self, api, org):
        response = post(api, {"records": [usage_payload(f"r-{i}") for i in range(5001)]})
        assert response.status_code == 413
        assert "at most 5,000 records" in response.json()["detail"]
        assert not stored(org).exists()

    def test_5000_records_are_accepted(self, api, org):
        response = post(api, {"records": [usage_payload(f"r-{i}") for i in range(5000)]})
        assert response.status_code == 201 and response.json()["accepted"] == 5000
        assert stored(org).count() == 5000

    def test_empty_batch_is_400_naming_records(self, api):
        response = post(api, {"records": []})
        assert response.status_code == 400 and "records" in response.json()

    def test_records_not_a_list_is_400(self, api):
        response = post(api, {"records": {"request_id": "x"}})
        assert response.status_code == 400 and response.json() == {"records": ["Expected a list of records."]}


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_resent_5_times_concurrently_is_stored_once(org, full_key, priced_model):
    batch = json.dumps({"records": [usage_payload(f"c-{i}") for i in range(300)]})
    results, barrier = [], threading.Barrier(5)

    def send():
        client = client_with_key(full_key)
        barrier.wait()
        try:
            results.append(client.post(URL, batch, content_type="application/json").json())
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 5
    assert sum(r["accepted"] for r in results) == 300
    assert sum(r["duplicates"] for r in results) == 4 * 300
    assert stored(org).count() == 300


class TestSingleRecord:
    def test_single_record_answers_201(self, api, org):
        response = post(api, usage_payload())
        assert response.status_code == 201 and response.json()["accepted"] == 1

    def test_single_invalid_record_answers_422_and_stores_nothing(self, api, org):
        response = post(api, usage_payload(output_tokens="lots"))
        assert response.status_code == 422
        assert response.json()["errors"][0]["errors"] == {"output_tokens": ["Must be a whole number >= 0."]}
        assert not stored(org).exists()

    def test_trailing_slash_works_too(self, api, org):
        response = api.post(URL + "/", json.dumps(usage_payload()), content_type="application/json")
        assert response.status_code == 201

    def test_timestamp_defaults_to_receipt(self, api, org):
        before = timezone.now()
        post(api, usage_payload())
        assert before <= stored(org).get().timestamp <= timezone.now()


class TestBadRecords:
    @pytest.mark.parametrize(
        "fields, field, message",
        [
            ({"timestamp": "2026-01-01T10:00:00"}, "timestamp", "Expected an RFC 3339 time with offset"),
            ({"timestamp": "yesterday"}, "timestamp", "Expected an RFC 3339 time with offset"),
            ({"timestamp": "2026-02-30T10:00:00Z"}, "timestamp", "Not a valid date and time."),
            ({"input_tokens": -1}, "input_tokens", "Must be a whole number >= 0."),
            ({"input_tokens": 1.5}, "input_tokens", "Must be a whole number >= 0."),
            ({"input_tokens": True}, "input_tokens", "Must be a whole number >= 0."),
            (
                {"cache_read_tokens": 900, "cache_write_tokens": 200},
                "cache_read_tokens",
                "cache_read_tokens + cache_write_tokens must not exceed input_tokens",
            ),
            ({"reasoning_tokens": 101}, "reasoning_tokens", "Must not exceed output_tokens"),
            ({"request_id": ""}, "request_id", "Must be a string of 1 to 128 characters."),
            ({"request_id": "x" * 129}, "request_id", "Must be a string of 1 to 128 characters."),
            ({"model": ""}, "model", "This field is required."),
            ({"model": 42}, "model", "Must be a string"),
            ({"tags": {f"k{i}": "v" for i in range(21)}}, "tags", "At most 20 keys; got 21."),
            ({"tags": {"team": 7}}, "tags", "Keys of at most 64 and values of at most 256 characters"),
            ({"tags": ["a"]}, "tags", "Must be a flat object of strings."),
            ({"user_id": 12}, "user_id", "Must be a string"),
            ({"latency_ms": -3}, "latency_ms", "Must be a number of milliseconds >= 0."),
            ({"reported_cost": "abc", "reported_currency": "USD"}, "reported_cost", "Must be a decimal amount"),
            ({"reported_cost": "1.00"}, "reported_currency", "Required with reported_cost."),
            ({"reported_cost": "1.00", "reported_currency": "usd"}, "reported_currency", "ISO 4217"),
            ({"costcenter": "cc_x"}, "costcenter", "Unknown field."),
            (
                {"usage": {"prompt_tokens": 10, "completion_tokens": 2}},
                "usage",
                "Send either usage or the token fields",
            ),
        ],
    )
    def test_bad_field_is_rejected_with_a_message_naming_it(self, api, org, fields, field, message):
        response = post(api, usage_payload(**fields))
        assert response.status_code == 422
        errors = response.json()["errors"][0]["errors"]
        assert field in errors and message in errors[field][0], errors
        assert not stored(org).exists()

    def test_timestamp_more_than_5_minutes_ahead_is_rejected(self, api, org):
        ahead = (timezone.now() + timedelta(minutes=6)).isoformat()
        response = post(api, usage_payload(timestamp=ahead))
        assert response.json()["errors"][0]["errors"] == {"timestamp": ["Is more than 5 minutes in the future."]}
        assert not stored(org).exists()

    def test_timestamp_a_little_ahead_is_accepted(self, api, org):
        response = post(api, usage_payload(timestamp=(timezone.now() + timedelta(minutes=4)).isoformat()))
        assert response.status_code == 201

    def test_missing_token_counts_are_required(self, api, org):
        response = post(api, {"request_id": "r", "model": "test-model"})
        errors = response.json()["errors"][0]["errors"]
        assert set(errors) == {"input_tokens", "output_tokens"}

    def test_unknown_usage_shape_is_rejected(self, api, org):
        body = {"request_id": "r", "model": "test-model", "usage": {"tokens": 5}}
        assert "Unknown usage shape" in post(api, body).json()["errors"][0]["errors"]["usage"][0]

    def test_record_that_is_not_an_object_is_rejected_in_a_batch(self, api, org):
        response = post(api, {"records": ["nope", usage_payload()]})
        assert response.status_code == 207
        assert response.json()["errors"] == [
            {"index": 0, "request_id": None, "errors": {"non_field_errors": ["Expected a JSON object."]}}
        ]
        assert stored(org).count() == 1


class TestBody:
    def test_malformed_json_is_400(self, api, org):
        response = api.post(URL, "{not json", content_type="application/json")
        assert response.status_code == 400 and response.json()["detail"].startswith("Malformed JSON")

    def test_wrong_content_type_is_415(self, api, org):
        response = api.post(URL, "request_id=1", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415 and "application/json" in response.json()["detail"]
        assert not stored(org).exists()

    def test_json_array_body_is_400(self, api):
        response = api.post(URL, "[1, 2]", content_type="application/json")
        assert response.status_code == 400 and "Expected a JSON object" in response.json()["detail"]

    def test_empty_body_is_400(self, api):
        assert api.post(URL, "", content_type="application/json").status_code == 400

    @override_settings(INGEST_MAX_BODY_BYTES=2000, DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
    def test_body_larger_than_the_limit_is_413(self, api, org):
        response = post(api, {"records": [usage_payload(f"r-{i}") for i in range(40)]})
        assert response.status_code == 413 and "exceeds 2,000 bytes" in response.json()["detail"]
        assert not stored(org).exists()

    def test_gzip_body_is_accepted(self, api, org):
        body = gzip.compress(json.dumps({"records": [usage_payload(f"g-{i}") for i in range(10)]}).encode())
        response = api.post(URL, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 201 and stored(org).count() == 10

    def test_broken_gzip_is_400(self, api, org):
        response = api.post(URL, b"not gzip", content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 400 and "gzip" in response.json()["detail"]

    @override_settings(INGEST_MAX_BODY_BYTES=5000)
    def test_gzip_bomb_is_413(self, api, org):
        body = gzip.compress(
            json.dumps(usage_payload(user_id="x" * 200, feature="y" * 200) | {"tags": {"k": "z" * 250}}).encode() * 20
        )
        response = api.post(URL, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413 and not stored(org).exists()

    def test_unknown_content_encoding_is_415(self, api):
        response = api.post(URL, b"{}", content_type="application/json", HTTP_CONTENT_ENCODING="br")
        assert response.status_code == 415


class TestUsageShapes:
    def _tokens(self, org):
        r = stored(org).get()
        return r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, r.reasoning_tokens

    def test_openai_chat_usage_counts_cached_tokens_inside_input(self, api, org):
        usage = {
            "prompt_tokens": 1000,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 400},
            "completion_tokens_details": {"reasoning_tokens": 120},
        }
        assert post(api, {"request_id": "o", "model": "test-model", "usage": usage}).status_code == 201
        assert self._tokens(org) == (1000, 300, 400, 0, 120)
        # 600 x 2.00 + 400 x 0.50 + 300 x 8.00 per 1M
        assert stored(org).get().cost == Decimal("0.0038")

    def test_anthropic_usage_adds_cache_reads_and_writes_to_input(self, api, org):
        usage = {
            "input_tokens": 50,
            "output_tokens": 200,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 300,
        }
        assert post(api, {"request_id": "a", "model": "test-model", "usage": usage}).status_code == 201
        assert self._tokens(org) == (1350, 200, 1000, 300, 0)
        # 50 x 2.00 + 1000 x 0.50 + 300 x 3.00 + 200 x 8.00 per 1M
        assert stored(org).get().cost == Decimal("0.0031")

    def test_anthropic_null_cache_fields_count_as_zero(self, api, org):
        usage = {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": None,
            "cache_creation_input_tokens": None,
        }
        assert post(api, {"request_id": "a", "model": "test-model", "usage": usage}).status_code == 201
        assert self._tokens(org) == (10, 5, 0, 0, 0)

    def test_openai_responses_usage(self, api, org):
        usage = {
            "input_tokens": 800,
            "output_tokens": 90,
            "input_tokens_details": {"cached_tokens": 300},
            "output_tokens_details": {"reasoning_tokens": 40},
        }
        assert post(api, {"request_id": "r", "model": "test-model", "usage": usage}).status_code == 201
        assert self._tokens(org) == (800, 90, 300, 0, 40)

    def test_gemini_usage_metadata_bills_thoughts_as_output(self, api, org):
        usage = {
            "promptTokenCount": 500,
            "candidatesTokenCount": 60,
            "thoughtsTokenCount": 40,
            "cachedContentTokenCount": 100,
        }
        assert post(api, {"request_id": "g", "model": "test-model", "usage": usage}).status_code == 201
        assert self._tokens(org) == (500, 100, 100, 0, 40)

    def test_deepseek_cache_hit_tokens(self, api, org):
        usage = {
            "prompt_tokens": 700,
            "completion_tokens": 10,
            "prompt_cache_hit_tokens": 600,
            "prompt_cache_miss_tokens": 100,
        }
        assert post(api, {"request_id": "d", "model": "test-model", "usage": usage}).status_code == 201
        assert self._tokens(org) == (700, 10, 600, 0, 0)

    def test_opentelemetry_genai_attribute_names_are_accepted(self, api, org):
        body = {
            "gen_ai.response.id": "otel-1",
            "gen_ai.request.model": "test-model",
            "gen_ai.provider.name": "acme",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "gen_ai.usage.cache_read.input_tokens": 200,
        }
        assert post(api, body).status_code == 201
        record = stored(org).get()
        assert (record.request_id, record.model, record.provider) == ("otel-1", "test-model", "acme")
        assert self._tokens(org) == (1000, 100, 200, 0, 0)

    def test_invalid_numbers_inside_usage_name_the_path(self, api, org):
        usage = {"prompt_tokens": -1, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": "x"}}
        errors = post(api, {"request_id": "o", "model": "test-model", "usage": usage}).json()["errors"][0]["errors"]
        assert errors["usage"] == [
            "prompt_tokens must be a whole number >= 0.",
            "prompt_tokens_details.cached_tokens must be a whole number >= 0.",
        ]


class TestAttribution:
    def test_missing_cost_center_goes_to_the_keys_default(self, org):
        cc = CostCenterFactory(organization=org, code="cc_search")
        client = client_with_key(make_api_key(org, default_cost_center=cc)[1])
        post(client, usage_payload())
        assert stored(org).get().cost_center == cc

    def test_missing_cost_center_without_key_default_is_unallocated(self, api, org):
        post(api, usage_payload())
        record = stored(org).get()
        assert record.cost_center.code == "unallocated" and record.unknown_cost_center == ""

    def test_unknown_cost_center_is_unallocated_and_flagged(self, api, org):
        post(api, usage_payload(cost_center="cc_typo"))
        record = stored(org).get()
        assert record.cost_center.code == "unallocated" and record.unknown_cost_center == "cc_typo"

    def test_unknown_cost_center_is_422_in_a_strict_organization(self, db, priced_model):
        strict = OrganizationFactory(slug="strict", strict_attribution=True)
        client = client_with_key(make_api_key(strict)[1])
        response = post(client, usage_payload(cost_center="cc_typo"))
        assert response.status_code == 422
        assert "Unknown or inactive cost center 'cc_typo'" in response.json()["errors"][0]["errors"]["cost_center"][0]
        assert not stored(strict).exists()

    def test_known_cost_center_and_context_fields_are_kept(self, api, org):
        CostCenterFactory(organization=org, code="cc_search")
        post(
            api,
            usage_payload(
                cost_center="cc_search",
                user_id="u1",
                session_id="s1",
                feature="answer",
                feature_flag="new-ranker",
                environment="production",
                tags={"team": "search"},
                latency_ms=812.6,
                status=200,
            ),
        )
        r = stored(org).get()
        assert (r.cost_center.code, r.user_id, r.session_id, r.feature, r.feature_flag, r.environment) == (
            "cc_search",
            "u1",
            "s1",
            "answer",
            "new-ranker",
            "production",
        )
        assert r.tags == {"team": "search"} and r.latency_ms == 813 and r.status == "200"

    def test_a_cost_center_of_another_organization_is_unknown_here(self, api, org, other_org):
        CostCenterFactory(organization=other_org, code="cc_theirs")
        post(api, usage_payload(cost_center="cc_theirs"))
        assert stored(org).get().unknown_cost_center == "cc_theirs"

    def test_reported_cost_is_kept_but_never_billed(self, api, org):
        post(api, usage_payload(reported_cost="99.50", reported_currency="EUR"))
        record = stored(org).get()
        assert record.reported_cost == Decimal("99.50") and record.reported_currency == "EUR"
        assert record.billing_cost == Decimal("0.0028")


class TestUnpriced:
    def test_a_model_without_price_is_stored_unpriced_never_zero(self, api, org):
        response = post(api, usage_payload(model="no-such-model"))
        assert response.status_code == 201
        record = stored(org).get()
        assert record.pricing_status == PricingStatus.UNPRICED
        assert record.cost is None and record.billing_cost is None


class TestAuth:
    def test_missing_key_is_401(self, client, org):
        response = client.post(URL, json.dumps(usage_payload()), content_type="application/json")
        assert response.status_code == 401

    def test_unknown_key_is_401(self, org):
        response = post(client_with_key("cpk_not-a-real-key"), usage_payload())
        assert response.status_code == 401 and "Invalid, revoked or expired" in response.json()["detail"]
        assert not stored(org).exists()

    def test_revoked_key_is_401(self, org):
        api_key, raw = make_api_key(org)
        api_key_revoke(api_key=api_key)
        assert post(client_with_key(raw), usage_payload()).status_code == 401
        assert not stored(org).exists()

    def test_expired_key_is_401(self, org):
        _, raw = make_api_key(org, expires_at=timezone.now() - timedelta(seconds=1))
        assert post(client_with_key(raw), usage_payload()).status_code == 401

    def test_key_without_ingest_scope_is_403(self, org, read_key):
        response = post(client_with_key(read_key), usage_payload())
        assert response.status_code == 403 and "'ingest' scope" in response.json()["detail"]
        assert not stored(org).exists()

    def test_ingest_only_key_cannot_read_usage(self, ingest_key):
        response = client_with_key(ingest_key).get(URL)
        assert response.status_code == 403 and "'read' scope" in response.json()["detail"]

    def test_a_logged_in_member_cannot_ingest_through_the_session(self, member_client):
        response = post(member_client(), usage_payload())
        assert response.status_code == 403

    def test_keys_are_stored_only_as_sha256_and_last_four(self, org):
        api_key, raw = make_api_key(org)
        assert raw.startswith("cpk_") and len(raw) > 40
        row = ApiKey.objects.filter(pk=api_key.pk).values().get()
        assert raw not in json.dumps(row, default=str)
        assert row["last_four"] == raw[-4:] and len(row["key_hash"]) == 64

    def test_last_used_at_is_written_at_most_once_a_minute(self, org, full_key):
        client = client_with_key(full_key)
        post(client, usage_payload("a"))
        first = ApiKey.objects.get(organization=org).last_used_at
        assert first is not None
        post(client, usage_payload("b"))
        assert ApiKey.objects.get(organization=org).last_used_at == first
        ApiKey.objects.filter(organization=org).update(last_used_at=first - timedelta(minutes=2))
        post(client, usage_payload("c"))
        assert ApiKey.objects.get(organization=org).last_used_at > first

    def test_ingest_succeeds_while_redis_is_down(self, api, org, settings, monkeypatch):
        from apps.tenancy import throttling

        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": "redis://127.0.0.1:1/0", "OPTIONS": {"socket_connect_timeout": 0.2}}}
        monkeypatch.setattr(throttling, "_client", None)
        response = post(api, usage_payload())
        assert response.status_code == 201 and stored(org).count() == 1


class TestThrottle:
    def test_a_key_over_its_rate_gets_429(self, api, org, settings):
        from rest_framework.settings import api_settings

        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"}}
        api_settings.reload()
        try:
            codes = [post(api, usage_payload(f"t-{i}")).status_code for i in range(5)]
        finally:
            settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "100000/min"}}
            api_settings.reload()
        assert codes == [201, 201, 201, 429, 429]
        assert stored(org).count() == 3


def test_orm_insert_path_counts_duplicates_like_the_copy_path(org, priced_model):
    """The portable path used on SQLite (the demo), exercised here on PostgreSQL."""
    from apps.usage import services

    rows_before = services.connection.vendor
    assert rows_before == "postgresql"
    services.connection.vendor = "sqlite-like"
    try:
        first = services.usage_ingest(
            organization=org, api_key=None, raw_records=[usage_payload("x"), usage_payload("y")]
        )
        second = services.usage_ingest(
            organization=org, api_key=None, raw_records=[usage_payload("y"), usage_payload("z")]
        )
    finally:
        services.connection.vendor = "postgresql"
    assert (first.accepted, first.duplicates) == (2, 0)
    assert (second.accepted, second.duplicates) == (1, 1)
    assert stored(org).count() == 3


class TestNoServerErrors:
    @pytest.mark.parametrize(
        "fields, field",
        [
            ({"request_id": "a\x00b"}, "request_id"),
            ({"model": "gpt\x00"}, "model"),
            ({"user_id": "\x00"}, "user_id"),
            ({"cost_center": "cc\x00"}, "cost_center"),
            ({"tags": {"k\x00": "v"}}, "tags"),
            ({"tags": {"k": "v\x00"}}, "tags"),
        ],
    )
    def test_nul_characters_are_rejected_not_a_500(self, api, org, fields, field):
        response = post(api, usage_payload(**fields))
        assert response.status_code == 422
        assert response.json()["errors"][0]["errors"] == {field: ["Must not contain NUL characters."]}
        assert not stored(org).exists()

    @pytest.mark.parametrize(
        "body",
        [b"\xff\xfe", b'{"request_id": "\\ud800"}', b"[" * 2000 + b"]" * 2000, b"1e999999", b"null", b'"text"'],
    )
    def test_undecodable_or_odd_json_is_400(self, api, org, body):
        response = api.post(URL, body, content_type="application/json")
        assert response.status_code == 400
        assert not stored(org).exists()

    def test_huge_token_counts_are_rejected(self, api, org):
        response = post(api, usage_payload(input_tokens=10**20))
        assert response.json()["errors"][0]["errors"] == {"input_tokens": ["Must be a whole number >= 0."]}

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/price-lists/99999999999999999999999",
            "/api/v1/price-lists/99999999999999999999999/prices",
            "/api/v1/usage?model=a%00b",
            "/api/v1/costs?user_id=%00",
            "/api/v1/cost-centers/" + "x" * 300,
        ],
    )
    def test_odd_read_requests_are_4xx(self, api, path):
        assert 400 <= api.get(path).status_code < 500
