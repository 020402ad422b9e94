"""Outgoing webhooks: HMAC signatures, delivery to a real local HTTP server, retries with backoff (PRODUCT.md 8)."""

import json
import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.integrations.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from apps.integrations.webhooks import (
    MAX_ATTEMPTS,
    backoff_seconds,
    sign,
    verify,
    webhook_attempt,
    webhook_broadcast,
    webhook_send,
)

PAYLOAD = {"text": "cc_search: spend reached 80% of its month budget", "event": "budget.alert", "alert": {"a": 1}}


def make_delivery(org, url, secret="whsec_test", payload=PAYLOAD):
    return WebhookDelivery.objects.create(
        organization=org, event="budget.alert", url=url, secret=secret, payload=payload, next_attempt_at=timezone.now()
    )


def make_due(delivery):
    """Pretend the backoff has passed."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


class TestSignature:
    BODY = b'{"text":"hello"}'

    def test_a_signature_verifies_with_the_secret_and_the_exact_body(self):
        header = sign(secret="s3cret", body=self.BODY, timestamp=1_790_000_000)
        assert header.startswith("t=1790000000,v1=") and len(header.split("v1=")[1]) == 64
        assert verify(secret="s3cret", body=self.BODY, header=header, now=1_790_000_000)
        assert verify(secret="s3cret", body=self.BODY, header=header, now=1_790_000_300)

    def test_a_tampered_body_a_wrong_secret_or_a_stale_timestamp_does_not_verify(self):
        header = sign(secret="s3cret", body=self.BODY, timestamp=1_790_000_000)
        assert not verify(secret="s3cret", body=b'{"text":"hello!"}', header=header, now=1_790_000_000)
        assert not verify(secret="other", body=self.BODY, header=header, now=1_790_000_000)
        assert not verify(secret="s3cret", body=self.BODY, header=header, now=1_790_000_301)
        assert not verify(secret="s3cret", body=self.BODY, header=header, now=1_789_999_699)
        # a replayed signature with a fresh timestamp but the old digest
        forged = header.replace("t=1790000000", "t=1790000400")
        assert not verify(secret="s3cret", body=self.BODY, header=forged, now=1_790_000_400)

    @pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1790000000"])
    def test_a_malformed_header_does_not_verify(self, header):
        assert not verify(secret="s3cret", body=self.BODY, header=header, now=1_790_000_000)

    def test_backoff_grows_fourfold_from_thirty_seconds(self):
        assert [backoff_seconds(n) for n in range(1, MAX_ATTEMPTS)] == [30, 120, 480, 1920, 7680]


class TestAttempt:
    def test_a_200_marks_the_delivery_delivered_and_the_receiver_can_verify_it(self, org, webhook_receiver):
        delivery = make_delivery(org, webhook_receiver.url("/slack"))
        delivery = webhook_attempt(delivery_id=delivery.pk)
        assert delivery.state == DeliveryState.DELIVERED
        assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 200, "")
        assert delivery.delivered_at is not None and delivery.next_attempt_at is None

        (received,) = webhook_receiver.requests
        assert received.path == "/slack"
        assert verify(secret="whsec_test", body=received.body, header=received.signature)
        assert not verify(secret="whsec_test", body=received.body + b" ", header=received.signature)
        assert not verify(secret="whsec_test", body=received.body, header=received.signature, now=time.time() + 301)
        assert received.headers["X-Costportal-Event"] == "budget.alert"
        assert received.headers["X-Costportal-Delivery"] == str(delivery.pk)
        assert received.headers["Content-Type"] == "application/json"
        body = json.loads(received.body)
        assert body == PAYLOAD and "text" in body

        # delivered once: another trigger sends nothing
        assert webhook_attempt(delivery_id=delivery.pk).attempts == 1
        assert len(webhook_receiver.requests) == 1

    def test_a_500_is_retried_with_backoff_and_fails_after_max_attempts(self, org, webhook_receiver):
        webhook_receiver.status = 500
        delivery = make_delivery(org, webhook_receiver.url())
        for attempt in range(1, MAX_ATTEMPTS):
            before = timezone.now()
            delivery = webhook_attempt(delivery_id=delivery.pk)
            after = timezone.now()
            assert delivery.state == DeliveryState.PENDING
            assert (delivery.attempts, delivery.last_status, delivery.last_error) == (attempt, 500, "HTTP 500")
            wait = timedelta(seconds=backoff_seconds(attempt))  # 30 s, 2 min, 8 min, 32 min, 128 min
            assert before + wait <= delivery.next_attempt_at <= after + wait
            # a duplicate trigger before the retry is due sends nothing
            assert webhook_attempt(delivery_id=delivery.pk).attempts == attempt
            assert len(webhook_receiver.requests) == attempt
            make_due(delivery)

        delivery = webhook_attempt(delivery_id=delivery.pk)
        assert delivery.state == DeliveryState.FAILED
        assert delivery.attempts == MAX_ATTEMPTS == 6
        assert delivery.next_attempt_at is None and delivery.delivered_at is None
        assert len(webhook_receiver.requests) == MAX_ATTEMPTS
        # a failed delivery is not attempted again
        assert webhook_attempt(delivery_id=delivery.pk).attempts == MAX_ATTEMPTS
        assert len(webhook_receiver.requests) == MAX_ATTEMPTS
        # every attempt carried a valid signature of the same body
        assert all(verify(secret="whsec_test", body=r.body, header=r.signature) for r in webhook_receiver.requests)

    def test_a_retry_that_gets_a_200_is_delivered(self, org, webhook_receiver):
        webhook_receiver.status = 500
        delivery = make_delivery(org, webhook_receiver.url())
        assert webhook_attempt(delivery_id=delivery.pk).state == DeliveryState.PENDING
        webhook_receiver.status = 200
        make_due(delivery)
        delivery = webhook_attempt(delivery_id=delivery.pk)
        assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.DELIVERED, 2, 200)

    def test_an_unreachable_endpoint_is_retried(self, org):
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        delivery = make_delivery(org, f"http://127.0.0.1:{port}/closed")
        delivery = webhook_attempt(delivery_id=delivery.pk)
        assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.PENDING, 1, None)
        assert delivery.last_error != "" and delivery.next_attempt_at > timezone.now()


class TestSend:
    def test_send_logs_the_delivery_and_posts_it_only_after_commit(
        self, org, webhook_receiver, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            delivery = webhook_send(
                organization=org, event="budget.alert", url=webhook_receiver.url(), secret="s", payload=PAYLOAD
            )
        assert delivery.state == DeliveryState.PENDING and delivery.attempts == 0
        assert webhook_receiver.requests == []
        assert len(callbacks) == 1
        callbacks[0]()  # the commit: the task runs (eagerly in tests)
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 1)
        assert len(webhook_receiver.requests) == 1

    def test_broadcast_goes_to_the_organizations_active_subscribed_endpoints_only(
        self, org, other_org, webhook_receiver, django_capture_on_commit_callbacks
    ):
        url = webhook_receiver.url
        WebhookEndpoint.objects.create(organization=org, url=url("/a"), secret="sa", events=["budget.alert"])
        WebhookEndpoint.objects.create(
            organization=org, url=url("/b"), secret="sb", events=["invoice.issued", "budget.alert"]
        )
        WebhookEndpoint.objects.create(organization=org, url=url("/invoices"), secret="x", events=["invoice.issued"])
        WebhookEndpoint.objects.create(
            organization=org, url=url("/off"), secret="x", events=["budget.alert"], active=False
        )
        WebhookEndpoint.objects.create(organization=other_org, url=url("/other"), secret="x", events=["budget.alert"])
        with django_capture_on_commit_callbacks(execute=True):
            deliveries = webhook_broadcast(organization=org, event="budget.alert", payload=PAYLOAD)
        assert sorted(d.url for d in deliveries) == [url("/a"), url("/b")]
        assert sorted(r.path for r in webhook_receiver.requests) == ["/a", "/b"]
        for received, secret in ((webhook_receiver.to("/a")[0], "sa"), (webhook_receiver.to("/b")[0], "sb")):
            assert verify(secret=secret, body=received.body, header=received.signature)
        assert WebhookDelivery.objects.for_org(other_org).count() == 0
