"""The openai wrapper, through the real `openai` client against a local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from costportal_client_fakes import (
    CHAT_USAGE,
    EMBEDDING_USAGE,
    RESPONSES_USAGE,
    SNAPSHOT_SUFFIX,
    FakeOpenAI,
    FakePortal,
)

from costportal_client import Reporter, attribute_to, instrument

MESSAGES = [{"role": "user", "content": "Say hello"}]


def sync_client(fake_openai: FakeOpenAI, reporter: Reporter, **options: Any) -> openai.OpenAI:
    return instrument(
        openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0), reporter=reporter, **options
    )


def async_client(fake_openai: FakeOpenAI, reporter: Reporter, **options: Any) -> openai.AsyncOpenAI:
    return instrument(
        openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0),
        reporter=reporter,
        **options,
    )


def reported(reporter: Reporter, portal: FakePortal) -> list[dict[str, Any]]:
    assert reporter.flush(timeout=5)
    return portal.received_records


def test_a_call_reports_one_record_with_usage_model_and_attribution(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    with attribute_to(
        cost_center="cc_marketing",
        user_id="alice",
        session_id="s-1",
        feature="summarize",
        feature_flag="new-prompt",
        environment="test",
        tags={"team": "growth"},
    ):
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert completion.choices[0].message.content == "Hello!"
    [record] = reported(reporter, portal)
    assert record["model"] == "gpt-4o-mini" + SNAPSHOT_SUFFIX  # the model the response names
    assert record["provider"] == "openai"
    assert record["status"] == "ok"
    assert record["usage"] == CHAT_USAGE
    assert isinstance(record["latency_ms"], int) and record["latency_ms"] >= 0
    assert record["timestamp"].endswith("+00:00")
    assert 1 <= len(record["request_id"]) <= 128
    assert {
        key: record[key] for key in ("cost_center", "user_id", "session_id", "feature", "feature_flag", "environment")
    } == {
        "cost_center": "cc_marketing",
        "user_id": "alice",
        "session_id": "s-1",
        "feature": "summarize",
        "feature_flag": "new-prompt",
        "environment": "test",
    }
    assert record["tags"] == {"team": "growth"}


def test_attribution_headers_are_forwarded_upstream_and_the_callers_own_headers_win(
    fake_openai: FakeOpenAI, reporter: Reporter
) -> None:
    client = sync_client(fake_openai, reporter)
    with attribute_to(cost_center="cc_sales", user_id="jörg", session_id="s-2", feature="chat"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Feature": "override"})
    headers = fake_openai.requests[-1].headers
    assert headers["x-cost-center"] == "cc_sales"
    assert headers["x-user-id"] == "j%C3%B6rg"  # non-ASCII would make httpx refuse the request
    assert headers["x-session-id"] == "s-2"
    assert headers["x-feature"] == "override"


def test_no_headers_are_added_without_attribution_or_when_disabled(fake_openai: FakeOpenAI, reporter: Reporter) -> None:
    sync_client(fake_openai, reporter).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "x-cost-center" not in fake_openai.requests[-1].headers
    with attribute_to(cost_center="cc_sales"):
        sync_client(fake_openai, reporter, forward_headers=False).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    assert "x-cost-center" not in fake_openai.requests[-1].headers


def test_provider_is_configurable(fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal) -> None:
    sync_client(fake_openai, reporter, provider="deepseek").chat.completions.create(
        model="deepseek-chat", messages=MESSAGES
    )
    [record] = reported(reporter, portal)
    assert record["provider"] == "deepseek"


def test_async_client_reports_the_same_record(fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal) -> None:
    client = async_client(fake_openai, reporter)

    async def main() -> None:
        with attribute_to(cost_center="cc_async"):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        await client.close()

    asyncio.run(main())
    [record] = reported(reporter, portal)
    assert record["usage"] == CHAT_USAGE
    assert record["cost_center"] == "cc_async"
    assert record["status"] == "ok"
    assert fake_openai.requests[-1].headers["x-cost-center"] == "cc_async"


def test_streaming_asks_for_usage_reports_it_at_the_end_and_hides_the_extra_chunk(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    with attribute_to(cost_center="cc_stream"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    assert reported(reporter, portal) == []  # nothing until the stream ends
    chunks = list(stream)

    # Code written for streams without usage indexes choices[0]; the usage-only chunk must not reach it.
    assert [chunk.choices[0].delta.content for chunk in chunks] == ["Hel", "lo", "!", None]
    assert fake_openai.requests[-1].body["stream_options"] == {"include_usage": True}
    [record] = reported(reporter, portal)
    assert record["usage"] == CHAT_USAGE
    assert record["status"] == "ok"
    assert record["cost_center"] == "cc_stream"
    assert record["model"] == "gpt-4o-mini" + SNAPSHOT_SUFFIX


def test_a_caller_that_asked_for_usage_still_gets_the_usage_chunk(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    [record] = reported(reporter, portal)
    assert record["usage"] == CHAT_USAGE


def test_a_stream_closed_early_reports_cancelled_with_zero_tokens(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    with client.chat.completions.create(model="slow", messages=MESSAGES, stream=True) as stream:
        first = next(iter(stream))
        assert first.choices[0].delta.content == "Hel"
    [record] = reported(reporter, portal)
    assert record["status"] == "cancelled"
    assert record["model"] == "slow" + SNAPSHOT_SUFFIX
    assert (record["input_tokens"], record["output_tokens"]) == (0, 0)
    assert "usage" not in record


def test_a_stream_abandoned_mid_iteration_is_still_reported_once(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    stream = client.chat.completions.create(model="slow", messages=MESSAGES, stream=True)
    for _ in stream:
        break  # no close(): the caller just walks away
    del stream
    gc.collect()
    records = reported(reporter, portal)
    assert [record["status"] for record in records] == ["cancelled"]


def test_async_streaming_reports_usage_and_early_close(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = async_client(fake_openai, reporter)

    async def main() -> list[str]:
        with attribute_to(feature="async-stream"):
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            assert isinstance(stream, openai.AsyncStream)
            contents = [chunk.choices[0].delta.content async for chunk in stream]
            early = await client.chat.completions.create(model="slow", messages=MESSAGES, stream=True)
            async for _ in early:
                break
            await early.close()
        await client.close()
        return contents

    assert asyncio.run(main()) == ["Hel", "lo", "!", None]
    records = sorted(reported(reporter, portal), key=lambda record: record["status"])
    assert [(record["status"], record["model"]) for record in records] == [
        ("cancelled", "slow" + SNAPSHOT_SUFFIX),
        ("ok", "gpt-4o-mini" + SNAPSHOT_SUFFIX),
    ]
    assert records[1]["usage"] == CHAT_USAGE
    assert all(record["feature"] == "async-stream" for record in records)


def test_an_upstream_error_is_reraised_unchanged_and_reported_as_error(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    with attribute_to(cost_center="cc_errors"):
        with pytest.raises(openai.InternalServerError) as raised:
            client.chat.completions.create(model="fail-500", messages=MESSAGES)
    assert raised.value.status_code == 500
    assert "upstream exploded" in str(raised.value)
    [record] = reported(reporter, portal)
    assert record["status"] == "error"
    assert record["model"] == "fail-500"  # the model requested: no response named one
    assert (record["input_tokens"], record["output_tokens"]) == (0, 0)
    assert record["cost_center"] == "cc_errors"


def test_an_async_error_and_a_cancelled_call_are_reported(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = async_client(fake_openai, reporter)

    async def main() -> None:
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="fail-400", messages=MESSAGES)
        task = asyncio.create_task(client.chat.completions.create(model="slow", messages=MESSAGES))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()

    asyncio.run(main())
    statuses = {record["model"]: record["status"] for record in reported(reporter, portal)}
    assert statuses == {"fail-400": "error", "slow": "cancelled"}


def test_responses_api_reports_input_and_output_token_usage(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    response = client.responses.create(model="gpt-5", input="hello")
    events = [event.type for event in client.responses.create(model="gpt-5", input="hello", stream=True)]
    assert response.output_text == "Hello"
    assert events[-1] == "response.completed"
    records = reported(reporter, portal)
    assert [record["usage"] for record in records] == [RESPONSES_USAGE, RESPONSES_USAGE]
    assert all(record["model"] == "gpt-5" + SNAPSHOT_SUFFIX for record in records)
    assert "stream_options" not in fake_openai.requests[-1].body


def test_the_stream_helper_and_with_options_copies_are_instrumented(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    client = sync_client(fake_openai, reporter)
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            pass
    client.with_options(timeout=5).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    records = reported(reporter, portal)
    assert len(records) == 2
    assert all(record["usage"] == CHAT_USAGE for record in records)


def test_instrumenting_twice_reports_once(fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal) -> None:
    client = instrument(sync_client(fake_openai, reporter), reporter=reporter)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(reported(reporter, portal)) == 1


class BrokenReporter:
    def report(self, record: dict[str, Any]) -> None:
        raise RuntimeError("reporter is broken")


def test_a_broken_reporter_never_breaks_the_call(fake_openai: FakeOpenAI) -> None:
    client = instrument(
        openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-test", max_retries=0), reporter=BrokenReporter()
    )
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello!"
    assert [
        chunk.choices[0].delta.content
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    ] == ["Hel", "lo", "!", None]


def test_calls_still_work_while_the_portal_is_down(
    fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal
) -> None:
    portal.stop()
    client = sync_client(fake_openai, reporter)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.usage is not None
    assert reporter.flush(timeout=5)
    assert reporter.stats.spooled == 1


def test_embeddings_are_reported_too(fake_openai: FakeOpenAI, reporter: Reporter, portal: FakePortal) -> None:
    client = sync_client(fake_openai, reporter)
    with attribute_to(feature="search-index"):
        result = client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    assert result.data[0].embedding == [0.1, 0.2, 0.3]
    [record] = reported(reporter, portal)
    assert record["usage"] == EMBEDDING_USAGE
    assert record["model"] == "text-embedding-3-small" + SNAPSHOT_SUFFIX
    assert record["feature"] == "search-index"
