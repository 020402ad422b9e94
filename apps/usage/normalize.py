"""Validation and normalisation of one incoming usage record (PRODUCT.md section 4).

Hand-written rather than a DRF serializer because a batch of 5,000 records must validate in
milliseconds; the API schema documents the same fields with a serializer that only describes them.
Errors use DRF's shape: {"field": ["message"]}.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from apps.common.money import is_currency, parse_decimal

MAX_TOKENS = 10**12
MAX_TAGS = 20
FUTURE_TOLERANCE = timedelta(minutes=5)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
STRING_FIELDS = {"user_id": 256, "session_id": 256, "feature": 256, "feature_flag": 256, "environment": 64}

# OpenTelemetry GenAI semantic-convention attribute names accepted in place of ours.
OTEL_ALIASES = {
    "gen_ai.response.model": "model",
    "gen_ai.request.model": "model",
    "gen_ai.provider.name": "provider",
    "gen_ai.system": "provider",
    "gen_ai.usage.input_tokens": "input_tokens",
    "gen_ai.usage.prompt_tokens": "input_tokens",
    "gen_ai.usage.output_tokens": "output_tokens",
    "gen_ai.usage.completion_tokens": "output_tokens",
    "gen_ai.usage.cache_read.input_tokens": "cache_read_tokens",
    "gen_ai.usage.cache_creation.input_tokens": "cache_write_tokens",
    "gen_ai.usage.reasoning.output_tokens": "reasoning_tokens",
    "gen_ai.response.id": "request_id",
    "gen_ai.conversation.id": "session_id",
}

KNOWN_FIELDS = frozenset(
    (
        "request_id",
        "timestamp",
        "model",
        "provider",
        "usage",
        "cost_center",
        "tags",
        "latency_ms",
        "status",
        "reported_cost",
        "reported_currency",
        *TOKEN_FIELDS,
        *STRING_FIELDS,
        *OTEL_ALIASES,
    )
)


@dataclass(slots=True)
class CleanRecord:
    request_id: str
    timestamp: datetime
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_center: str | None
    user_id: str
    session_id: str
    feature: str
    feature_flag: str
    environment: str
    tags: dict
    latency_ms: int | None
    status: str
    reported_cost: Decimal | None
    reported_currency: str


class RecordInvalid(Exception):
    def __init__(self, errors: dict[str, list[str]], request_id=None):
        super().__init__(errors)
        self.errors = errors
        self.request_id = request_id


def _count(value) -> int | None:
    """A token count, or None when it is not a whole number in range."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    if type(value) is float and value.is_integer() and 0 <= value <= MAX_TOKENS:
        return int(value)
    return None


def _usage_int(usage: dict, key: str, errors: list[str], *path: str) -> int:
    value = usage
    for part in (key, *path):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return 0
    count = _count(value)
    if count is None:
        errors.append(f"{'.'.join((key, *path))} must be a whole number >= 0.")
        return 0
    return count


def normalize_usage(usage) -> tuple[int, int, int, int, int]:
    """A provider's usage object -> (input, output, cache_read, cache_write, reasoning) in our convention.

    Ours: input counts every input token including cache reads and writes; output counts reasoning.
    """
    if not isinstance(usage, dict):
        raise ValueError(["Expected an object: the provider's usage as it returned it."])
    errors: list[str] = []
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        # OpenAI Chat Completions and compatible APIs (DeepSeek adds prompt_cache_hit_tokens).
        inp = _usage_int(usage, "prompt_tokens", errors)
        out = _usage_int(usage, "completion_tokens", errors)
        cache_read = _usage_int(usage, "prompt_tokens_details", errors, "cached_tokens") or _usage_int(
            usage, "prompt_cache_hit_tokens", errors
        )
        reasoning = _usage_int(usage, "completion_tokens_details", errors, "reasoning_tokens")
        cache_write = 0
    elif "promptTokenCount" in usage or "candidatesTokenCount" in usage:
        # Gemini usageMetadata: thoughts are billed as output but not counted in candidates.
        inp = _usage_int(usage, "promptTokenCount", errors)
        reasoning = _usage_int(usage, "thoughtsTokenCount", errors)
        out = _usage_int(usage, "candidatesTokenCount", errors) + reasoning
        cache_read = _usage_int(usage, "cachedContentTokenCount", errors)
        cache_write = 0
    elif "input_tokens" in usage or "output_tokens" in usage:
        out = _usage_int(usage, "output_tokens", errors)
        if "input_tokens_details" in usage or "output_tokens_details" in usage:
            # OpenAI Responses API: input_tokens already include cached ones.
            inp = _usage_int(usage, "input_tokens", errors)
            cache_read = _usage_int(usage, "input_tokens_details", errors, "cached_tokens")
            reasoning = _usage_int(usage, "output_tokens_details", errors, "reasoning_tokens")
            cache_write = 0
        else:
            # Anthropic Messages: input_tokens exclude cache reads and cache writes.
            cache_read = _usage_int(usage, "cache_read_input_tokens", errors)
            cache_write = _usage_int(usage, "cache_creation_input_tokens", errors)
            inp = _usage_int(usage, "input_tokens", errors) + cache_read + cache_write
            reasoning = 0
    else:
        raise ValueError(
            [
                "Unknown usage shape: expected OpenAI (prompt_tokens, completion_tokens), "
                "Anthropic (input_tokens, output_tokens, cache_read_input_tokens, ...) "
                "or Gemini (promptTokenCount, ...)."
            ]
        )
    if errors:
        raise ValueError(errors)
    return inp, out, cache_read, cache_write, reasoning


def _parse_timestamp(value, now: datetime) -> datetime:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("Expected an RFC 3339 time with offset, e.g. 2026-03-01T12:00:00Z.")
    try:
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError("Not a valid date and time.") from None
    if moment - now > FUTURE_TOLERANCE:
        raise ValueError("Is more than 5 minutes in the future.")
    return moment


def clean_record(raw, *, now: datetime) -> CleanRecord:
    """Validate one record; raises RecordInvalid with every problem found, each under its field."""
    if not isinstance(raw, dict):
        raise RecordInvalid({"non_field_errors": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    if not KNOWN_FIELDS.issuperset(raw):
        for key in raw:
            if key not in KNOWN_FIELDS:
                errors[str(key)[:64]] = ["Unknown field."]
        raw = {k: v for k, v in raw.items() if k in KNOWN_FIELDS}
    for alias, field in OTEL_ALIASES.items():
        if alias in raw:
            if field not in raw:
                raw[field] = raw[alias]

    request_id = raw.get("request_id")
    if request_id is None:
        errors["request_id"] = ["This field is required."]
    elif not isinstance(request_id, str) or not 1 <= len(request_id) <= 128:
        errors["request_id"] = ["Must be a string of 1 to 128 characters."]
        request_id = None

    timestamp = now
    if raw.get("timestamp") is not None:
        try:
            timestamp = _parse_timestamp(raw["timestamp"], now)
        except ValueError as exc:
            errors["timestamp"] = [str(exc)]

    model = raw.get("model")
    if model is None or model == "":
        errors["model"] = ["This field is required."]
    elif not isinstance(model, str) or len(model) > 200:
        errors["model"] = ["Must be a string of at most 200 characters."]
    provider = raw.get("provider") or ""
    if not isinstance(provider, str) or len(provider) > 64:
        errors["provider"] = ["Must be a string of at most 64 characters."]
        provider = ""

    tokens = [0, 0, 0, 0, 0]
    usage = raw.get("usage")
    has_token_fields = any(raw.get(f) is not None for f in TOKEN_FIELDS)
    if usage is not None:
        if has_token_fields:
            errors["usage"] = ["Send either usage or the token fields, not both."]
        else:
            try:
                tokens = list(normalize_usage(usage))
            except ValueError as exc:
                errors["usage"] = exc.args[0]
    else:
        for i, field in enumerate(TOKEN_FIELDS):
            value = raw.get(field)
            if value is None:
                if i < 2:
                    errors[field] = ["This field is required (or send the provider's usage object)."]
                continue
            count = _count(value)
            if count is None:
                errors[field] = ["Must be a whole number >= 0."]
            else:
                tokens[i] = count
    inp, out, cache_read, cache_write, reasoning = tokens
    if cache_read + cache_write > inp and "input_tokens" not in errors:
        errors.setdefault("cache_read_tokens", []).append(
            "cache_read_tokens + cache_write_tokens must not exceed input_tokens, which includes them."
        )
    if reasoning > out and "output_tokens" not in errors:
        errors.setdefault("reasoning_tokens", []).append("Must not exceed output_tokens, which includes them.")

    cost_center = raw.get("cost_center")
    if cost_center is not None and (not isinstance(cost_center, str) or not 1 <= len(cost_center) <= 64):
        errors["cost_center"] = ["Must be a cost-center code of 1 to 64 characters."]

    strings = {}
    for field, limit in STRING_FIELDS.items():
        value = raw.get(field)
        if value is None:
            strings[field] = ""
        elif isinstance(value, str) and len(value) <= limit:
            strings[field] = value
        else:
            errors[field] = [f"Must be a string of at most {limit} characters."]

    tags = raw.get("tags")
    if tags is None:
        tags = {}
    elif not isinstance(tags, dict):
        errors["tags"] = ["Must be a flat object of strings."]
    elif len(tags) > MAX_TAGS:
        errors["tags"] = [f"At most {MAX_TAGS} keys; got {len(tags)}."]
    else:
        for key, value in tags.items():
            if len(key) > 64 or not isinstance(value, str) or len(value) > 256:
                errors["tags"] = ["Keys of at most 64 and values of at most 256 characters, both strings."]
                break

    latency = raw.get("latency_ms")
    if latency is not None:
        if type(latency) not in (int, float) or not 0 <= latency < 2**31:
            errors["latency_ms"] = ["Must be a number of milliseconds >= 0."]
            latency = None
        else:
            latency = int(round(latency))
    status = raw.get("status")
    if status is None:
        status = ""
    elif type(status) is int or (isinstance(status, str) and len(status) <= 32):
        status = str(status)
    else:
        errors["status"] = ["Must be a string of at most 32 characters or an HTTP status code."]

    reported_cost = raw.get("reported_cost")
    reported_currency = raw.get("reported_currency") or ""
    if reported_cost is not None:
        try:
            reported_cost = parse_decimal(reported_cost)
            if reported_cost < 0 or reported_cost.adjusted() > 15:
                raise ValueError
        except ValueError:
            errors["reported_cost"] = ["Must be a decimal amount >= 0, preferably as a string."]
            reported_cost = None
        if not reported_currency:
            errors["reported_currency"] = ["Required with reported_cost."]
    if reported_currency and not is_currency(reported_currency):
        errors["reported_currency"] = ["Must be an ISO 4217 currency code, e.g. USD."]

    if not errors:
        for field, value in (
            ("request_id", request_id),
            ("model", model),
            ("provider", provider),
            ("cost_center", cost_center),
            ("status", status),
            *strings.items(),
        ):
            if value and "\x00" in value:
                errors[field] = ["Must not contain NUL characters."]
        if any("\x00" in key or "\x00" in value for key, value in tags.items()):
            errors["tags"] = ["Must not contain NUL characters."]
    if errors:
        raise RecordInvalid(errors, request_id=request_id if request_id and "\x00" not in request_id else None)
    return CleanRecord(
        request_id=request_id,
        timestamp=timestamp,
        model=model,
        provider=provider.lower(),
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        cost_center=cost_center,
        tags=tags,
        latency_ms=latency,
        status=status,
        reported_cost=reported_cost,
        reported_currency=reported_currency,
        **strings,
    )
