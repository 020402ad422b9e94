"""Build usage records in the portal's ingest format (PRODUCT.md section 4)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from .attribution import Attribution

logger = logging.getLogger("costportal_client")

MAX_TAGS = 20

# Hosts whose provider name is not simply their second-level domain.
_PROVIDER_BY_HOST_SUFFIX = (
    ("openai.azure.com", "azure"),
    ("services.ai.azure.com", "azure"),
    ("generativelanguage.googleapis.com", "gemini"),
    ("aiplatform.googleapis.com", "vertex_ai"),
    ("dashscope.aliyuncs.com", "qwen"),
    ("dashscope-intl.aliyuncs.com", "qwen"),
    ("api.x.ai", "xai"),
    ("bedrock-runtime.amazonaws.com", "bedrock"),
    ("api.together.xyz", "together"),
    ("api.moonshot.cn", "moonshot"),
)
_GENERIC_SECOND_LEVEL = {"co", "com", "net", "org", "ac", "gov"}


def provider_from_base_url(base_url: str | None) -> str:
    """Guess the provider from an API base URL: api.deepseek.com -> deepseek; local or unknown -> openai."""
    host = (urlsplit(str(base_url or "")).hostname or "").lower().rstrip(".")
    if not host or host == "localhost" or "." not in host:
        return "openai"
    try:
        ipaddress.ip_address(host)
        return "openai"
    except ValueError:
        pass
    for suffix, provider in _PROVIDER_BY_HOST_SUFFIX:
        if host == suffix or host.endswith("." + suffix):
            return provider
    labels = host.split(".")
    # api.example.co.uk -> example, not co.
    if len(labels) >= 3 and labels[-2] in _GENERIC_SECOND_LEVEL and len(labels[-1]) == 2:
        return labels[-3]
    return labels[-2]


def rfc3339_now() -> str:
    """The current time as RFC 3339 with an explicit UTC offset, as the portal requires."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def usage_as_dict(usage: Any) -> dict[str, Any] | None:
    """The provider's usage object as plain JSON data, exactly the keys the provider sent."""
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        return dict(usage)
    to_dict = getattr(usage, "to_dict", None)
    if callable(to_dict):
        return to_dict(mode="json")
    model_dump = getattr(usage, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json", exclude_none=True)
    return dict(vars(usage))


def limited_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Keep at most MAX_TAGS tags: the portal rejects a record with more, and losing a tag beats losing the cost."""
    if len(tags) <= MAX_TAGS:
        return dict(tags)
    kept = dict(list(tags.items())[:MAX_TAGS])
    logger.warning("costportal: a record had %d tags; only the first %d are sent", len(tags), MAX_TAGS)
    return kept


def build_usage_record(
    *,
    request_id: str,
    timestamp: str,
    model: str | None,
    provider: str | None,
    status: str,
    latency_ms: int | None,
    usage: Any,
    attribution: Attribution,
) -> dict[str, Any]:
    """One usage record; without a usage object the call is recorded with zero tokens."""
    record: dict[str, Any] = {
        "request_id": request_id,
        "timestamp": timestamp,
        "model": model or "unknown",
        "status": status,
    }
    if provider:
        record["provider"] = provider
    if latency_ms is not None:
        record["latency_ms"] = latency_ms
    usage_data = usage_as_dict(usage)
    if usage_data:
        record["usage"] = usage_data
    else:
        record["input_tokens"] = 0
        record["output_tokens"] = 0
    fields = attribution.record_fields()
    if "tags" in fields:
        fields["tags"] = limited_tags(fields["tags"])
    record.update(fields)
    return record
