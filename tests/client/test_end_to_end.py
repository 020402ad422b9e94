"""The client package end to end: the official openai client, a local OpenAI-compatible server, a live portal."""

import asyncio
import socket
import threading
from decimal import Decimal

import openai
import pytest
from costportal_client import Reporter, RetryPolicy, attribute_to, instrument

from apps.tenancy.models import CostCenter
from apps.usage.models import PricingStatus, UsageRecord
from tests.factories import CostCenterFactory, ModelPriceFactory, OrganizationFactory, make_api_key

FAST = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, max_retry_after=1.0)
# gpt-4.1-mini answered as the snapshot gpt-4.1-mini-2025-01-01, priced by its snapshot pattern:
# 11 prompt tokens (3 cached) and 7 completion tokens = (8 x 0.40 + 3 x 0.10 + 7 x 1.60) / 1M
CHAT_COST = Decimal("0.0000147")


@pytest.fixture
def tenant(transactional_db):
    org = OrganizationFactory(slug="acme")
    CostCenterFactory(organization=org, code="cc_search")
    # The list price of gpt-4.1-mini with its snapshot pattern, as in the default list (which a
    # transactional test before this one may have flushed away).
    ModelPriceFactory(model="gpt-4.1-mini", match_pattern=r"gpt-4\.1-mini-\d{4}-\d{2}-\d{2}",
                      input_price=Decimal("0.40"), cached_input_price=Decimal("0.10"), output_price=Decimal("1.60"))
    return org, make_api_key(org, scopes=("ingest", "read"))[1]


def reporter_for(url, key, tmp_path, **kwargs):
    return Reporter(url, key, spool_dir=tmp_path / "spool", retry=FAST, flush_interval=0.1,
                    offline_retry_interval=0.2, max_offline_retry_interval=0.5, spool_check_interval=0.2, **kwargs)


class Forwarder:
    """A TCP port that is either closed (the portal is down) or forwards to the live portal."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self):
        self._server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def down(self):
        if self._server is not None:
            self._server.close()
            self._server = None

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_calls_arrive_priced_with_their_attribution(live_server, tenant, upstream, tmp_path):
    org, key = tenant
    reporter = reporter_for(live_server.url, key, tmp_path)
    client = instrument(openai.OpenAI(base_url=upstream.base_url, api_key="sk-test"), reporter=reporter)
    with attribute_to(cost_center="cc_search", user_id="u-7", feature="answers", tags={"team": "search"}):
        client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
        stream = client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream)
    assert reporter.flush(timeout=15)
    records = list(UsageRecord.objects.for_org(org).select_related("cost_center").order_by("timestamp"))
    assert len(records) == 2
    for record in records:
        assert record.model == "gpt-4.1-mini-2025-01-01" and record.provider == "openai"
        assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (11, 7, 3)
        assert record.cost_center.code == "cc_search" and record.user_id == "u-7" and record.feature == "answers"
        assert record.tags == {"team": "search"} and record.status == "ok" and record.latency_ms is not None
        assert record.pricing_status == PricingStatus.PRICED and record.billing_cost == CHAT_COST
    assert upstream.requests[0].headers.get("x-cost-center") == "cc_search"
    reporter.close()


def test_async_client_and_a_failed_call_are_reported(live_server, tenant, upstream, tmp_path):
    org, key = tenant
    reporter = reporter_for(live_server.url, key, tmp_path)
    client = instrument(openai.AsyncOpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0),
                        reporter=reporter)

    async def calls():
        with attribute_to(cost_center="cc_search", feature="async"):
            await client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(model="fail-500", messages=[{"role": "user", "content": "x"}])

    asyncio.run(calls())
    assert reporter.flush(timeout=15)
    statuses = dict(UsageRecord.objects.for_org(org).values_list("model", "status"))
    assert statuses == {"gpt-4.1-mini-2025-01-01": "ok", "fail-500": "error"}
    failed = UsageRecord.objects.for_org(org).get(model="fail-500")
    assert failed.pricing_status == PricingStatus.UNPRICED and failed.input_tokens == 0
    reporter.close()


def test_records_spool_while_the_portal_is_down_and_arrive_once_when_it_is_back(live_server, tenant, tmp_path):
    org, key = tenant
    portal = Forwarder(int(live_server.url.rsplit(":", 1)[1]))
    reporter = reporter_for(portal.url, key, tmp_path)
    for n in range(25):
        reporter.report({"request_id": f"down-{n}", "model": "gpt-4.1-mini", "input_tokens": 10, "output_tokens": 1,
                         "cost_center": "cc_search"})
    assert reporter.flush(timeout=15)
    assert reporter.stats.spooled == 25 and not UsageRecord.objects.for_org(org).exists()
    portal.up()
    try:
        for _ in range(100):
            if UsageRecord.objects.for_org(org).count() == 25 and not list((tmp_path / "spool").rglob("*.jsonl")):
                break
            threading.Event().wait(0.1)
        reporter.close()
    finally:
        portal.down()
    assert UsageRecord.objects.for_org(org).count() == 25
    assert reporter.stats.accepted + reporter.stats.duplicates == 25


def test_a_restarted_process_sends_what_the_previous_one_spooled(live_server, tenant, tmp_path):
    org, key = tenant
    portal = Forwarder(int(live_server.url.rsplit(":", 1)[1]))
    first = reporter_for(portal.url, key, tmp_path)
    for n in range(10):
        first.report({"request_id": f"spooled-{n}", "model": "gpt-4.1-mini", "input_tokens": 10, "output_tokens": 1})
    first.close(timeout=10)  # the process ends while the portal is down
    assert list((tmp_path / "spool").rglob("*.jsonl")) and not UsageRecord.objects.for_org(org).exists()
    portal.up()
    try:
        second = reporter_for(portal.url, key, tmp_path)
        for _ in range(100):
            if UsageRecord.objects.for_org(org).count() == 10:
                break
            threading.Event().wait(0.1)
        second.close()
    finally:
        portal.down()
    assert sorted(UsageRecord.objects.for_org(org).values_list("request_id", flat=True)) == sorted(
        f"spooled-{n}" for n in range(10))


def test_a_record_the_portal_rejects_is_logged_once_and_not_retried(live_server, tenant, tmp_path, caplog):
    org, key = tenant
    reporter = reporter_for(live_server.url, key, tmp_path)
    reporter.report({"request_id": "bad", "model": "gpt-4.1-mini", "input_tokens": -1, "output_tokens": 1})
    reporter.report({"request_id": "good", "model": "gpt-4.1-mini", "input_tokens": 1, "output_tokens": 1})
    assert reporter.flush(timeout=15)
    threading.Event().wait(0.5)
    assert reporter.stats.rejected == 1 and reporter.stats.accepted == 1 and reporter.stats.batches_sent == 1
    assert list(UsageRecord.objects.for_org(org).values_list("request_id", flat=True)) == ["good"]
    assert "Must be a whole number >= 0." in caplog.text
    assert not list((tmp_path / "spool").rglob("*.jsonl"))
    reporter.close()


def test_unknown_cost_center_from_the_client_is_booked_unallocated_and_flagged(live_server, tenant, tmp_path):
    org, key = tenant
    reporter = reporter_for(live_server.url, key, tmp_path)
    with attribute_to(cost_center="cc_typo"):
        reporter.report({"request_id": "x", "model": "gpt-4.1-mini", "input_tokens": 1, "output_tokens": 1,
                         "cost_center": "cc_typo"})
    assert reporter.flush(timeout=15)
    record = UsageRecord.objects.for_org(org).get()
    assert record.cost_center == CostCenter.objects.for_org(org).get(code="unallocated")
    assert record.unknown_cost_center == "cc_typo"
    reporter.close()
