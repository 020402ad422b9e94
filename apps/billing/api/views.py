"""Invoices: read by members and read keys; approved, issued and voided by finance members."""

import csv
import io
import re

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from apps.billing.api.serializers import InvoiceLineSerializer, InvoiceSerializer, ResendSerializer, VoidSerializer
from apps.billing.chargeback import chargeback_resend
from apps.billing.models import Invoice
from apps.billing.services import invoice_approve, invoice_issue, invoice_void
from apps.tenancy.api.base import OrganizationGenericAPIView
from apps.tenancy.models import CostCenter, Role


class InvoiceMixin:
    tenant_model = Invoice
    serializer_class = InvoiceSerializer
    session_write = True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.membership is not None and self.membership.role == Role.OWNER:
            raise exceptions.PermissionDenied(
                "Cost-center owners see their charges in chargeback reports and /api/v1/costs."
            )

    def scope_queryset(self, queryset):
        return queryset.select_related("organization").prefetch_related("transitions")

    def invoice(self) -> Invoice:
        return self.get_object()


class InvoiceListView(InvoiceMixin, OrganizationGenericAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("period", OpenApiTypes.STR, description="YYYY-MM")],
        responses=InvoiceSerializer(many=True),
    )
    def get(self, request):
        invoices = self.get_queryset()
        period = request.query_params.get("period")
        if period:
            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
                raise exceptions.ValidationError({"period": ["Use YYYY-MM, e.g. 2026-03."]})
            invoices = invoices.filter(period=f"{period}-01")
        return Response({"results": self.get_serializer(invoices, many=True).data})


class InvoiceDetailView(InvoiceMixin, OrganizationGenericAPIView):
    def get(self, request, pk):
        return Response(self.get_serializer(self.invoice()).data)


class InvoiceLinesCsvView(InvoiceMixin, OrganizationGenericAPIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, pk):
        invoice = self.invoice()
        rows = InvoiceSerializer(invoice).get_lines(invoice)
        out = io.StringIO()
        writer = csv.writer(out)
        fields = ("invoice", "period", *InvoiceLineSerializer.Meta.fields[1:], "currency")
        writer.writerow(fields)
        for row in rows:
            writer.writerow(
                [invoice.number, f"{invoice.period:%Y-%m}", *(row[f] for f in fields[2:-1]), invoice.currency]
            )
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.csv"'
        return response


class InvoiceActionView(InvoiceMixin, OrganizationGenericAPIView):
    """POST approve / issue / void; finance members of the organization, four eyes for approval."""

    action_name = ""

    @extend_schema(request=None, responses=InvoiceSerializer)
    def post(self, request, pk):
        invoice = self.invoice()
        if self.action_name == "approve":
            invoice = invoice_approve(invoice=invoice, user=request.user)
        elif self.action_name == "issue":
            invoice = invoice_issue(invoice=invoice, user=request.user)
        return Response(self.get_serializer(Invoice.objects.get(pk=invoice.pk)).data)


class InvoiceVoidView(InvoiceMixin, OrganizationGenericAPIView):
    @extend_schema(request=VoidSerializer, responses=InvoiceSerializer)
    def post(self, request, pk):
        payload = VoidSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = invoice_void(invoice=self.invoice(), user=request.user, reason=payload.validated_data["reason"])
        return Response(
            {"voided": self.get_serializer(result.voided).data, "new_draft": self.get_serializer(result.new_draft).data}
        )


class ChargebackResendView(InvoiceMixin, OrganizationGenericAPIView):
    @extend_schema(request=ResendSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, pk):
        payload = ResendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        invoice = self.invoice()
        code = payload.validated_data["cost_center"]
        cost_center = CostCenter.objects.for_org(self.organization).filter(code=code).first()
        if cost_center is None:
            raise exceptions.ValidationError({"cost_center": [f"Unknown cost center {code!r}."]})
        return Response({"sent": chargeback_resend(invoice=invoice, cost_center=cost_center, user=request.user)})
