"""Record building: provider guessed from the base URL, tag limits, zero tokens without usage."""

from __future__ import annotations

import logging

import pytest

from costportal_client import attribute_to, current_attribution
from costportal_client.records import MAX_TAGS, build_usage_record, provider_from_base_url


@pytest.mark.parametrize(
    "base_url, provider",
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://api.deepseek.com", "deepseek"),
        ("https://my-resource.openai.azure.com/openai/deployments/gpt-4o", "azure"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gemini"),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "qwen"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.example.co.uk/v1", "example"),
        ("http://127.0.0.1:4000/v1", "openai"),
        ("http://localhost:8000/v1", "openai"),
        ("http://litellm:4000", "openai"),
        ("", "openai"),
    ],
)
def test_provider_is_guessed_from_the_base_url(base_url: str, provider: str) -> None:
    assert provider_from_base_url(base_url) == provider


def test_a_call_without_usage_is_recorded_with_zero_tokens() -> None:
    with attribute_to(cost_center="cc_a"):
        record = build_usage_record(
            request_id="r-1",
            timestamp="2025-01-01T00:00:00+00:00",
            model="gpt-4o",
            provider="openai",
            status="error",
            latency_ms=12,
            usage=None,
            attribution=current_attribution(),
        )
    assert record == {
        "request_id": "r-1",
        "timestamp": "2025-01-01T00:00:00+00:00",
        "model": "gpt-4o",
        "provider": "openai",
        "status": "error",
        "latency_ms": 12,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_center": "cc_a",
    }


def test_more_tags_than_the_portal_accepts_are_cut_rather_than_losing_the_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with attribute_to(tags={f"t{i}": str(i) for i in range(MAX_TAGS + 5)}):
        with caplog.at_level(logging.WARNING, logger="costportal_client"):
            record = build_usage_record(
                request_id="r-2",
                timestamp="2025-01-01T00:00:00+00:00",
                model="m",
                provider=None,
                status="ok",
                latency_ms=None,
                usage={"prompt_tokens": 1},
                attribution=current_attribution(),
            )
    assert len(record["tags"]) == MAX_TAGS
    assert record["usage"] == {"prompt_tokens": 1}
    assert "provider" not in record
    assert "tags" in caplog.text
