"""Export endpoints: the ERP CSV of a range and the FOCUS 1.2 CSV of a billing period, streamed."""

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions

from apps.billing.periods import period_bounds
from apps.exports.erp import erp_csv_lines
from apps.exports.focus import focus_csv_lines, focus_unpriced_count
from apps.tenancy.api.base import OrganizationAPIView
from apps.tenancy.models import CostCenter
from apps.tenancy.selectors import cost_center_descendant_ids
from apps.usage.filters import parse_moment

# Lines are sent in pieces of about this many characters: one write per line would cost a system
# call each, one piece for the whole file would hold it in memory.
STREAM_PIECE_CHARS = 64 * 1024

CSV_RESPONSE = {(200, "text/csv"): OpenApiTypes.STR, 400: OpenApiResponse(description="Bad parameter")}


def csv_pieces(lines: Iterable[str]) -> Iterator[str]:
    """Lines joined into pieces of about STREAM_PIECE_CHARS; closing this closes the lines' generator."""
    piece: list[str] = []
    size = 0
    try:
        for line in lines:
            piece.append(line)
            size += len(line)
            if size >= STREAM_PIECE_CHARS:
                yield "".join(piece)
                piece, size = [], 0
        if piece:
            yield "".join(piece)
    finally:
        # A client that hangs up mid-download closes this generator; the export's transaction and
        # server-side cursor end with it instead of waiting for garbage collection.
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def csv_attachment(lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_pieces(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


class CsvExportView(OrganizationAPIView):
    def perform_content_negotiation(self, request, force=False):
        # The file is CSV whatever the Accept header says; errors are JSON. Without force, an
        # `Accept: text/csv` would be refused with 406 before the view runs.
        return super().perform_content_negotiation(request, force=True)

    def export_cost_center_ids(self, code: str | None) -> set[int] | None:
        """The cost centers to export: all the caller may see, or the named one and its children.

        A code that does not exist and one the caller (an owner) may not see get the same answer.
        """
        visible = self.visible_cost_center_ids()
        if not code:
            return visible
        unknown = exceptions.ValidationError({"cost_center": [f"No cost center {code!r} in this organization."]})
        try:
            # A code no cost center could have (a NUL byte, say) is unknown without asking the database.
            CostCenter._meta.get_field("code").run_validators(code)
        except DjangoValidationError:
            raise unknown from None
        root = CostCenter.objects.for_org(self.organization).filter(code=code).values_list("id", flat=True).first()
        if root is None or (visible is not None and root not in visible):
            raise unknown
        wanted = cost_center_descendant_ids(organization=self.organization, roots=[root])
        return wanted if visible is None else wanted & visible


def parse_export_range(params, *, tz) -> tuple[datetime, datetime]:
    """[start, end) from required start and end, read as in /api/v1/costs; 400 naming each bad one."""
    errors: dict[str, list[str]] = {}
    moments: dict[str, datetime] = {}
    for name, is_end in (("start", False), ("end", True)):
        value = (params.get(name) or "").strip()
        if not value:
            day = f"YYYY-MM-DD in {tz.key}" + (", inclusive" if is_end else "")
            errors[name] = [f"Required: a date ({day}) or an RFC 3339 time."]
            continue
        try:
            moment = parse_moment(value, tz=tz, end=is_end)
            # Times are compared and stored in UTC: one that has no UTC equivalent is bad input, not a 500.
            moment.astimezone(UTC)
        except forms.ValidationError as exc:
            errors[name] = exc.messages
        except (OverflowError, ValueError):
            errors[name] = [f"{value!r} is out of range."]
        else:
            moments[name] = moment
    if not errors and moments["start"] >= moments["end"]:
        errors["end"] = ["Must be after start."]
    if errors:
        raise exceptions.ValidationError(errors)
    return moments["start"], moments["end"]


def parse_period(value: str | None, *, organization) -> date:
    """A billing period YYYY-MM; 400 naming `period` otherwise."""
    value = (value or "").strip()
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise exceptions.ValidationError({"period": ["Required: a billing period as YYYY-MM, e.g. 2026-03."]})
    try:
        period = date(int(value[:4]), int(value[5:7]), 1)
        for bound in period_bounds(organization=organization, period=period):
            bound.astimezone(UTC)
    except (OverflowError, ValueError):
        raise exceptions.ValidationError({"period": [f"{value!r} is out of range."]}) from None
    return period


class ErpExportView(CsvExportView):
    @extend_schema(
        summary="ERP CSV of usage records",
        description=(
            "One row per usage record: date (the record's time in the organization's time zone, RFC 3339), "
            "user_id, cost_center, model, input_tokens, output_tokens, cost (billing currency, ten decimals; "
            "empty while unpriced), currency, request_id. Streamed, oldest first."
        ),
        parameters=[
            OpenApiParameter("start", OpenApiTypes.STR, required=True, description="Date or RFC 3339 time."),
            OpenApiParameter("end", OpenApiTypes.STR, required=True, description="Date (inclusive) or RFC 3339 time."),
            OpenApiParameter("cost_center", OpenApiTypes.STR, description="Code; includes its children."),
        ],
        responses=CSV_RESPONSE,
    )
    def get(self, request):
        tz = self.organization.tz
        start, end = parse_export_range(request.query_params, tz=tz)
        cost_center_ids = self.export_cost_center_ids(request.query_params.get("cost_center"))
        last_day = (end.astimezone(tz) - timedelta(microseconds=1)).date()
        filename = f"{self.organization.slug}-erp-{start.astimezone(tz).date()}-{last_day}.csv"
        lines = erp_csv_lines(organization=self.organization, start=start, end=end, cost_center_ids=cost_center_ids)
        return csv_attachment(lines, filename)


class FocusExportView(CsvExportView):
    @extend_schema(
        summary="FinOps FOCUS 1.2 CSV of a billing period",
        description=(
            "What the period's invoice bills (while the month is open: will bill), as FOCUS 1.2 usage charges, one "
            "per day x cost center x provider x model x price: the month's priced usage, then late usage of earlier "
            "invoiced months as charges of ChargeClass Correction. Usage of the month still without a price or FX "
            "rate is left out and counted in the X-Unpriced-Requests header."
        ),
        parameters=[
            OpenApiParameter("period", OpenApiTypes.STR, required=True, description="YYYY-MM"),
            OpenApiParameter("cost_center", OpenApiTypes.STR, description="Code; includes its children."),
        ],
        responses=CSV_RESPONSE,
    )
    def get(self, request):
        period = parse_period(request.query_params.get("period"), organization=self.organization)
        cost_center_ids = self.export_cost_center_ids(request.query_params.get("cost_center"))
        scope = {"organization": self.organization, "period": period, "cost_center_ids": cost_center_ids}
        response = csv_attachment(focus_csv_lines(**scope), f"{self.organization.slug}-focus-{period:%Y-%m}.csv")
        response["X-Unpriced-Requests"] = str(focus_unpriced_count(**scope))
        return response
