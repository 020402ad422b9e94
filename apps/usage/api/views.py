"""Usage ingest (POST /api/v1/usage), the usage list and the cost summary."""

import zlib

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from apps.tenancy.api.base import OrganizationAPIView, OrganizationGenericAPIView
from apps.usage.api.serializers import (
    CostSummarySerializer,
    IngestResultSerializer,
    UsageBatchInSerializer,
    UsageRecordInSerializer,
    UsageRecordSerializer,
)
from apps.usage.filters import UsageFilter
from apps.usage.models import UsageRecord
from apps.usage.selectors import DIMENSIONS, usage_cost_summary
from apps.usage.services import usage_ingest


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def read_json_body(request):
    """The request's JSON, with 415 for another content type, 413 for too much and 400 for malformed."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type != "application/json":
        raise exceptions.UnsupportedMediaType(
            content_type or "none",
            detail=f"Send JSON with Content-Type: application/json (got {content_type or 'none'!r}).",
        )
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        body = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"Request body exceeds {limit:,} bytes; send smaller batches.") from None
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "gzip":
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = decompressor.decompress(body, limit + 1)
        except zlib.error:
            raise exceptions.ParseError("Content-Encoding is gzip but the body is not valid gzip.") from None
        if len(body) > limit or decompressor.unconsumed_tail:
            raise PayloadTooLarge(f"Decompressed body exceeds {limit:,} bytes; send smaller batches.")
    elif encoding not in ("identity", ""):
        raise exceptions.UnsupportedMediaType(
            encoding, detail=f"Unsupported Content-Encoding {encoding!r}; use gzip or none."
        )
    if not body:
        raise exceptions.ParseError('Empty body: send one record or {"records": [...]}.')
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise exceptions.ParseError(f"Malformed JSON: {exc}.") from None


class UsagePagination(CursorPagination):
    ordering = ("-timestamp", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class UsageView(OrganizationGenericAPIView):
    tenant_model = UsageRecord
    write_scope = "ingest"
    session_write = False
    serializer_class = UsageRecordSerializer
    pagination_class = UsagePagination
    filter_backends = ()

    def scope_queryset(self, queryset):
        return queryset.select_related("cost_center")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if hasattr(self, "organization"):
            context["currency"] = self.organization.billing_currency
        return context

    @extend_schema(
        summary="List usage records",
        parameters=[OpenApiParameter(name, OpenApiTypes.STR) for name in UsageFilter.base_filters],
        responses=UsageRecordSerializer(many=True),
    )
    def get(self, request):
        filterset = UsageFilter(
            request.query_params,
            queryset=self.get_queryset(),
            organization=self.organization,
            visible_cost_center_ids=self.visible_cost_center_ids(),
        )
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Ingest usage",
        description=(
            'One record, or `{"records": [...]}` with up to 5,000. Valid records are stored even when others are '
            "rejected; a request_id already stored counts as a duplicate. 201: nothing rejected; 207: some records of "
            "a batch rejected (see errors by index); 422: the single record was rejected."
        ),
        request=PolymorphicProxySerializer(
            component_name="UsageIngestBody",
            serializers=[UsageBatchInSerializer, UsageRecordInSerializer],
            resource_type_field_name=None,
        ),
        responses={
            201: IngestResultSerializer,
            207: IngestResultSerializer,
            422: IngestResultSerializer,
            400: OpenApiResponse(description="Malformed JSON or body"),
            401: OpenApiResponse(description="Bad key"),
            403: OpenApiResponse(description="Key lacks the ingest scope"),
            413: OpenApiResponse(description="More than 5,000 records or body too large"),
            415: OpenApiResponse(description="Not application/json"),
            429: OpenApiResponse(description="Rate limited"),
        },
    )
    def post(self, request):
        body = read_json_body(request)
        if isinstance(body, dict) and "records" in body:
            records, batch = body["records"], True
            if not isinstance(records, list):
                raise exceptions.ValidationError({"records": ["Expected a list of records."]})
            if not records:
                raise exceptions.ValidationError({"records": ["Send at least one record."]})
            if len(records) > settings.INGEST_MAX_RECORDS:
                raise PayloadTooLarge(
                    f"A batch holds at most {settings.INGEST_MAX_RECORDS:,} records; got {len(records):,}."
                )
        elif isinstance(body, dict):
            records, batch = [body], False
        else:
            raise exceptions.ParseError('Expected a JSON object: one record or {"records": [...]}.')
        result = usage_ingest(organization=self.organization, api_key=self.api_key, raw_records=records)
        if not result.rejected:
            code = status.HTTP_201_CREATED
        else:
            code = status.HTTP_207_MULTI_STATUS if batch else status.HTTP_422_UNPROCESSABLE_ENTITY
        return Response(result.as_dict(), status=code)


class CostSummaryView(OrganizationAPIView):
    @extend_schema(
        summary="Cost totals grouped by time and attribution",
        parameters=[
            OpenApiParameter("group_by", OpenApiTypes.STR, description=f"Comma-separated: {', '.join(DIMENSIONS)}."),
            *(OpenApiParameter(name, OpenApiTypes.STR) for name in UsageFilter.base_filters),
        ],
        responses=CostSummarySerializer,
    )
    def get(self, request):
        group_by = tuple(
            part.strip()
            for value in request.query_params.getlist("group_by")
            for part in value.split(",")
            if part.strip()
        )
        unknown = [d for d in group_by if d not in DIMENSIONS]
        if unknown or len(set(group_by)) != len(group_by):
            raise exceptions.ValidationError(
                {"group_by": [f"Choose distinct dimensions from {', '.join(DIMENSIONS)}; got {', '.join(group_by)}."]}
            )
        filterset = UsageFilter(
            request.query_params,
            queryset=UsageRecord.objects.for_org(self.organization),
            organization=self.organization,
            visible_cost_center_ids=self.visible_cost_center_ids(),
        )
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        summary = usage_cost_summary(
            organization=self.organization, records=filterset.qs, group_by=group_by, rollup=filterset.rollup_query()
        )
        tz = self.organization.tz
        summary["start"] = filterset.start_at.astimezone(tz).isoformat()
        summary["end"] = filterset.end_at.astimezone(tz).isoformat()
        return Response(summary)
