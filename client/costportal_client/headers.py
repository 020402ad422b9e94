"""HTTP header names that carry attribution, and safe conversion between header values and text."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from .attribution import Attribution

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_HEADER_VALUE_LENGTH = 512
# Percent itself is escaped so that an encoded value can be told apart from a literal one.
_PRINTABLE_ASCII_EXCEPT_PERCENT = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


@dataclass(frozen=True)
class HeaderNames:
    """Which header carries which attribution field; set a field to None to ignore that header."""

    cost_center: str | None = "X-Cost-Center"
    user_id: str | None = "X-User-ID"
    session_id: str | None = "X-Session-ID"
    feature: str | None = "X-Feature"
    feature_flag: str | None = "X-Feature-Flag"
    environment: str | None = "X-Environment"
    request_id: str = "X-Request-ID"

    def attribution_headers(self) -> Iterator[tuple[str, str]]:
        """(field, header name) pairs of the attribution fields that are carried in headers."""
        for field_name in ("cost_center", "user_id", "session_id", "feature", "feature_flag", "environment"):
            header = getattr(self, field_name)
            if header:
                yield field_name, header


DEFAULT_HEADER_NAMES = HeaderNames()


def outgoing_header_value(value: str) -> str | None:
    """Make `value` safe to send as a header: no line breaks (header injection) and ASCII only,
    because HTTP clients such as httpx refuse other characters and would fail the LLM call."""
    cleaned = _CONTROL_CHARACTERS.sub("", value)[:MAX_HEADER_VALUE_LENGTH]
    if not cleaned.isascii():
        cleaned = quote(cleaned, safe=_PRINTABLE_ASCII_EXCEPT_PERCENT)
    return cleaned or None


def incoming_header_value(raw: str) -> str | None:
    """Decode a header value the server handed over as latin-1 (WSGI, ASGI) back to UTF-8 text."""
    try:
        text = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        text = raw
    text = _CONTROL_CHARACTERS.sub("", text).strip()[:MAX_HEADER_VALUE_LENGTH]
    return text or None


def headers_for_attribution(attribution: Attribution, names: HeaderNames = DEFAULT_HEADER_NAMES) -> dict[str, str]:
    """The headers that forward `attribution` to an upstream LLM API or gateway."""
    headers: dict[str, str] = {}
    for field_name, header in names.attribution_headers():
        value = getattr(attribution, field_name)
        if value is not None:
            safe_value = outgoing_header_value(value)
            if safe_value:
                headers[header] = safe_value
    return headers


def usable_request_id(candidate: str | None) -> str:
    """Reuse an incoming request id when it is a sane token, otherwise mint a new one."""
    if candidate and _REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex
